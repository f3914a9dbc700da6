-- open.lua: open the next step of a committed batch (see commit.lua).
--!include _common.lua
--!include _writes.lua
--!include _batch.lua
-- KEYS[12]    the batches being staged (unused here; every batch script has it last)
-- ARGV[13]    batch id
-- Returns how many of its tasks are left to open.

local left = open_batch(ARGV[13], TELL_STEP, now_ms())
if left == 0 then  -- its pending step (see commit.lua) has nothing left to do
  redis.call('LREM', PENDING_STEPS, 1, cjson.encode({'open', ARGV[13]}))
end
return left
