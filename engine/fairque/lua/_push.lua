-- _push.lua: the body of push.lua, inlined where a script says `--!include _push.lua`.
-- It reads the push arguments from the table `A` (ARGV's layout: A[1..12] the common
-- arguments, A[13] the number of tasks...; see push.lua) that the including script
-- defines, and the run's keys from KEYS[12..17] (see push.lua).

-- Read F name/value pairs from A[at + 1...] (A[at] is F); returns them and the next.
local function read_fields(at)
  local count = tonumber(A[at])
  local flat = {}
  for i = 1, 2 * count do flat[i] = A[at + i] end
  return flat, at + 2 * count + 1
end

local function read_task(at)
  local doc = {id = A[at], user = A[at + 1], priority = tonumber(A[at + 2]), deps = {}}
  local ndeps = tonumber(A[at + 3])
  for i = 1, ndeps do doc.deps[i] = A[at + 3 + i] end
  doc.fields, at = read_fields(at + 4 + ndeps)
  return doc, at
end

local n = tonumber(A[13])
local at = 14
local parsed = {}
for i = 1, n do parsed[i], at = read_task(at) end
local run
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

if KEYS[12] then
  run = {id = A[at]}
  run.fields = read_fields(at + 1)
  if created_before(run.fields) then return {'run_exists', run.id} end
end
local docs, in_batch = {}, {}
for i = 1, n do
  local doc = parsed[i]
  local state = redis.call('HGET', task_key(doc.id), 'state')
  if state and ACTIVE_STATE[state] then return {'duplicate', doc.id, state} end
  doc.old = state  -- an ended life of this id: its registry entry goes below
  local pool = field_of(doc.fields, 'pool')
  if pool and redis.call('HEXISTS', GATES, pool) == 0 then return {'unknown_pool', doc.id, pool} end
  for _, up in ipairs(doc.deps or {}) do
    if not in_batch[up] and redis.call('EXISTS', task_key(up)) == 0 then
      return {'unknown_dependency', doc.id, up}
    end
  end
  in_batch[doc.id] = true
  docs[i] = doc
end

local now = now_ms()
if run then
  redis.call('HSET', KEYS[12], 'created_at', seconds(now), unpack(run.fields))
  redis.call('ZADD', KEYS[13], now, run.id)
  redis.call('ZADD', KEYS[14], now, run.id)
  if KEYS[16] then redis.call('ZADD', KEYS[16], now, run.id) end
  if KEYS[17] then redis.call('ZADD', KEYS[17], now, run.id) end
end

-- A DAG's run beyond its max_active_runs is held: created, its tasks DEFERRED, until a
-- slot frees (see run_task_ended in _common.lua). Slots of runs without an active task
-- left (trimmed or deleted) are taken back first.
local held = false
local slots = run and field_of(run.fields, 'slots_key')
if slots then
  local queued, limit = field_of(run.fields, 'queued_key'), tonumber(field_of(run.fields, 'max_active_runs'))
  for _, member in ipairs(redis.call('SMEMBERS', slots)) do
    if tonumber(redis.call('HGET', member, 'active_tasks') or '0') <= 0 then
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
if run and not held then set_timeout(KEYS[12], now) end
-- A DAG's max_active_tasks: its gate's slots, as the DAG now says (see _common.lua).
local dag_gate = run and field_of(run.fields, 'dag_gate')
if dag_gate then
  redis.call('HSET', GATES, dag_gate, field_of(run.fields, 'max_active_tasks'))
  gate_changed(dag_gate)
end
local active = 0
local states = {}
for _, doc in ipairs(docs) do
  local id, user = doc.id, doc.user
  local tkey = task_key(id)
  if doc.old then redis.call('ZREM', REG[doc.old], id) end
  redis.call('DEL', tkey, BLOCKED_PREFIX .. id)
  redis.call('HSET', tkey, 'enqueued_at', seconds(now), unpack(doc.fields))
  redis.call('SADD', ALL_USERS, user)
  local verdict = 'run'
  if #doc.deps > 0 then verdict = link(tkey, id, doc.deps) end
  if verdict == 'wait' or (verdict == 'run' and held) then
    set_state(tkey, id, user, nil, 'deferred', now)
    states[#states + 1] = 'deferred'
  elseif verdict ~= 'run' then
    rule_error(tkey, redis.call('HGET', tkey, 'trigger_rule'), verdict, 'its upstreams already ended')
    conclude(tkey, id, user, nil, 'canceled', now)
    states[#states + 1] = 'canceled'
  else
    if #doc.deps > 0 then unblock(id) end  -- e.g. one_success with one upstream finished
    states[#states + 1] = make_ready(tkey, id, user, nil, now)
  end
  if states[#states] ~= 'canceled' then active = active + 1 end
end
if run then redis.call('HSET', KEYS[12], 'active_tasks', active) end
return {'ok', states}
