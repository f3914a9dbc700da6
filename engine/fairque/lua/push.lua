-- push.lua: add one or more tasks atomically (all or none), with their dependencies.
--!include _common.lua
-- KEYS[12..14] (only when the batch is a run) the run's hash, every run, the DAG's runs
-- ARGV[13]    number of tasks N
-- ARGV[14..]  N task documents (JSON): {id, user, priority, deps (upstream task ids),
--             fields: {name: string value, ...}},
--             upstreams inside the batch listed before their dependents
-- ARGV[14+N]  (only with the run keys) the run record: {id, fields: {name: value}}
-- Returns {'ok', {state of each task}}
--      or {'duplicate', task_id, state} when an id is still active,
--      or {'unknown_dependency', task_id, upstream id}
--      or {'run_exists', run_id} when that run was created before (nothing written).
-- A task with unfinished upstreams is DEFERRED; one whose upstreams already ended is
-- decided by its trigger rule at once; any other is SCHEDULED (due later) or QUEUED.

local n = tonumber(ARGV[13])
local run = ARGV[14 + n] and cjson.decode(ARGV[14 + n])
if run and redis.call('EXISTS', KEYS[12]) == 1 then return {'run_exists', run.id} end
local docs, in_batch = {}, {}
for i = 1, n do
  local doc = cjson.decode(ARGV[13 + i])
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
  redis.call('HSET', KEYS[12], 'created_at', seconds(now), unpack(flatten(run.fields)))
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
  redis.call('HSET', tkey, 'attempts', '0', 'recoveries', '0', 'claim', '0',
    'enqueued_at', seconds(now), unpack(flatten(doc.fields)))
  redis.call('SADD', ALL_USERS, user)
  local verdict = 'run'
  if doc.deps and #doc.deps > 0 then verdict = link(tkey, id, doc.deps) end
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
    states[#states + 1] = make_ready(tkey, id, user, nil, now)
  end
end
return {'ok', states}
