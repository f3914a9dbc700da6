-- stage.lua: write one step of a large batch (more tasks than the step size; see
-- "Large batches" in the README): its tasks are stored and linked as push.lua stores
-- them, DEFERRED and held back (field `batch`), so none can run, be canceled or be
-- deleted until commit.lua makes the whole batch visible at once. Refusals are push's:
-- the caller then takes the batch back (unstage.lua). A batch whose producer stops
-- before its commit is taken back by continue.lua after the staging timeout. A step
-- sent again after its reply was lost answers as the first sending did.
--!include _common.lua
--!include _writes.lua
--!include _batch.lua
-- KEYS[12..17] (first step of a run only) the run's keys as push.lua's, to refuse a run
--             that exists before anything is written; last: the batches being staged
-- ARGV[13]    batch id   ARGV[14] staging timeout (ms)
-- ARGV[15]    the parts the earlier steps staged (0: the first step)
-- ARGV[16]    number of parts N, then N parts: a task as push.lua's (upstreams first;
--             an upstream may be a task of an earlier step), or more upstreams of a task
--             staged already: id, user, priority, D, D upstream ids, -1 (a task with
--             many upstreams is cut so that no step links too many)
-- then        (with the run keys) the run: id, F, F field names and values
-- Returns {'ok', {state of each part's task once the batch opens, as far as known}},
--      push's refusals, or {'gone', batch} when the batch was given up meanwhile.

local batch, before = ARGV[13], tonumber(ARGV[15])
local now = now_ms()
local deadline = redis.call('ZSCORE', BATCHES, batch)
if before > 0 and (not deadline or tonumber(deadline) < now) then return {'gone', batch} end
local docs, at = read_tasks(ARGV, 16)
if KEYS[12] and created_before(read_fields(ARGV, at + 1)) then return {'run_exists', ARGV[at]} end

-- The state a staged task enters when its batch opens, as far as known now.
local function foreseen(tkey, verdict)
  if verdict == 'wait' then return 'deferred' end
  if verdict ~= 'run' then return 'canceled' end
  local due = redis.call('HGET', tkey, 'execute_after')
  return (due and tonumber(due) * 1000 > now) and 'scheduled' or 'queued'
end

local states = {}
local parts = parts_key(batch)
if tonumber(redis.call('GET', parts) or '0') > before then
  -- this step sent again (its reply was lost): it was done, all of it
  for i, doc in ipairs(docs) do states[i] = foreseen(task_key(doc.id), verdict_of(task_key(doc.id))) end
  return {'ok', states}
end
local refused = refusal_of(docs)
if refused then return refused end

redis.call('ZADD', BATCHES, now + tonumber(ARGV[14]), batch)
redis.call('SET', parts, before + #docs)
local skey = staging_key(batch)
for i, doc in ipairs(docs) do
  local tkey, verdict = task_key(doc.id), nil
  if doc.fields then
    doc.fields[#doc.fields + 1] = 'batch'
    doc.fields[#doc.fields + 1] = batch
    tkey, verdict = write_task(doc, now)
    set_state(tkey, doc.id, doc.user, nil, 'deferred', now)
    redis.call('RPUSH', skey, doc.id)
  else  -- more upstreams of a task staged in this or an earlier step
    redis.call('HINCRBY', tkey, 'deps_total', #doc.deps)
    wait_on(tkey, doc.id, doc.deps)
    if redis.call('HEXISTS', tkey, 'expand') == 1 then  -- as write_task marks them
      for _, up in ipairs(doc.deps) do redis.call('HSET', task_key(up), 'feeds_map', '1') end
    end
    verdict = verdict_of(tkey)
  end
  states[i] = foreseen(tkey, verdict)
end
return {'ok', states}
