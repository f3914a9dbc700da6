-- fail.lua: record the failure of a claimed task; retry it later or fail it for good.
--!include _common.lua
--!include _outcomes.lua
-- ARGV[13] task id   ARGV[14] claim_token   ARGV[15] error (JSON)   ARGV[16] duration (s)
-- ARGV[17] jitter in [0, 1)   ARGV[18] longest backoff (s)   ARGV[19] '1' if retryable
-- Returns {'retry', due_ms} (SCHEDULED), {'ok', state} (FAILED or CANCELED),
--      or {'lease_lost', state or 'deleted'}.

return fail_one(ARGV[13], ARGV[14], ARGV[15], ARGV[16], tonumber(ARGV[17]),
  tonumber(ARGV[18]), ARGV[19] == '1', now_ms())
