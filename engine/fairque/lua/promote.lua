-- promote.lua: queue SCHEDULED tasks whose time has come (retries, execute_after), let
-- back the tenants whose rate token came due (see _tenants.lua), forget registry
-- entries of ended tasks older than the retention period, and move tasks queued before
-- the queued index was kept from their registry into it (see set_state in _common.lua).
--!include _common.lua
-- ARGV[13] the most tasks to promote in this call
-- Returns {promoted count, trimmed count}.

local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', REG.scheduled, '-inf', now, 'LIMIT', 0, tonumber(ARGV[13]))
for _, id in ipairs(due) do
  local tkey = task_key(id)
  local r = redis.call('HMGET', tkey, 'user_id')
  if r[1] then
    make_ready(tkey, id, r[1], 'scheduled', now)
  else
    redis.call('ZREM', REG.scheduled, id)
  end
end
promote_tenants(now, tonumber(ARGV[13]))
local before = redis.call('ZPOPMIN', REG.queued, tonumber(ARGV[13]))
for i = 1, #before, 2 do
  local tkey = task_key(before[i])
  if redis.call('HGET', tkey, 'state') == 'queued' then
    index_queued(tkey, tonumber(before[i + 1]))
  end
end
local trimmed = 0
if RESULT_TTL > 0 then
  local cutoff = now - RESULT_TTL * 1000
  for _, name in ipairs({'finished', 'failed', 'canceled'}) do
    trimmed = trimmed + redis.call('ZREMRANGEBYSCORE', REG[name], '-inf', cutoff)
  end
end
return {#due, trimmed}
