-- _outcomes.lua: recording how a claimed run ended (included by finish, fail, settle).
-- Needs _common.lua first.
--!include _dynamic.lua

-- Success: the result (JSON), auto XCom when the task has an xcom_push_key, the end;
-- an error left by an earlier attempt is cleared (it stays in attempt_history). A sensor
-- saying "not yet" and a branch are handled first (see _dynamic.lua): the reply may then
-- be {'ok', 'scheduled'} (next poke), or {'ok', 'failed'} / {'ok', 'canceled'}. A result
-- a mapped task waiting for it cannot map over fails the task instead (map_refusal).
-- Returns {'ok', state} or a refusal ({'lease_lost', state or 'deleted'}).
local function finish_one(id, claim_token, result, duration, now)
  local tkey = task_key(id)
  local user, refusal = held(tkey, claim_token)
  if not user then return refusal end
  charge_actual(tkey, user, duration, now)
  local state = end_state(tkey, 'finished')
  if state == 'finished' then
    local instead = before_finish(tkey, id, user, result, duration, now)
    if instead then return instead end
  end
  local refused = state == 'finished' and map_refusal(id, result)
  if refused then  -- a mapped task waiting for it cannot map over the result
    redis.call('HSET', tkey, 'result', result, 'duration', duration, 'error', refused)
    record_attempt(tkey, 'failed', duration, refused, now)
    finalize(tkey, id, user, 'started', 'failed', now)
    return {'ok', 'failed'}
  end
  redis.call('HSET', tkey, 'result', result, 'duration', duration)
  redis.call('HDEL', tkey, 'error')
  record_attempt(tkey, state, duration, nil, now)
  if state == 'finished' then
    local x = redis.call('HMGET', tkey, 'xcom_push_key', 'xcom_scope', 'name', 'attempts')
    if x[1] then xcom_store(x[2], x[1], result, x[3] or id, tonumber(x[4]), now) end
  end
  finalize(tkey, id, user, 'started', state, now)
  return {'ok', state}
end

-- Failure: SCHEDULED for a retry after retry_delay_seconds * 2^(attempts-1) (capped at
-- backoff_max, times a factor in [0.5, 1) from jitter), or the end when retries are spent
-- or the failure is not retryable. Both append the attempt to attempt_history. Returns {'retry', due_ms}, {'ok', state} or a refusal.
local function fail_one(id, claim_token, err, duration, jitter, backoff_max, retryable, now)
  local tkey = task_key(id)
  local user, refusal = held(tkey, claim_token)
  if not user then return refusal end
  charge_actual(tkey, user, duration, now)
  redis.call('HSET', tkey, 'error', err, 'duration', duration)
  local r = redis.call('HMGET', tkey, 'attempts', 'max_retries', 'retry_delay_seconds')
  local attempts, max_retries = tonumber(r[1]), tonumber(r[2] or MAX_RETRIES)
  local state = end_state(tkey, 'failed')
  record_attempt(tkey, state, duration, err, now)
  if retryable and state == 'failed' and attempts <= max_retries then
    local backoff = math.min(backoff_max, tonumber(r[3] or RETRY_DELAY) * 2 ^ (attempts - 1))
    local due = now + math.floor(backoff * (0.5 + jitter / 2) * 1000)
    set_state(tkey, id, user, 'started', 'scheduled', due)
    return {'retry', fmt(due)}
  end
  finalize(tkey, id, user, 'started', state, now)
  return {'ok', state}
end
