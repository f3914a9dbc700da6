-- _claim.lua: claiming ready tasks fairly (included by pop and settle).
-- Needs _common.lua first. See pop.lua for the fairness rule.

-- A worker's users from ARGV[at]: a count, then the user ids ('*' = every active user).
local function read_group(at)
  local count = tonumber(ARGV[at])
  local group = {users = {}, all = false}
  for i = 1, count do
    local user = ARGV[at + i]
    if user == '*' then group.all = true else group.users[#group.users + 1] = user end
  end
  return group, at + count + 1
end

-- The user to serve in a group, its virtual time, and the next smallest virtual time.
local function pick(group)
  if group.all then
    local r = redis.call('ZRANGE', ACTIVE_USERS, 0, 1, 'WITHSCORES')
    if #r == 0 then return nil end
    return r[1], tonumber(r[2]), tonumber(r[4])
  end
  if #group.users == 0 then return nil end
  local scores = redis.call('ZMSCORE', ACTIVE_USERS, unpack(group.users))
  local best, best_score, second
  for i, user in ipairs(group.users) do
    local score = tonumber(scores[i])
    if score then
      if not best_score or score < best_score or (score == best_score and user < best) then
        if best_score then second = best_score end
        best, best_score = user, score
      elseif not second or score < second then
        second = score
      end
    end
  end
  return best, best_score, second
end

local function take(user)
  local id = redis.call('LPOP', critical_key(user))
  if id then return id end
  return redis.call('ZPOPMIN', normal_key(user))[1]
end

local function advance_user(user, score, second)
  if deactivate_if_idle(user) then return end
  local base = score
  if second and second - 1 > base then base = second - 1 end
  redis.call('ZADD', ACTIVE_USERS, 'XX', string.format('%.17g', base + 1), user)
end

-- Claim up to max_claims tasks for worker (users read from ARGV[groups_at]), each with a
-- lease of lease_ms. Each claim increments the task's claim_token field, which finish,
-- fail, requeue and extend must quote (see held() in _common.lua). Returns the claimed
-- records, each a flat HGETALL list.
local function claim(max_claims, lease_ms, worker, groups_at, now)
  local assigned, steal_at = read_group(groups_at)
  local steal = read_group(steal_at)
  local claimed = {}
  local guard = max_claims * 4 + 8
  while #claimed < max_claims and guard > 0 do
    guard = guard - 1
    local user, score, second = pick(assigned)
    if not user then user, score, second = pick(steal) end
    if not user then break end
    local id = take(user)
    advance_user(user, score, second)
    if id then
      local tkey = task_key(id)
      redis.call('HINCRBY', tkey, 'claim_token', 1)
      redis.call('HINCRBY', tkey, 'attempts', 1)
      redis.call('HSET', tkey, 'started_at', seconds(now), 'worker_id', worker)
      set_state(tkey, id, user, 'queued', 'started', now + lease_ms)
      local record = redis.call('HGETALL', tkey)
      for i = 1, #record, 2 do
        if record[i] == 'priority' then count_queued(user, record[i + 1], -1) end
      end
      claimed[#claimed + 1] = record
    end
  end
  return claimed
end
