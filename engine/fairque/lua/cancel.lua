-- cancel.lua: cancel a task that has not ended.
--!include _common.lua
-- ARGV[13] task id   ARGV[14] reason (stored on the task as its error message)
-- Returns {'ok', 'canceled'} (queued, deferred or scheduled task),
--         {'ok', 'requested'} (started: its worker records CANCELED when it ends),
--         {'invalid', state} (already ended) or {'not_found'}.

local id = ARGV[13]
local tkey = task_key(id)
local r = redis.call('HMGET', tkey, 'state', 'user_id', 'priority')
local state, user = r[1], r[2]
if not state then return {'not_found'} end
if not ACTIVE_STATE[state] then return {'invalid', state} end
if state == 'started' then
  redis.call('HSET', tkey, 'cancel_requested', '1')
  return {'ok', 'requested'}
end
if state == 'queued' then dequeue(id, user, tonumber(r[3])) end
redis.call('HSET', tkey, 'error',
  cjson.encode({type = 'Canceled', message = ARGV[14], traceback = ''}))
finalize(tkey, id, user, state, 'canceled', now_ms())
return {'ok', 'canceled'}
