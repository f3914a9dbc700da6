-- _batch.lua: the steps of a large batch (see stage.lua), inlined by stage, commit,
-- open, unstage and continue.lua (needs _common.lua and _writes.lua).
-- A batch's staged task ids wait, in order, in the List BATCH_PREFIX .. id while it is
-- being written, and in BATCH_PREFIX .. id .. ':open' once committed, until opened.
-- The script's last key is the batches being staged (ZSet: batch id, scored by when it
-- is given up, in ms).

local BATCHES = table.remove(KEYS)

local function staging_key(batch) return BATCH_PREFIX .. batch end
local function opening_key(batch) return BATCH_PREFIX .. batch .. ':open' end
-- Set by the commit for an hour ('1' when the run is held, else '0'), so that a commit
-- sent again after its reply was lost answers as the first did.
local function committed_key(batch) return BATCH_PREFIX .. batch .. ':committed' end
-- How many parts the batch's steps staged so far (see stage.lua), until its commit.
local function parts_key(batch) return BATCH_PREFIX .. batch .. ':parts' end

-- Open up to `budget` of a committed batch's tasks, in the order they were staged:
-- each stops being held back and is decided as push decides a new task (DEFERRED while
-- its run is held or its upstreams say wait). A task canceled, deleted or told while
-- held back after the commit was handled then. Returns how many are left.
local function open_batch(batch, budget, now)
  local okey = opening_key(batch)
  local canceled = {}
  for _, id in ipairs(redis.call('LPOP', okey, budget) or {}) do
    local tkey = task_key(id)
    local r = redis.call('HMGET', tkey, 'state', 'user_id', 'batch', 'expand', 'map_index')
    if r[3] == batch and r[1] == 'deferred' then
      redis.call('HDEL', tkey, 'batch')
      local verdict = verdict_of(tkey)
      if verdict == 'run' then unblock(id) end
      local ended, state
      if verdict == 'run' and r[4] and not r[5] then  -- a mapped task, not an instance
        ended = map_expand(tkey, id, r[2], now)
        state = ended or 'deferred'
      else
        state = enter(tkey, id, r[2], verdict, run_held(tkey), 'deferred',
          'its upstreams ended before its batch opened', now)
        if state == 'canceled' then ended = state end
      end
      enqueued(tkey, state, now)
      if ended then canceled[#canceled + 1] = {id, outcome_of(tkey, ended)} end
    end
  end
  release_from(canceled, budget, now)
  return redis.call('LLEN', okey)
end

-- Take back up to `budget` tasks of a batch that was not committed (refused, or given
-- up), newest first: each goes as if never pushed; a task outside the batch that was
-- pushed with one of them as upstream is told it was canceled (as delete.lua does).
-- Returns how many are left; with none left the batch is forgotten.
local function unstage_batch(batch, budget, now)
  local skey = staging_key(batch)
  local told = {}
  for _, id in ipairs(redis.call('RPOP', skey, budget) or {}) do
    local tkey = task_key(id)
    local r = redis.call('HMGET', tkey, 'state', 'user_id', 'batch')
    if r[3] == batch then
      unregister(tkey, id, r[1])
      redis.call('HINCRBY', STATS, r[1] .. ' ' .. r[2], -1)
      redis.call('DEL', tkey)
      unblock(id)
      if redis.call('EXISTS', WAITING_PREFIX .. id) == 1 then told[#told + 1] = {id, 'canceled'} end
    end
  end
  release_from(told, budget, now)
  local left = redis.call('LLEN', skey)
  if left == 0 then
    redis.call('ZREM', BATCHES, batch)
    redis.call('DEL', parts_key(batch))
  end
  return left
end
