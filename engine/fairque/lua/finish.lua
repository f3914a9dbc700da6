-- finish.lua: record the success of a claimed task.
--!include _common.lua
--!include _outcomes.lua
-- ARGV[13] task id   ARGV[14] claim_token   ARGV[15] result (JSON)   ARGV[16] duration (s)
-- With an xcom_push_key on the task, the result is also stored as that XCom value.
-- Returns {'ok', state} (FINISHED, or CANCELED if cancellation was requested meanwhile)
--      or {'lease_lost', state or 'deleted'} when the caller no longer holds the task.

return finish_one(ARGV[13], ARGV[14], ARGV[15], ARGV[16], now_ms())
