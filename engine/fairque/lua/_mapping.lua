-- _mapping.lua: task mapping at run time, included at the end of _common.lua (it sets
-- map_refusal, map_expand and map_gather, declared there before release).
--
-- A mapped task (the placeholder: field `expand`, JSON {arg: {"__fairque_from__":
-- {task, key, path, id}}}, see fairque/core/refs.py) waits DEFERRED for its upstreams
-- like any task. When its trigger rule lets it run, release() expands it instead of
-- queuing it: one instance per element of the list its source (task `id`) returned (the
-- value under `path` when set), in the step that ended the source (beyond half the
-- step size, the rest in later steps: see map_instances). An instance is the
-- placeholder's record (built by the compiler) under the id `ID[i]`, with `name`
-- `NAME[i]` and `map_index` i, without `xcom_push_key`; it is queued like any task of the
-- run's tenant, and added to the run's `task_ids` and active count. The placeholder then
-- waits for its instances (`map_count` = n, the deps counters count them); when the last
-- one ends, map_gather ends it: FINISHED with the list of their results in order (JSON
-- text joined, never re-encoded; pushed to XCom under its `xcom_push_key`), FAILED when
-- an instance failed, CANCELED (skipped) when one was canceled.
-- An empty list ends the placeholder CANCELED as skipped (error type Skipped), as a
-- trigger rule does. A source whose value is not a list, or a list longer than the
-- mapped task's `max_map_length`, fails the source instead of finishing it
-- (map_refusal, called by finish_one; error type MapError).

local MAP_MARK = '__fairque_from__'
-- Fields of the placeholder that its instances do not copy (the run-time state, when it
-- was enqueued, and the id a record written before records left it to their key may hold).
local MAP_RUNTIME = {'task_id', 'enqueued_at', 'state', 'deps_total', 'deps_finished',
  'deps_failed', 'deps_canceled', 'error', 'upstream_failed', 'xcom_push_key', 'map_count',
  'order', 'finished_at', 'result', 'map_generation'}

-- The reference of a placeholder's `expand` field: {task, path, id}.
local function map_ref(expand_json)
  for _, marker in pairs(cjson.decode(expand_json)) do
    local body = marker[MAP_MARK]
    local path = body.path
    if path == cjson.null then path = nil end
    return {task = body.task, id = body.id, path = path}
  end
end

-- How many elements the list in `result_json` (under key `path` when given) has, or nil
-- and what the value is instead. A JSON array is told from an object by its text (an
-- empty mapping under `path` counts as an empty list: cjson decodes both as {}).
local function map_length(result_json, path)
  if not result_json then return nil, 'no return value' end
  local value = cjson.decode(result_json)
  if path then
    if string.sub(result_json, 1, 1) ~= '{' then return nil, 'not a mapping with key ' .. path end
    value = value[path]
    if value == nil then return nil, 'a mapping without key ' .. path end
  elseif string.sub(result_json, 1, 1) ~= '[' then
    value = nil
  end
  if type(value) ~= 'table' then return nil, 'not a list' end
  local n, count = #value, 0
  for _ in pairs(value) do count = count + 1 end
  if count ~= n then return nil, 'a mapping, not a list' end
  return n
end

local function map_error(kind, message)
  return cjson.encode({type = kind, message = message, traceback = ''})
end

-- Why the result of task `id` cannot be mapped over by the mapped tasks waiting for it
-- (error JSON), or nil. Only a task marked `feeds_map` (an upstream of a mapped task, see
-- write_task in _writes.lua) has its dependents read: a wide fan-out costs nothing here.
map_refusal = function(id, result_json)
  if redis.call('HGET', task_key(id), 'feeds_map') ~= '1' then return nil end
  for _, dep in ipairs(redis.call('SMEMBERS', WAITING_PREFIX .. id)) do
    local r = redis.call('HMGET', task_key(dep), 'expand', 'max_map_length', 'name', 'map_index')
    if r[1] and not r[4] then  -- a mapped task (its instances have a map_index)
      local ref = map_ref(r[1])
      if ref.id == id then
        local n, what = map_length(result_json, ref.path)
        local limit = tonumber(r[2] or '0')
        local head = (r[3] or dep) .. ' maps over the return value of ' .. ref.task .. ': '
        if not n then return map_error('MapError', head .. what) end
        if n > limit then
          return map_error('MapError', head .. 'a list of ' .. n ..
            ' elements, more than max_map_length ' .. limit)
        end
      end
    end
  end
  return nil
end

-- End a placeholder without instances: CANCELED as skipped (why: the message).
local function map_skip(dkey, dep, user, why, now)
  redis.call('HSET', dkey, 'error', map_error('Skipped', why .. ' (skipped)'), 'skipped', '1')
  conclude(dkey, dep, user, 'deferred', 'canceled', now)
  return 'canceled'
end

-- Add the instances' names and ids to the run's task_ids (JSON text: name -> id).
local function map_add_to_run(rkey, added, n)
  if not rkey or redis.call('EXISTS', rkey) == 0 then return end
  if redis.call('HEXISTS', rkey, 'active_tasks') == 1 then
    redis.call('HINCRBY', rkey, 'active_tasks', n)
  end
  local ids = redis.call('HGET', rkey, 'task_ids') or '{}'
  local sep = ','
  if ids == '{}' then sep = '' end
  redis.call('HSET', rkey, 'task_ids', string.sub(ids, 1, -2) .. sep .. table.concat(added, ',') .. '}')
end

