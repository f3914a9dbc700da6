-- reclaim.lua: take back started tasks whose lease expired (their worker died, hung
-- or lost Redis). The lost run counts as a recovery, and as an attempt only when its
-- holder acknowledged the claim by renewing the lease ('acked' = '1', see extend.lua):
-- a claim whose reply never reached a worker did not run the task. A counted attempt is
-- appended to attempt_history with outcome 'lease_expired'.
--!include _common.lua
-- ARGV[13] the most tasks to reclaim in this call   ARGV[14] max recoveries
-- Returns {requeued count, failed count}.
-- A task goes back to the front of its queue, or becomes FAILED when its attempts
-- (max_retries + 1) or its recoveries (max recoveries) are spent.

local now = now_ms()
local max_recoveries = tonumber(ARGV[14])
local expired = redis.call('ZRANGEBYSCORE', REG.started, '-inf', now, 'LIMIT', 0, tonumber(ARGV[13]))
local requeued, failed = 0, 0
for _, id in ipairs(expired) do
  local tkey = task_key(id)
  local r = redis.call('HMGET', tkey, 'user_id', 'priority', 'order', 'attempts', 'max_retries',
    'worker_id', 'acked')
  local user = r[1]
  if not user then
    redis.call('ZREM', REG.started, id)
  else
    charge_actual(tkey, user, nil, now)
    local recoveries = redis.call('HINCRBY', tkey, 'recoveries', 1)
    local attempts, max_retries = tonumber(r[4] or '1'), tonumber(r[5] or MAX_RETRIES)
    if r[7] == '0' then
      attempts = redis.call('HINCRBY', tkey, 'attempts', -1)
    else
      record_attempt(tkey, 'lease_expired', nil, cjson.encode({type = 'LeaseExpired',
        message = 'the lease of worker ' .. (r[6] or '?') .. ' expired (worker died or hung)',
        traceback = ''}), now)
    end
    local target = end_state(tkey, 'failed')
    if target == 'canceled' then
      finalize(tkey, id, user, 'started', target, now)
      failed = failed + 1
    elseif recoveries > max_recoveries or attempts > max_retries then
      redis.call('HSET', tkey, 'error', cjson.encode({type = 'LeaseExpired',
        message = 'the lease of worker ' .. (r[6] or '?') .. ' expired ' .. recoveries ..
          ' time(s) (worker died or hung); attempts ' .. attempts .. ', max_retries ' ..
          max_retries .. ', max_recoveries ' .. max_recoveries, traceback = ''}))
      finalize(tkey, id, user, 'started', target, now)
      failed = failed + 1
    else
      set_state(tkey, id, user, 'started', 'queued', now)
      enqueue(id, user, tonumber(r[2] or NORMAL), tonumber(r[3] or '0'), true, lane_of(tkey))
      requeued = requeued + 1
    end
  end
end
return {requeued, failed}
