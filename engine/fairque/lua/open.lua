-- open.lua: open the next step of a committed batch (see commit.lua).
--!include _common.lua
--!include _writes.lua
--!include _batch.lua
-- KEYS[12]    the batches being staged (unused here; every batch script has it last)
-- ARGV[13]    batch id
-- Returns how many of its tasks are left to open.

return open_batch(ARGV[13], TELL_STEP, now_ms())
