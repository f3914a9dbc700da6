-- requeue.lua: hand a claimed task back to the front of its queue at once
-- (graceful shutdown); the interrupted run does not count as an attempt.
--!include _common.lua
-- ARGV[13] task id   ARGV[14] claim_token
-- Returns {'ok', 'queued'} or {'lease_lost', state or 'deleted'}.

local id = ARGV[13]
local tkey = task_key(id)
local user, refusal = held(tkey, ARGV[14])
if not user then return refusal end
local r = redis.call('HMGET', tkey, 'priority', 'order')
local now = now_ms()
charge_actual(tkey, user, nil, now)
redis.call('HINCRBY', tkey, 'attempts', -1)
set_state(tkey, id, user, 'started', 'queued', now)
enqueue(id, user, tonumber(r[1] or NORMAL), tonumber(r[2] or '0'), true, lane_of(tkey))
return {'ok', 'queued'}
