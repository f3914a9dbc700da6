-- commit.lua: make a staged batch (see stage.lua) visible, all at once: from this call
-- on, its tasks are the queue's (the run is created, a held run waits for its slot) and
-- are opened in steps: the first here, the rest by open.lua or continue.lua (a pending
-- step), each task decided as push decides a new one.
--!include _common.lua
--!include _writes.lua
--!include _batch.lua
-- KEYS[12..17] (only when the batch is a run) the run's keys as push.lua's; last: the
--             batches being staged
-- ARGV[13]    batch id
-- ARGV[14..]  (only with the run keys) the run: id, F, F field names and values (as
--             push.lua's)
-- Returns {'ok', 1 when the run is held else 0, tasks left to open},
--      {'run_exists', run_id} (nothing changed: the caller takes the batch back),
--      or {'gone', batch} when the batch was given up (its staging timeout passed).
-- Sent again after its reply was lost, it answers as the first sending did.

local batch = ARGV[13]
local now = now_ms()
local done = redis.call('GET', committed_key(batch))
if done then return {'ok', tonumber(done), redis.call('LLEN', opening_key(batch))} end
local deadline = redis.call('ZSCORE', BATCHES, batch)
if not deadline or tonumber(deadline) < now then return {'gone', batch} end
local run
if KEYS[12] then
  run = {id = ARGV[14], fields = read_fields(ARGV, 15)}
  if created_before(run.fields) then return {'run_exists', run.id} end
end

redis.call('ZREM', BATCHES, batch)
redis.call('DEL', parts_key(batch))
redis.call('RENAME', staging_key(batch), opening_key(batch))
local held = false
if run then
  held = create_run(run, now)
  redis.call('HSET', KEYS[12], 'active_tasks', redis.call('LLEN', opening_key(batch)))
end
redis.call('SET', committed_key(batch), held and '1' or '0', 'EX', 3600)
local left = open_batch(batch, TELL_STEP, now)
if left > 0 then redis.call('RPUSH', PENDING_STEPS, cjson.encode({'open', batch})) end
return {'ok', held and 1 or 0, left}
