-- _dynamic.lua: what a success means for a branch task or a sensor (included by
-- _outcomes.lua). Needs _common.lua first. No keys of its own: task records and
-- waiting sets are reached through the templates every script gets (ARGV[1..6]).

-- Skip a deferred task (a branch did not choose it): CANCELED with `skipped` set, and
-- its own dependents told per their trigger rules.
local function skip_task(id, why, now)
  local tkey = task_key(id)
  local user = redis.call('HGET', tkey, 'user_id')
  redis.call('HSET', tkey, 'skipped', '1',
    'error', cjson.encode({type = 'Skipped', message = why, traceback = ''}))
  finalize(tkey, id, user, 'deferred', 'canceled', now)
end

-- The names a branch returned (its result, JSON: a name, a list of names, or null or
-- [] for none), or nil and why the result is not that.
local function branch_names(result)
  local ok, chosen = pcall(cjson.decode, result)
  if not ok then return nil, 'its result is not JSON' end
  if chosen == cjson.null then return {} end
  if type(chosen) == 'string' then return {chosen} end
  if type(chosen) ~= 'table' or (#chosen == 0 and next(chosen) ~= nil) then
    return nil, 'it must return a task name or a list of task names, not ' .. string.sub(result, 1, 80)
  end
  for _, name in ipairs(chosen) do
    if type(name) ~= 'string' then
      return nil, 'it must return task names (strings), not ' .. string.sub(result, 1, 80)
    end
  end
  return chosen
end

-- Is `name` a direct downstream task of branch `id` in its run that already ended (it
-- waits no more: canceled meanwhile)? Choosing it is then no error, and changes nothing.
local function ended_downstream(tkey, id, name)
  local rkey = redis.call('HGET', tkey, 'run_key')
  local ids = rkey and redis.call('HGET', rkey, 'task_ids')
  local other = ids and cjson.decode(ids)[name]
  local deps = other and redis.call('HGET', task_key(other), 'depends_on')
  for _, up in ipairs(deps and cjson.decode(deps) or {}) do
    if up == id then return true end
  end
  return false
end

-- Does `name` name a task group some direct downstream task of branch `id` belongs to
-- (a waiting one in `names`, or one that already ended)? Choosing a group follows its
-- members that are direct downstream tasks (the roots the branch leads to).
local function downstream_group(tkey, id, name, names)
  local prefix = name .. '.'
  for _, other in ipairs(names) do
    if string.sub(other, 1, #prefix) == prefix then return true end
  end
  local rkey = redis.call('HGET', tkey, 'run_key')
  local ids = rkey and redis.call('HGET', rkey, 'task_ids')
  for other in pairs(ids and cjson.decode(ids) or {}) do
    if string.sub(other, 1, #prefix) == prefix and ended_downstream(tkey, id, other) then
      return true
    end
  end
  return false
end

-- A branch task `id` ended with `result`: its direct downstream tasks (those still
-- waiting on it) that it did not choose are skipped, except those downstream of a chosen
-- one (a join after the branches). Nothing changes and the problem is returned when the
-- result names a task that is not a direct downstream task.
local function follow_branch(tkey, id, result, now)
  local chosen, problem = branch_names(result)
  if not chosen then return problem end
  local by_name, names = {}, {}
  for _, dep in ipairs(redis.call('SMEMBERS', WAITING_PREFIX .. id)) do
    local r = redis.call('HMGET', task_key(dep), 'name', 'state')
    if r[2] == 'deferred' then
      local name = r[1] or dep
      by_name[name] = dep
      names[#names + 1] = name
    end
  end
  table.sort(names)
  local kept, stack, followed = {}, {}, {}
  local me = redis.call('HGET', tkey, 'name') or id
  for _, given in ipairs(chosen) do
    -- as given, else inside the branch's own task group, then each enclosing one
    local candidates, scope = {given}, string.match(me, '^(.*)%.[^.]*$')
    while scope do
      candidates[#candidates + 1] = scope .. '.' .. given
      scope = string.match(scope, '^(.*)%.[^.]*$')
    end
    local found, group
    for _, name in ipairs(candidates) do
      if by_name[name] or ended_downstream(tkey, id, name) then found = name break end
    end
    if not found then
      -- a task group: its members among the direct downstream tasks
      for _, name in ipairs(candidates) do
        if downstream_group(tkey, id, name, names) then found, group = name, name .. '.' break end
      end
    end
    if not found then
      local known = table.concat(names, ', ')
      if known == '' then known = 'none' end
      return 'it returned ' .. cjson.encode(given) .. ', which is not one of its direct ' ..
        'downstream tasks (' .. known .. ')'
    end
    for _, name in ipairs(group and names or {found}) do
      if not group or string.sub(name, 1, #group) == group then
        followed[#followed + 1] = name
        if by_name[name] then stack[#stack + 1] = by_name[name] end
      end
    end
  end
  while #stack > 0 do
    local cur = table.remove(stack)
    if not kept[cur] then
      kept[cur] = true
      for _, dep in ipairs(redis.call('SMEMBERS', WAITING_PREFIX .. cur)) do
        stack[#stack + 1] = dep
      end
    end
  end
  local why = 'branch ' .. me .. ' followed ' ..
    (#followed > 0 and table.concat(followed, ', ') or 'no task')
  for _, dep_name in ipairs(names) do
    local dep = by_name[dep_name]
    if not kept[dep] and redis.call('HGET', task_key(dep), 'state') == 'deferred' then
      skip_task(dep, why, now)
    end
  end
  return nil
end

-- End a claimed run for good as `state` ('failed' or 'canceled' as skipped) with an
-- error {type = kind, message}; no retry. Returns the reply of finish_one.
local function end_claimed(tkey, id, user, state, kind, message, duration, now)
  local err = cjson.encode({type = kind, message = message, traceback = ''})
  redis.call('HSET', tkey, 'error', err, 'duration', duration)
  local shown = state
  if state == 'canceled' then redis.call('HSET', tkey, 'skipped', '1') shown = 'skipped' end
  record_attempt(tkey, shown, duration, err, now)
  finalize(tkey, id, user, 'started', state, now)
  return {'ok', state}
end

-- A sensor said "not yet" (returned false or null): back to SCHEDULED for its next
-- poke after poke_interval_seconds, without counting an attempt; once timeout_seconds
-- passed since its first poke, FAILED (or CANCELED as skipped with soft_fail).
local function poke_again(tkey, id, user, duration, now)
  local r = redis.call('HMGET', tkey, 'sensor', 'first_poke_at', 'started_at', 'name')
  local spec = cjson.decode(r[1])
  local first = tonumber(r[2] or r[3] or '') or now / 1000
  if not r[2] then redis.call('HSET', tkey, 'first_poke_at', string.format('%.3f', first)) end
  local deadline = math.floor((first + spec.timeout_seconds) * 1000)
  redis.call('HINCRBY', tkey, 'pokes', 1)
  if now >= deadline then
    local message = 'sensor ' .. (r[4] or id) .. ' timed out: its condition was not met within ' ..
      spec.timeout_seconds .. ' s of its first poke'
    if spec.soft_fail then
      return end_claimed(tkey, id, user, 'canceled', 'Skipped', message .. ' (soft_fail: skipped)',
        duration, now)
    end
    return end_claimed(tkey, id, user, 'failed', 'SensorTimeoutError', message, duration, now)
  end
  local due = math.min(now + math.floor(spec.poke_interval_seconds * 1000), deadline)
  redis.call('HINCRBY', tkey, 'attempts', -1)
  redis.call('HSET', tkey, 'duration', duration)
  set_state(tkey, id, user, 'started', 'scheduled', due)
  return {'ok', 'scheduled'}
end

-- Before a claimed run is recorded as a success: a sensor that said "not yet" pokes
-- again later, a branch skips what it did not choose (or fails: not a downstream task).
-- Returns the reply to give instead of finishing, or nil to finish as usual.
local function before_finish(tkey, id, user, result, duration, now)
  local r = redis.call('HMGET', tkey, 'sensor', 'branch')
  if r[1] and (result == 'false' or result == 'null') then
    return poke_again(tkey, id, user, duration, now)
  end
  if r[2] == '1' then
    local problem = follow_branch(tkey, id, result, now)
    if problem then
      local name = redis.call('HGET', tkey, 'name') or id
      return end_claimed(tkey, id, user, 'failed', 'BranchError',
        'branch task ' .. name .. ': ' .. problem, duration, now)
    end
  end
  return nil
end
