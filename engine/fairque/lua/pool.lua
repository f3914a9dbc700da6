-- pool.lua: declare a pool (or change its slots), or remove it, and apply the change at
-- once: a pool with a free slot again opens its lanes, a full one closes them (see the
-- gates in _common.lua).
--!include _common.lua
-- ARGV[13]   pool name
-- ARGV[14]   its slots (a whole number >= 0), or '' to remove the pool: tasks already
--            queued in it then run without a limit, and pushes naming it are refused
-- Returns {'ok', started tasks of the pool}.

local pool, slots = ARGV[13], ARGV[14]
if slots == '' then
  redis.call('HDEL', GATES, pool)
else
  redis.call('HSET', GATES, pool, slots)
end
gate_changed(pool)
return {'ok', tonumber(redis.call('HGET', GATES_RUNNING, pool) or '0')}
