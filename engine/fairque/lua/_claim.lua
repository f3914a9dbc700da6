-- _claim.lua: claiming ready tasks fairly (included by pop and settle).
-- Needs _common.lua first. See pop.lua for the fairness rule.
-- KEYS[12]  claim tokens (String counter): a claim's token is unique across every task
--           and every life of a task id (an id pushed again after it ended or was
--           deleted), so a stale holder of an earlier life is fenced off too
-- KEYS[13]  this call's claim record (Hash, TTL one lease): 't:' .. task id -> token per
--           task claimed, and 'replies' (JSON) for settle, so that the same call sent
--           again after its reply was lost answers what it did instead of claiming more

--!per-call: set for each call (see fairque/queue/scripts.py)
local TOKENS, CLAIM = KEYS[12], KEYS[13]
--!end-per-call
local MAX_PARKS = 200  -- tenants parked or promoted per call, at most (bounds a call)

-- A claimed task's record as a claim answers it: 'task_id' and the id first (a record
-- does not store its id: its key holds it), then the hash's fields.
local function claimed_record(tkey, id)
  local record = redis.call('HGETALL', tkey)
  table.insert(record, 1, id)
  table.insert(record, 1, 'task_id')
  return record
end

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

-- A worker's queues from ARGV[at]: a count, then the names.
local function read_queues(at)
  local queues = {}
  for i = 1, tonumber(ARGV[at]) do queues[i] = ARGV[at + i] end
  return queues
end

-- The user to serve in a group among the active users of `akey` (a queue's active set),
-- its virtual time, the next smallest virtual time and the user that has it.
local function pick(group, akey)
  if group.all then
    local r = redis.call('ZRANGE', akey, 0, 1, 'WITHSCORES')
    if #r == 0 then return nil end
    return r[1], tonumber(r[2]), tonumber(r[4]), r[3]
  end
  if #group.users == 0 then return nil end
  local scores = redis.call('ZMSCORE', akey, unpack(group.users))
  local best, best_score, second, second_user
  for i, user in ipairs(group.users) do
    local score = tonumber(scores[i])
    if score then
      if not best_score or score < best_score or (score == best_score and user < best) then
        if best_score then second, second_user = best_score, best end
        best, best_score = user, score
      elseif not second or score < second then
        second, second_user = score, user
      end
    end
  end
  return best, best_score, second, second_user
end

local function take(user, queue)
  local id = redis.call('LPOP', critical_key(user, queue))
  if id then return id end
  return redis.call('ZPOPMIN', normal_key(user, queue))[1]
end

-- The served tenant's virtual time advances by its claim's cost / weight, from its own
-- or from the next smallest minus that one's lag (one turn, or its own bigger step), so
-- a tenant gains no hoard of credit. Returns the new virtual time (nil: it went idle).
local function advance_user(t, queue, score, second, second_user)
  if deactivate_if_idle(t.user, queue) then return nil end
  local step = claim_cost(t) / t.weight
  local base = score
  if second and second - 1 > base then
    local lag = tonumber(redis.call('HGET', TENANT_PREFIX .. second_user, 'step') or '1') or 1
    base = math.max(base, second - math.max(1, lag))
  end
  local new = base + step
  redis.call('ZADD', active_key(queue), 'XX', f17(new), t.user)
  if step ~= (t.step or 1) then
    t.step = step
    redis.call('HSET', t.key, 'step', f17(step))
  end
  return new
end

-- What this call did when it ran before (its reply was lost): the records of the tasks
-- it claimed that it still holds, and its stored replies; nil when it never ran.
local function recall()
  local r = redis.call('HGETALL', CLAIM)
  if #r == 0 then return nil end
  local claimed, replies = {}, {}
  for i = 1, #r, 2 do
    if r[i] == 'replies' then
      replies = cjson.decode(r[i + 1])
    else
      local id = string.sub(r[i], 3)
      local tkey = task_key(id)
      if held(tkey, r[i + 1]) then claimed[#claimed + 1] = claimed_record(tkey, id) end
    end
  end
  return claimed, replies
end

-- Keep name/value pairs in this call's claim record for one lease.
local function remember(pairs_flat, lease_ms)
  if #pairs_flat == 0 then return end
  redis.call('HSET', CLAIM, unpack(pairs_flat))
  redis.call('PEXPIRE', CLAIM, lease_ms)
end

-- Claim up to max_claims tasks for worker (users read from ARGV[groups_at]), each with a
-- lease of lease_ms, among the tenants free of their cap and rate (tenants whose rate
-- token came due are let back first; a picked tenant found over its cap or rate, after
-- a policy change, is parked and the next one picked). Each claim sets the task's claim_token to a new token, which
-- finish, fail, requeue and extend must quote (see held() in _common.lua), and 'acked'
-- to '0' until the holder renews the lease (extend.lua): an expiry before that is not
-- counted as an attempt (reclaim.lua). Returns the claimed records, each a flat HGETALL.
local function claim(max_claims, lease_ms, worker, groups_at, now)
  promote_tenants(now, MAX_PARKS)
  local assigned, steal_at = read_group(groups_at)
  local steal, queues_at = read_group(steal_at)
  local queues = read_queues(queues_at)
  -- Round robin across the worker's queues (sent with the one whose turn it is first):
  -- each claim tries the queue after the one the previous claim came from, then the others.
  -- Within a queue, its open gated lanes (pools, DAG limits) take turns with it.
  local turn, lane_turn = 0, tonumber(redis.call('GET', TOKENS) or '0')
  local claimed, taken = {}, {}
  local guard, parks = max_claims * 4 + 8, 0
  while #claimed < max_claims and guard > 0 and parks < MAX_PARKS do
    local user, score, second, second_user, queue
    for i = 0, #queues - 1 do
      for _, lane in ipairs(lanes_of(queues[(turn + i) % #queues + 1], lane_turn)) do
        local akey = active_key(lane)
        user, score, second, second_user = pick(assigned, akey)
        if not user then user, score, second, second_user = pick(steal, akey) end
        if user then
          queue = lane
          break
        end
      end
      if user then
        turn = (turn + i + 1) % #queues
        lane_turn = lane_turn + 1
        break
      end
    end
    if not user then break end
    local t = tenant(user)
    local why, due = blocked(t, now)
    if why then  -- its cap or rate changed since it was last served: parked now
      t.capped, t.limited = why == 'capped', due ~= nil
      park(t, score, due)
      parks = parks + 1
    else
      guard = guard - 1
      local id = take(user, queue)
      local new_score = advance_user(t, queue, score, second, second_user)
      if id then
        local tkey = task_key(id)
        local token = redis.call('INCR', TOKENS)
        redis.call('HINCRBY', tkey, 'attempts', 1)
        redis.call('HSET', tkey, 'claim_token', token, 'acked', '0', 'started_at', seconds(now),
          'worker_id', worker)
        taken[#taken + 1] = 't:' .. id
        taken[#taken + 1] = token
        set_state(tkey, id, user, 'queued', 'started', now + lease_ms)
        claimed_by(t, tkey, new_score, now)
        local record = claimed_record(tkey, id)
        local priority = NORMAL
        for i = 3, #record, 2 do
          if record[i] == 'priority' then priority = record[i + 1] end
        end
        count_queued(user, priority, -1, queue)
        claimed[#claimed + 1] = record
      end
    end
  end
  remember(taken, lease_ms)
  return claimed
end
