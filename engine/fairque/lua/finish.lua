-- finish.lua: record the success of a claimed task.
--!include _common.lua
--!include _outcomes.lua
-- ARGV[13] task id   ARGV[14] claim_token   ARGV[15] result (JSON)   ARGV[16] duration (s)
-- With an xcom_push_key on the task, the result is also stored as that XCom value.
-- A sensor whose result is false or null is poked again later (SCHEDULED) or times out;
-- a branch skips the direct downstream tasks it did not choose (see _dynamic.lua).
-- Returns {'ok', state} (FINISHED, or CANCELED if cancellation was requested meanwhile;
--      SCHEDULED for a sensor's next poke; FAILED for a sensor's timeout or a branch
--      naming no direct downstream task, CANCELED for a soft_fail sensor's timeout)
--      or {'lease_lost', state or 'deleted'} when the caller no longer holds the task.

return finish_one(ARGV[13], ARGV[14], ARGV[15], ARGV[16], now_ms())
