-- _tenants.lua: tenant policies (weight, max_running, rate and burst) and the state that
-- enforces them. Inlined by _common.lua (it needs the helpers above its include line).
--
-- Every script built by fairque/queue/calls.py gets, AFTER its own keys and arguments,
-- two tenant keys and two tenant arguments; they are taken off the ends of KEYS and ARGV
-- here, so a script's own KEYS[12..] and ARGV[13..] (and #KEYS, #ARGV) are as it documents.
-- KEYS[#KEYS - 1]  the default policy (Hash: weight, max_running, rate, burst)
-- KEYS[#KEYS]      parked tenants (ZSet): a tenant out of the active set because of its
--                  cap or its rate; score = when its next rate token is due (ms), or
--                  +inf while only its cap holds it
-- ARGV[#ARGV - 1]  fairness: 'count' (a claim costs 1) or 'time' (worker seconds)
-- ARGV[#ARGV]      tenant hash prefix (+ user id)
--
-- A tenant's hash holds its policy (weight, max_running, rate in starts per second,
-- burst; a field absent = the default policy's, '-1' = unlimited) and its state:
-- capped / limited ('1' while parked by its cap / its rate), vtime (its virtual time
-- while parked), tat (GCRA theoretical arrival time, ms), step (its latest advance),
-- cost (moving average of a run's seconds, time fairness) and the served window
-- (win = minute number; served, served_prev: claims; work, work_prev: seconds).
-- Running tasks per tenant are the 'started USER' counter of the stats hash, kept by
-- set_state in every transition, so a cap holds across worker crashes.

--!per-call: set for each call (see fairque/queue/scripts.py)
local TENANT_PREFIX = table.remove(ARGV)
local FAIRNESS = table.remove(ARGV)
local PARKED = table.remove(KEYS)
local TENANT_DEFAULT = table.remove(KEYS)
local TIME_FAIR = FAIRNESS == 'time'
--!end-per-call
local POLICY_FIELDS = {'weight', 'max_running', 'rate', 'burst'}
local TENANT_FIELDS = {'weight', 'max_running', 'rate', 'burst', 'capped', 'limited', 'vtime',
  'tat', 'step', 'cost', 'win'}
local FIRST_COST = 0.1  -- seconds charged for a tenant's first claim (time fairness)
local WINDOW_MS = 60000

local function f17(n) return string.format('%.17g', n) end

-- A stored limit: nil when absent or unlimited (negative).
local function limit_of(v)
  local n = tonumber(v)
  if n and n >= 0 then return n end
  return nil
end

--!per-call: set for each call (see fairque/queue/scripts.py)
local default_policy
--!end-per-call
-- The policy from a tenant's POLICY_FIELDS values (HMGET order), defaults filled in.
local function policy_of(r)
  if not default_policy then
    default_policy = redis.call('HMGET', TENANT_DEFAULT, unpack(POLICY_FIELDS))
  end
  local p = {}
  for i, name in ipairs(POLICY_FIELDS) do
    local v = r[i]
    if not v then v = default_policy[i] end
    p[name] = limit_of(v)
  end
  if not p.weight or p.weight <= 0 then p.weight = 1 end
  if not p.burst or p.burst < 1 then p.burst = 1 end
  return p
end

-- A tenant's policy and state.
local function tenant(user)
  local key = TENANT_PREFIX .. user
  local r = redis.call('HMGET', key, unpack(TENANT_FIELDS))
  local t = policy_of(r)
  t.key, t.user = key, user
  t.capped, t.limited = r[5] == '1', r[6] == '1'
  t.vtime, t.tat, t.step, t.cost = tonumber(r[7]), tonumber(r[8]), tonumber(r[9]), tonumber(r[10])
  t.win = tonumber(r[11])
  return t
end

local function running(user)
  return tonumber(redis.call('HGET', STATS, 'started ' .. user) or '0')
end

-- The tenant's started tasks, read once per claim (t.running).
local function running_of(t)
  if not t.running then t.running = running(t.user) end
  return t.running
end

local function has_ready(user, queue)
  return redis.call('LLEN', critical_key(user, queue)) > 0
    or redis.call('ZCARD', normal_key(user, queue)) > 0
end

-- GCRA: the emission interval and the tolerance (ms).
local function gcra(t)
  local interval = 1000 / t.rate
  return interval, (t.burst - 1) * interval
end

-- When the tenant's next rate token is due (ms), or nil when it has one now (or within
-- the clock's resolution of 1 ms: a token is never more than 1 ms early, and the early
-- ones do not add up, since each start moves tat by a whole interval).
local function token_due(t, now)
  if t.rate and t.tat then
    local _, tolerance = gcra(t)
    if t.tat - tolerance > now + 1 then return t.tat - tolerance end
  end
  return nil
end

-- Why the tenant may not start a task now ('capped' or 'limited', nil when it may),
-- and when its next rate token is due (ms; nil when it has one).
local function blocked(t, now)
  local due = token_due(t, now)
  if t.max_running and running_of(t) >= t.max_running then return 'capped', due end
  if due then return 'limited', due end
  return nil
end

-- Keep the parked set in step with the tenant's flags: scored by its rate token's due
-- time while limited (`due`, or as it was), +inf while only capped, absent otherwise.
local function place(t, due)
  if t.limited then
    if due then
      redis.call('ZADD', PARKED, f17(due), t.user)
    else
      redis.call('ZADD', PARKED, 'NX', now_ms(), t.user)
    end
  elseif t.capped then
    redis.call('ZADD', PARKED, '+inf', t.user)
  else
    redis.call('ZREM', PARKED, t.user)
  end
end

-- Take a tenant out of the active sets of its queues: its flags (t.capped, t.limited) are
-- set; it keeps its virtual time (`score`, nil when it is not active) for its return.
local function park(t, score, due)
  local flags = {}
  for _, why in ipairs({'capped', 'limited'}) do
    if t[why] then
      flags[#flags + 1] = why
      flags[#flags + 1] = '1'
    end
  end
  for _, queue in ipairs(queues_of(t.user)) do redis.call('ZREM', active_key(queue), t.user) end
  if score then
    t.vtime = score
    redis.call('HSET', t.key, 'vtime', f17(score), unpack(flags))
  else
    t.vtime = nil
    redis.call('HSET', t.key, unpack(flags))
    redis.call('HDEL', t.key, 'vtime')
  end
  place(t, due)
end

-- Put a tenant free of its cap and rate back among the active ones of each queue where it
-- has ready tasks: at its kept virtual time, kept between the smallest present and one
-- turn above it (it gains no credit while parked, and loses at most one turn).
local function reenter(t)
  place(t)
  if t.capped or t.limited then return end
  redis.call('HDEL', t.key, 'vtime')
  for _, queue in ipairs(queues_of(t.user)) do
    local akey = active_key(queue)
    if has_ready(t.user, queue) and not redis.call('ZSCORE', akey, t.user) then
      local first = redis.call('ZRANGE', akey, 0, 0, 'WITHSCORES')
      local low = tonumber(first[2]) or t.vtime or 0
      local score = math.max(low, math.min(t.vtime or low, low + math.max(1, t.step or 1)))
      redis.call('ZADD', akey, f17(score), t.user)
      if not is_default(queue) then lane_ready(queue) end
      redis.call('PUBLISH', READY_CHANNEL, t.user)
    end
  end
end

-- Is the tenant parked (so that a push must not make it active)?
local function parked(user)
  local r = redis.call('HMGET', TENANT_PREFIX .. user, 'capped', 'limited')
  return r[1] == '1' or r[2] == '1'
end

-- A started task of `user` stopped running (set_state): a tenant parked by its cap
-- comes back when it is under its cap again.
local function slot_freed(user)
  if redis.call('HGET', TENANT_PREFIX .. user, 'capped') ~= '1' then return end
  local t = tenant(user)
  if t.max_running and running(user) >= t.max_running then return end
  t.capped = false
  redis.call('HDEL', t.key, 'capped')
  reenter(t)
end

-- Tenants whose next rate token is due: free of their rate, back when not capped.
local function promote_tenants(now, limit)
  local due = redis.call('ZRANGEBYSCORE', PARKED, '-inf', now, 'LIMIT', 0, limit)
  for _, user in ipairs(due) do
    local t = tenant(user)
    t.limited = false
    redis.call('HDEL', t.key, 'limited')
    reenter(t)
  end
  return #due
end

-- When the next parked tenant's rate token is due (ms), or nil.
local function next_token_due()
  local r = redis.call('ZRANGE', PARKED, 0, 0, 'WITHSCORES')
  local due = tonumber(r[2])
  if due and due < math.huge then return due end
  return nil
end

-- Re-check a tenant after its policy (or the default policy) changed: park it, or let
-- it back, as its new policy says (its virtual time: the default queue's, if active).
local function recheck(user, now)
  local t = tenant(user)
  local score = tonumber(redis.call('ZSCORE', ACTIVE_USERS, user)) or t.vtime
  if not t.rate and t.tat then
    t.tat = nil
    redis.call('HDEL', t.key, 'tat')
  end
  local why, due = blocked(t, now)
  t.capped, t.limited = why == 'capped', due ~= nil
  redis.call('HDEL', t.key, 'capped', 'limited')
  if t.capped or t.limited then park(t, score, due) else reenter(t) end
end

-- Count a tenant's service in its one-minute window (claims and, by time, seconds).
local function count_service(t, now, claims, seconds_of_work)
  local minute = math.floor(now / WINDOW_MS)
  if t.win ~= minute then
    local r = redis.call('HMGET', t.key, 'served', 'work')
    local prev_served, prev_work = 0, 0
    if t.win == minute - 1 then prev_served, prev_work = r[1] or 0, r[2] or 0 end
    redis.call('HSET', t.key, 'win', minute, 'served', 0, 'work', 0,
      'served_prev', prev_served, 'work_prev', prev_work)
    t.win = minute
  end
  if claims > 0 then redis.call('HINCRBY', t.key, 'served', claims) end
  if seconds_of_work > 0 then redis.call('HINCRBYFLOAT', t.key, 'work', f17(seconds_of_work)) end
end

-- The cost of a claim (virtual time before the weight): 1, or the tenant's moving
-- average of worker seconds when fairness is by time.
local function claim_cost(t)
  if TIME_FAIR then return t.cost or FIRST_COST end
  return 1
end

-- A claim of the tenant's task `tkey` (after its virtual time advanced to `score`, nil
-- when it went idle): take a rate token, count it, note what was charged, and park the
-- tenant when it reached its cap or has no token left. `t` went through blocked() just
-- before the claim, so t.running is the count before it.
local function claimed_by(t, tkey, score, now)
  if t.rate then
    local interval = gcra(t)
    t.tat = math.max(t.tat or now, now) + interval
    redis.call('HSET', t.key, 'tat', f17(t.tat))
  end
  count_service(t, now, 1, 0)
  if TIME_FAIR then redis.call('HSET', tkey, 'charge', f17(claim_cost(t))) end
  local due = token_due(t, now)
  t.capped = t.max_running ~= nil and running_of(t) + 1 >= t.max_running
  t.limited = due ~= nil
  if t.capped or t.limited then park(t, score, due) end
end

-- Time fairness: a run of the tenant's task `tkey` took `seconds_taken` (nil: since it
-- started, by the server clock); correct the tenant's virtual time by the difference
-- with what its claim charged (an estimate), and update its moving average.
local function charge_actual(tkey, user, seconds_taken, now)
  if not TIME_FAIR then return end
  local r = redis.call('HMGET', tkey, 'charge', 'started_at')
  local charged = tonumber(r[1] or '')
  if not charged then return end
  redis.call('HDEL', tkey, 'charge')
  local actual = tonumber(seconds_taken or '')
  if not actual then actual = now / 1000 - (tonumber(r[2] or '') or now / 1000) end
  actual = math.max(0, actual)
  local t = tenant(user)
  local delta = (actual - charged) / t.weight
  count_service(t, now, 0, actual)
  redis.call('HSET', t.key, 'cost', f17(t.cost and (0.8 * t.cost + 0.2 * actual) or actual))
  if delta == 0 then return end
  local akey = active_key(lane_of(tkey))
  if redis.call('ZSCORE', akey, user) then
    redis.call('ZINCRBY', akey, f17(delta), user)
  elseif t.vtime then
    redis.call('HSET', t.key, 'vtime', f17(t.vtime + delta))
  end
end
