-- delete.lua: remove a task and every trace of it, whatever its state.
--!include _common.lua
-- ARGV[13] task id
-- Returns {'ok', former state} or {'not_found'}.
-- A started task's worker finds its lease gone and cannot record an outcome.
-- Deleting a task that had not ended counts as its cancellation for its dependents.
-- A task of a batch still being staged is not found (see stage.lua).

local id = ARGV[13]
local tkey = task_key(id)
local r = redis.call('HMGET', tkey, 'state', 'user_id', 'priority', 'batch')
local state, user = r[1], r[2]
if not state or staged(r[4]) then return {'not_found'} end
if state == 'queued' then dequeue(id, user, tonumber(r[3] or NORMAL), lane_of(tkey)) end
unregister(tkey, id, state)
if ACTIVE_STATE[state] then redis.call('HINCRBY', STATS, state .. ' ' .. user, -1) end
if state == 'started' then  -- its tenant's running slot, and its gates'
  slot_freed(user)
  gates_moved(tkey, -1)
end
if ACTIVE_STATE[state] then run_task_ended(tkey, now_ms()) end
redis.call('DEL', tkey)
unblock(id)
if ACTIVE_STATE[state] then release(id, 'canceled', now_ms()) end
redis.call('DEL', WAITING_PREFIX .. id)
return {'ok', state}
