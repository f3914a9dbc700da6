-- xcom_push.lua: store an XCom value in its scope and record the push in the lineage.
--!include _common.lua
-- ARGV[13] scope (run id, or user:<user id>)   ARGV[14] key   ARGV[15] value (JSON)
-- ARGV[16] producer (task name)
-- ARGV[17], ARGV[18] (when a claimed task pushes) its task id and claim_token
-- Returns {'ok', bytes}, or {'lease_lost', state or 'deleted'} (nothing stored) when the
-- pushing task's claim is no longer held: a stale run cannot overwrite a newer one's XCom.
-- The lineage entry carries the pushing attempt's number (null for a push from outside a task).

local attempt = nil
if ARGV[17] then
  local tkey = task_key(ARGV[17])
  local user, refusal = held(tkey, ARGV[18])
  if not user then return refusal end
  attempt = tonumber(redis.call('HGET', tkey, 'attempts'))
end
xcom_store(ARGV[13], ARGV[14], ARGV[15], ARGV[16], attempt, now_ms())
return {'ok', #ARGV[15]}
