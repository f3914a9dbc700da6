-- clear.lua: put ended tasks of a run back to run again, inside the same run, in one step.
--!include _common.lua
-- KEYS[12]  the run's hash   KEYS[13] the watched runs (ZSet, see watch.lua)
-- ARGV[13]  run id (its XCom scope)
-- ARGV[14]  N, then N tasks to clear, upstreams first, each: id, D, D upstream task ids
-- ARGV[..]  M, then the M task ids of the whole run (ended ones get their TTL renewed)
-- Returns {'ok', {new state of each cleared task}}
--      or {'not_found', task_id} (a record expired or was deleted; nothing written)
--      or {'active', task_id, state} (queued, scheduled or started; nothing written)
--      or {'held'} (the run waits for a slot of its DAG's max_active_runs).
-- An expanded mapped task is given its instances as upstreams (see _mapping.lua).
-- A cleared task keeps its attempts (numbers continue) and gets its declared retries
-- again; its result, error and end are dropped; it is relinked to its upstreams (ended
-- ones counted, cleared ones waited on) and decided by its trigger rule: DEFERRED,
-- QUEUED/SCHEDULED, or CANCELED at once. Tasks not cleared keep their results and XCom.
-- The run's `canceled` mark is removed, so the run is running again; a DAG's run that
-- had ended takes a slot of its max_active_runs again (even beyond the limit). A run with
-- a timeout or callbacks loses its `timed_out` and `ended_at` marks, gets a new timeout
-- from now, and is watched again: its next end calls its callback again.

local RUN, RUN_ID = KEYS[12], ARGV[13]
local CLEARABLE = {deferred = true, finished = true, failed = true, canceled = true}

local n = tonumber(ARGV[14])
local at = 15
local docs = {}
for i = 1, n do
  local doc = {id = ARGV[at], deps = {}}
  local d = tonumber(ARGV[at + 1])
  for j = 1, d do doc.deps[j] = ARGV[at + 1 + j] end
  at = at + 2 + d
  docs[i] = doc
end
local m = tonumber(ARGV[at])
local all = {}
for i = 1, m do all[i] = ARGV[at + i] end

-- Check everything before writing anything.
if redis.call('HGET', RUN, 'held') == '1' then return {'held'} end
for _, doc in ipairs(docs) do
  local state = redis.call('HGET', task_key(doc.id), 'state')
  if not state then return {'not_found', doc.id} end
  if not CLEARABLE[state] then return {'active', doc.id, state} end
  for _, up in ipairs(doc.deps) do
    if redis.call('EXISTS', task_key(up)) == 0 then return {'not_found', up} end
  end
end

-- One more active task in the run; a run that had ended takes its DAG's slot again.
local function count_active(delta)
  if redis.call('HEXISTS', RUN, 'active_tasks') == 0 then return end
  if redis.call('HINCRBY', RUN, 'active_tasks', delta) == delta then
    local slots = redis.call('HGET', RUN, 'slots_key')
    if slots then redis.call('SADD', slots, RUN) end
  end
end

local now = now_ms()
local states = {}
for _, doc in ipairs(docs) do
  local id = doc.id
  local tkey = task_key(id)
  local r = redis.call('HMGET', tkey, 'state', 'user_id', 'attempts', 'max_retries',
    'declared_max_retries')
  local user = r[2]
  local declared = tonumber(r[5] or r[4] or MAX_RETRIES)
  if r[1] ~= 'deferred' then count_active(1) end
  set_state(tkey, id, user, r[1], 'deferred', now)
  redis.call('PERSIST', tkey)
  unblock(id)
  redis.call('HDEL', tkey, 'result', 'error', 'finished_at', 'duration', 'cancel_requested',
    'deps_finished', 'deps_failed', 'deps_canceled', 'upstream_failed', 'skipped',
    'first_poke_at', 'pokes')
  redis.call('HSET', tkey, 'declared_max_retries', fmt(declared),
    'max_retries', fmt(tonumber(r[3] or '0') + declared))
  local verdict = link(tkey, id, doc.deps)
  if redis.call('HEXISTS', tkey, 'map_count') == 1 then
    -- An expanded mapped task (its deps: its instances) ends as they did, once they have.
    local ended = map_gather(tkey, id, user, now)
    if ended then release(id, ended, now) end
    states[#states + 1] = ended or 'deferred'
  elseif verdict == 'run' and redis.call('HEXISTS', tkey, 'expand') == 1
      and redis.call('HEXISTS', tkey, 'map_index') == 0 then
    unblock(id)  -- a mapped task not expanded yet, whose source has ended: expand it now
    local ended = map_expand(tkey, id, user, now)
    if ended then release(id, ended, now) end
    states[#states + 1] = ended or 'deferred'
  elseif verdict == 'run' then
    unblock(id)  -- e.g. one_success with one upstream finished
    states[#states + 1] = make_ready(tkey, id, user, 'deferred', now)
  elseif verdict ~= 'wait' then
    rule_error(tkey, redis.call('HGET', tkey, 'trigger_rule'), verdict, 'its upstreams ended')
    finalize(tkey, id, user, 'deferred', 'canceled', now)
    states[#states + 1] = 'canceled'
  else
    states[#states + 1] = 'deferred'
  end
end

-- The tasks kept (and their XCom) live on as long as the run that runs again.
for _, id in ipairs(all) do
  local state = redis.call('HGET', task_key(id), 'state')
  if state and not ACTIVE_STATE[state] and RESULT_TTL > 0 then
    redis.call('EXPIRE', task_key(id), RESULT_TTL)
  end
end
if XCOM_TTL > 0 then
  for _, key in ipairs({XCOM_PREFIX .. RUN_ID, LINEAGE_PREFIX .. RUN_ID}) do
    if redis.call('EXISTS', key) == 1 then redis.call('EXPIRE', key, XCOM_TTL) end
  end
end
redis.call('HDEL', RUN, 'canceled')
local ends = redis.call('HMGET', RUN, 'dagrun_timeout_seconds', 'on_failure_callback',
  'on_success_callback')
if ends[1] or ends[2] or ends[3] then
  redis.call('HDEL', RUN, 'timed_out', 'ended_at', 'timeout_at')
  set_timeout(RUN, now)
  redis.call('ZADD', KEYS[13], now, RUN_ID)
end
return {'ok', states}
