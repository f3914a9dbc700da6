-- push.lua: add one or more tasks atomically (all or none), with their dependencies.
--!include _common.lua
-- KEYS[12..14] (only when the batch is a run) the run's hash, every run, the DAG's runs
-- ARGV[13]    number of tasks N, then N tasks, upstreams inside the batch first, each:
--             id, user, priority, D, D upstream task ids, F, F field names and values
-- then        (only with the run keys) the run: id, F, F field names and values
-- Returns {'ok', {state of each task}}
--      or {'duplicate', task_id, state} when an id is still active,
--      or {'unknown_dependency', task_id, upstream id}
--      or {'run_exists', run_id} when that run was created before (nothing written).
-- A task with unfinished upstreams is DEFERRED; one whose upstreams already ended is
-- decided by its trigger rule at once; any other is SCHEDULED (due later) or QUEUED.

-- Read F name/value pairs from ARGV[at + 1...] (ARGV[at] is F); returns them and the next.
local function read_fields(at)
  local count = tonumber(ARGV[at])
  local flat = {}
  for i = 1, 2 * count do flat[i] = ARGV[at + i] end
  return flat, at + 2 * count + 1
end

local function read_task(at)
  local doc = {id = ARGV[at], user = ARGV[at + 1], priority = tonumber(ARGV[at + 2]), deps = {}}
  local ndeps = tonumber(ARGV[at + 3])
  for i = 1, ndeps do doc.deps[i] = ARGV[at + 3 + i] end
  doc.fields, at = read_fields(at + 4 + ndeps)
  return doc, at
end

local n = tonumber(ARGV[13])
local at = 14
local parsed = {}
for i = 1, n do parsed[i], at = read_task(at) end
local run
if KEYS[12] then
  run = {id = ARGV[at]}
  run.fields = read_fields(at + 1)
  if redis.call('EXISTS', KEYS[12]) == 1 then return {'run_exists', run.id} end
end
local docs, in_batch = {}, {}
for i = 1, n do
  local doc = parsed[i]
  local state = redis.call('HGET', task_key(doc.id), 'state')
  if state and ACTIVE_STATE[state] then return {'duplicate', doc.id, state} end
  for _, up in ipairs(doc.deps or {}) do
    if not in_batch[up] and redis.call('EXISTS', task_key(up)) == 0 then
      return {'unknown_dependency', doc.id, up}
    end
  end
  in_batch[doc.id] = true
  docs[i] = doc
end

-- Count the upstreams that already ended; wait on the others. Returns the verdict.
local function link(tkey, id, deps)
  redis.call('HSET', tkey, 'deps_total', #deps)
  for _, up in ipairs(deps) do
    local state = redis.call('HGET', task_key(up), 'state')
    if ACTIVE_STATE[state] then
      redis.call('SADD', BLOCKED_PREFIX .. id, up)
      redis.call('SADD', WAITING_PREFIX .. up, id)
    else
      redis.call('HINCRBY', tkey, 'deps_' .. state, 1)
    end
  end
  return verdict_of(tkey)
end

local now = now_ms()
if run then
  redis.call('HSET', KEYS[12], 'created_at', seconds(now), unpack(run.fields))
  redis.call('ZADD', KEYS[13], now, run.id)
  if KEYS[14] then redis.call('ZADD', KEYS[14], now, run.id) end
end
local states = {}
for _, doc in ipairs(docs) do
  local id, user = doc.id, doc.user
  local tkey = task_key(id)
  local old = redis.call('HGET', tkey, 'state')
  if old then redis.call('ZREM', REG[old], id) end
  redis.call('DEL', tkey, BLOCKED_PREFIX .. id)
  redis.call('HSET', tkey, 'enqueued_at', seconds(now), unpack(doc.fields))
  redis.call('SADD', ALL_USERS, user)
  local verdict = 'run'
  if #doc.deps > 0 then verdict = link(tkey, id, doc.deps) end
  if verdict == 'wait' then
    set_state(tkey, id, user, nil, 'deferred', now)
    states[#states + 1] = 'deferred'
  elseif verdict == 'cancel' then
    redis.call('HSET', tkey, 'error', cjson.encode({type = 'UpstreamFailed',
      message = 'its upstreams already ended so that its trigger rule cannot be met',
      traceback = ''}))
    conclude(tkey, id, user, nil, 'canceled', now)
    states[#states + 1] = 'canceled'
  else
    if #doc.deps > 0 then unblock(id) end  -- e.g. one_success with one upstream finished
    states[#states + 1] = make_ready(tkey, id, user, nil, now)
  end
end
return {'ok', states}
