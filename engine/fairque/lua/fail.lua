-- fail.lua: record the failure of a claimed task; retry it later or fail it for good.
--!include _common.lua
-- ARGV[13] task id   ARGV[14] claim token   ARGV[15] error (JSON)   ARGV[16] duration (s)
-- ARGV[17] jitter in [0, 1)   ARGV[18] longest backoff (s)   ARGV[19] '1' if retryable
-- Returns {'retry', due_ms} (SCHEDULED), {'ok', state} (FAILED or CANCELED),
--      or {'lease_lost', state or 'deleted'}.
-- Backoff: retry_delay_seconds * 2^(attempts-1), capped, times a factor in [0.5, 1).

local id = ARGV[13]
local tkey = task_key(id)
local user, refusal = held(tkey, ARGV[14])
if not user then return refusal end
local now = now_ms()
redis.call('HSET', tkey, 'error', ARGV[15], 'duration', ARGV[16])
local r = redis.call('HMGET', tkey, 'attempts', 'max_retries', 'retry_delay_seconds')
local attempts, max_retries, delay = tonumber(r[1]), tonumber(r[2] or '0'), tonumber(r[3] or '0')
local state = end_state(tkey, 'failed')
if ARGV[19] == '1' and state == 'failed' and attempts <= max_retries then
  local backoff = math.min(tonumber(ARGV[18]), delay * 2 ^ (attempts - 1))
  local due = now + math.floor(backoff * (0.5 + tonumber(ARGV[17]) / 2) * 1000)
  set_state(tkey, id, user, 'started', 'scheduled', due)
  return {'retry', fmt(due)}
end
finalize(tkey, id, user, 'started', state, now)
return {'ok', state}
