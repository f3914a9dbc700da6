-- unstage.lua: take back the next step of a batch that was not committed (see stage.lua).
--!include _common.lua
--!include _writes.lua
--!include _batch.lua
-- KEYS[12]    the batches being staged
-- ARGV[13]    batch id
-- Returns how many of its tasks are left to take back.

return unstage_batch(ARGV[13], STEP, now_ms())
