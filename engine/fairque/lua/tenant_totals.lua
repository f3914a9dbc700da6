-- tenant_totals.lua: what the dashboard measures a page of tenants' shares against, over
-- every tenant, summed on the server so that only a few numbers travel. A read: it
-- changes nothing.
-- KEYS[1] every tenant that ever had a task (Set)   KEYS[2] tenants with a policy (Set)
-- KEYS[3] counters (Hash: "queued {user}", "started {user}")
-- KEYS[4] the default policy (Hash: weight, ...)
-- ARGV[1] tenant hash prefix (+ user id; see _tenants.lua)
-- Returns {now (ms), 1 if any tenant has worker seconds in the last minute else 0,
-- competing tenants, sum of their weights, then for claims and for worker seconds:
-- their service of the last minute, and the sums of service / weight and of its square},
-- numbers as text. The definitions are those of fairque/core/tenants.py (``windowed``,
-- ``TenantFigures.competing``, ``TenantPolicy.resolve``'s weight); a test checks that
-- both give the same totals.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local minutes = now / 60000
local this_minute = math.floor(minutes)
local left = 1 - (minutes - this_minute)  -- how much of the previous minute still counts
local default_weight = tonumber(redis.call('HGET', KEYS[4], 'weight'))

local function windowed(win, current, previous)
  if win == this_minute then return current + previous * left end
  if win == this_minute - 1 then return current * left end
  return 0
end

local seen, users = {}, {}
for _, key in ipairs({KEYS[1], KEYS[2]}) do
  for _, user in ipairs(redis.call('SMEMBERS', key)) do
    if not seen[user] then
      seen[user] = true
      users[#users + 1] = user
    end
  end
end

local any_work, n, weights = 0, 0, 0
local sums = {count = {0, 0, 0}, time = {0, 0, 0}}
local function add(kind, service, weight)
  local s = sums[kind]
  s[1] = s[1] + service
  s[2] = s[2] + service / weight
  s[3] = s[3] + (service / weight) ^ 2
end

for _, user in ipairs(users) do
  local h = redis.call('HMGET', ARGV[1] .. user, 'weight', 'win', 'served', 'served_prev',
    'work', 'work_prev')
  local c = redis.call('HMGET', KEYS[3], 'queued ' .. user, 'started ' .. user)
  local win = tonumber(h[2])
  local served = windowed(win, tonumber(h[3]) or 0, tonumber(h[4]) or 0)
  local work = windowed(win, tonumber(h[5]) or 0, tonumber(h[6]) or 0)
  if work > 0 then any_work = 1 end
  if (tonumber(c[1]) or 0) > 0 or (tonumber(c[2]) or 0) > 0 or served > 0 then
    local weight = tonumber(h[1]) or default_weight
    if not weight or weight <= 0 then weight = 1 end
    n, weights = n + 1, weights + weight
    add('count', served, weight)
    add('time', work, weight)
  end
end

local function f17(x) return string.format('%.17g', x) end
return {f17(now), any_work, n, f17(weights), f17(sums.count[1]), f17(sums.count[2]),
  f17(sums.count[3]), f17(sums.time[1]), f17(sums.time[2]), f17(sums.time[3])}
