-- finish.lua: record the success of a claimed task.
--!include _common.lua
-- ARGV[13] task id   ARGV[14] claim token   ARGV[15] result (JSON)   ARGV[16] duration (s)
-- With an xcom_push_key on the task, the result is also stored as that XCom value.
-- Returns {'ok', state} (FINISHED, or CANCELED if cancellation was requested meanwhile)
--      or {'lease_lost', state or 'deleted'} when the caller no longer holds the task.

local id = ARGV[13]
local tkey = task_key(id)
local user, refusal = held(tkey, ARGV[14])
if not user then return refusal end
local now = now_ms()
local state = end_state(tkey, 'finished')
redis.call('HSET', tkey, 'result', ARGV[15], 'duration', ARGV[16])
if state == 'finished' then
  local x = redis.call('HMGET', tkey, 'xcom_push_key', 'xcom_scope', 'name')
  if x[1] then xcom_store(x[2], x[1], ARGV[15], x[3] or id, now) end
end
finalize(tkey, id, user, 'started', state, now)
return {'ok', state}