-- Expand the placeholder `dep` (its rule says run): nil once its instances are queued
-- (it waits for them), or the outcome it ended with (empty list, source not finished).
map_expand = function(dkey, dep, user, now)
  local r = redis.call('HMGET', dkey, 'expand', 'run_key', 'name', 'max_map_length')
  local ref = map_ref(r[1])
  local s = redis.call('HMGET', task_key(ref.id), 'state', 'result')
  if s[1] ~= 'finished' then
    local _, shown = shown_end(ref.id)
    return map_skip(dkey, dep, user, 'nothing to map over: ' .. ref.task .. ' ended ' .. shown,
      now)
  end
  local n, what = map_length(s[2], ref.path)
  local limit = tonumber(r[4] or '0')
  if n and n > limit then  -- a source ended without map_refusal (a mapped task's gather)
    n, what = nil, 'a list of ' .. n .. ' elements, more than max_map_length ' .. limit
  end
  if not n then
    redis.call('HSET', dkey, 'error', map_error('MapError', 'cannot map over the return value of '
      .. ref.task .. ': ' .. what))
    conclude(dkey, dep, user, 'deferred', 'failed', now)
    return 'failed'
  end
  if n == 0 then return map_skip(dkey, dep, user, 'mapped over an empty list', now) end
  local generation = fmt(next_stamp())  -- names this expansion for its later steps
  redis.call('HSET', dkey, 'map_count', n, 'deps_total', n, 'deps_finished', 0,
    'deps_failed', 0, 'deps_canceled', 0, 'map_generation', generation)
  map_instances(dkey, dep, user, 0, n, generation, now)
  return nil
end

-- Create instances `from`.. of the expanded placeholder `dep` (n in all), TELL_STEP at
-- most; the rest are left to continue.lua (a pending step {'expand', dep, next,
-- generation}). The placeholder's counters already wait for all n.
map_instances = function(dkey, dep, user, from, n, generation, now)
  local upto = math.min(n, from + TELL_STEP)
  local r = redis.call('HMGET', dkey, 'run_key', 'name')
  local fields = redis.call('HGETALL', dkey)
  local name = r[2] or dep
  local added = {}
  for i = from, upto - 1 do
    local iid, iname = dep .. '[' .. i .. ']', name .. '[' .. i .. ']'
    local ikey = task_key(iid)
    redis.call('DEL', ikey, BLOCKED_PREFIX .. iid)
    redis.call('HSET', ikey, unpack(fields))
    redis.call('HDEL', ikey, unpack(MAP_RUNTIME))
    redis.call('HSET', ikey, 'name', iname, 'map_index', i)
    enqueued(ikey, make_ready(ikey, iid, user, nil, now), now)
    redis.call('SADD', BLOCKED_PREFIX .. dep, iid)
    redis.call('SADD', WAITING_PREFIX .. iid, dep)
    added[#added + 1] = cjson.encode(iname) .. ':' .. cjson.encode(iid)
  end
  map_add_to_run(r[1], added, upto - from)
  if upto < n then
    redis.call('RPUSH', PENDING_STEPS, cjson.encode({'expand', dep, upto, generation}))
  end
end

-- The pending step {'expand', dep, from, generation}: more instances, while the
-- placeholder still waits for them from that expansion (not canceled, ended, or
-- cleared and expanded again meanwhile).
map_continue = function(dep, from, generation, now)
  local dkey = task_key(dep)
  local r = redis.call('HMGET', dkey, 'state', 'map_count', 'user_id', 'map_generation')
  if r[1] == 'deferred' and r[2] and r[4] == generation then
    map_instances(dkey, dep, r[3], from, tonumber(r[2]), generation, now)
  end
end

-- An instance of the expanded placeholder `dep` ended (counted): nil while others run,
-- else the outcome the placeholder ended with (see the top of this file).
map_gather = function(dkey, dep, user, now)
  local c = redis.call('HMGET', dkey, 'map_count', 'deps_finished', 'deps_failed',
    'deps_canceled', 'xcom_push_key', 'xcom_scope', 'name')
  local n, finished = tonumber(c[1]), tonumber(c[2] or '0')
  local failed, canceled = tonumber(c[3] or '0'), tonumber(c[4] or '0')
  if finished + failed + canceled < n then return nil end
  unblock(dep)
  local parts, bad = {}, {}
  for i = 0, n - 1 do
    local r = redis.call('HMGET', task_key(dep .. '[' .. i .. ']'), 'state', 'result', 'name')
    if r[1] == 'finished' then
      parts[#parts + 1] = r[2] or 'null'
    else
      parts[#parts + 1] = 'null'
      if #bad < 10 then bad[#bad + 1] = (r[3] or tostring(i)) .. ' ' .. (r[1] or 'deleted') end
    end
  end
  local state = 'finished'
  if failed > 0 then state = 'failed' elseif canceled > 0 then state = 'canceled' end
  if state == 'finished' then
    local result = '[' .. table.concat(parts, ',') .. ']'
    redis.call('HSET', dkey, 'result', result)
    if c[5] then xcom_store(c[6], c[5], result, c[7] or dep, nil, now) end
  else
    local kind = 'MappedInstanceFailed'
    if state == 'canceled' then kind = 'Skipped' end
    redis.call('HSET', dkey, 'error', map_error(kind, (failed + canceled) .. ' of ' .. n ..
      ' instances did not finish: ' .. table.concat(bad, ', ')))
  end
  conclude(dkey, dep, user, 'deferred', state, now)
  return state
end
