-- finish.lua: record the success of a claimed task.
--!include _common.lua
-- ARGV[10] task id   ARGV[11] claim token   ARGV[12] result (JSON)   ARGV[13] duration (s)
-- Returns {'ok', state} (FINISHED, or CANCELED if cancellation was requested meanwhile)
--      or {'lease_lost', state or 'deleted'} when the caller no longer holds the task.

local id = ARGV[10]
local tkey = task_key(id)
local user, refusal = held(tkey, ARGV[11])
if not user then return refusal end
local now = now_ms()
local state = end_state(tkey, 'finished')
redis.call('HSET', tkey, 'result', ARGV[12], 'duration', ARGV[13])
finalize(tkey, id, user, 'started', state, now)
return {'ok', state}
