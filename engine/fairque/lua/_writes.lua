-- _writes.lua: how push.lua, fire.lua, stage.lua and commit.lua read and write new tasks
-- and runs, inlined where a script says `--!include _writes.lua` (needs _common.lua).
-- The arguments are read from a table `A` laid out as push.lua's ARGV (see push.lua);
-- a run's keys are KEYS[12..17] as push.lua documents them.

-- Read F name/value pairs from A[at + 1...] (A[at] is F); returns them and the next.
-- F = -1 (a staged task's part of more upstreams, see stage.lua): no fields, nil.
local function read_fields(A, at)
  local count = tonumber(A[at])
  if count < 0 then return nil, at + 1 end
  local flat = {}
  for i = 1, 2 * count do flat[i] = A[at + i] end
  return flat, at + 2 * count + 1
end

-- One task: id, user, priority, D, D upstream ids, F, F field names and values.
local function read_task(A, at)
  local doc = {id = A[at], user = A[at + 1], priority = tonumber(A[at + 2]), deps = {}}
  local ndeps = tonumber(A[at + 3])
  for i = 1, ndeps do doc.deps[i] = A[at + 3 + i] end
  doc.fields, at = read_fields(A, at + 4 + ndeps)
  return doc, at
end

-- N tasks from A[at] (N) on; returns them and the next position.
local function read_tasks(A, at)
  local docs = {}
  local n = tonumber(A[at])
  at = at + 1
  for i = 1, n do docs[i], at = read_task(A, at) end
  return docs, at
end

-- The value of field `name` in a flat list of field names and values, or nil.
local function field_of(flat, name)
  for i = 1, #flat, 2 do
    if flat[i] == name then return flat[i + 1] end
  end
  return nil
end

-- Was this run created before? It exists, or its tick is one the scheduler handled.
local function created_before(fields)
  if redis.call('EXISTS', KEYS[12]) == 1 then return true end
  local schedule = field_of(fields, 'schedule')
  if not schedule then return false end
  local cursor = redis.call('HGET', KEYS[15], schedule)
  return cursor ~= false and tonumber(cursor) >= tonumber(field_of(fields, 'tick'))
end

-- Refuse tasks that cannot be added: an id still active, an unknown pool, an upstream
-- that is neither stored (any state) nor earlier in `docs`. Returns a refusal or nil;
-- notes each task's ended former life (`old`: its state) for write_task.
local function refusal_of(docs)
  local in_batch = {}
  for _, doc in ipairs(docs) do
    if doc.fields then  -- (not a part of more upstreams of a task staged already)
      local state = redis.call('HGET', task_key(doc.id), 'state')
      if state and ACTIVE_STATE[state] then return {'duplicate', doc.id, state} end
      doc.old = state
      local pool = field_of(doc.fields, 'pool')
      if pool and redis.call('HEXISTS', GATES, pool) == 0 then return {'unknown_pool', doc.id, pool} end
    end
    for _, up in ipairs(doc.deps) do
      if not in_batch[up] and redis.call('EXISTS', task_key(up)) == 0 then
        return {'unknown_dependency', doc.id, up}
      end
    end
    in_batch[doc.id] = true
  end
  return nil
end

-- Create the run's record (run: id, fields; KEYS[12..17]); the caller sets its
-- `active_tasks` once its tasks are written (until then their ends are not counted).
-- A DAG's run beyond its max_active_runs is held: created, its tasks DEFERRED, until a
-- slot frees (see run_task_ended in _common.lua); slots of runs without an active task
-- left (trimmed or deleted) are taken back first. Returns true when the run is held.
local function create_run(run, now)
  redis.call('HSET', KEYS[12], 'created_at', seconds(now), unpack(run.fields))
  redis.call('ZADD', KEYS[13], now, run.id)
  redis.call('ZADD', KEYS[14], now, run.id)
  if KEYS[16] then redis.call('ZADD', KEYS[16], now, run.id) end
  if KEYS[17] then redis.call('ZADD', KEYS[17], now, run.id) end
  local held = false
  local slots = field_of(run.fields, 'slots_key')
  if slots then
    local queued = field_of(run.fields, 'queued_key')
    local limit = tonumber(field_of(run.fields, 'max_active_runs'))
    for _, member in ipairs(redis.call('SMEMBERS', slots)) do
      if member ~= KEYS[12] and tonumber(redis.call('HGET', member, 'active_tasks') or '0') <= 0 then
        redis.call('SREM', slots, member)
      end
    end
    fill_slots(slots, queued, limit, now)
    if redis.call('SCARD', slots) >= limit then
      held = true
      redis.call('HSET', KEYS[12], 'held', '1')
      redis.call('ZADD', queued, now, KEYS[12])
    else
      redis.call('SADD', slots, KEYS[12])
    end
  end
  if not held then set_timeout(KEYS[12], now) end
  -- A DAG's max_active_tasks: its gate's slots, as the DAG now says (see _common.lua).
  local dag_gate = field_of(run.fields, 'dag_gate')
  if dag_gate then
    redis.call('HSET', GATES, dag_gate, field_of(run.fields, 'max_active_tasks'))
    gate_changed(dag_gate)
  end
  return held
end

-- Write a new task's record (its former life's registry entry goes) and link it to its
-- upstreams; the upstreams of a mapped task are marked `feeds_map` (see map_refusal).
-- Returns its key and its trigger rule's verdict.
local function write_task(doc, now)
  local tkey = task_key(doc.id)
  if doc.old then unregister(tkey, doc.id, doc.old) end
  redis.call('DEL', tkey, BLOCKED_PREFIX .. doc.id)
  redis.call('HSET', tkey, unpack(doc.fields))
  redis.call('SADD', ALL_USERS, doc.user)
  if #doc.deps == 0 then return tkey, 'run' end
  if field_of(doc.fields, 'expand') then
    for _, up in ipairs(doc.deps) do redis.call('HSET', task_key(up), 'feeds_map', '1') end
  end
  return tkey, link(tkey, doc.id, doc.deps)
end

-- Decide a linked task as its verdict says: DEFERRED (also while its run is `held`),
-- CANCELED by its rule (`why` ends the message), or ready. `from`: its state (nil for
-- a task being written). Returns its state.
local function enter(tkey, id, user, verdict, held, from, why, now)
  if verdict == 'wait' or (verdict == 'run' and held) then
    if not from then set_state(tkey, id, user, nil, 'deferred', now) end
    return 'deferred'
  elseif verdict ~= 'run' then
    rule_error(tkey, redis.call('HGET', tkey, 'trigger_rule'), verdict, why)
    conclude(tkey, id, user, from, 'canceled', now)
    return 'canceled'
  end
  return make_ready(tkey, id, user, from, now)
end
