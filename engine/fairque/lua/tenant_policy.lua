-- tenant_policy.lua: set or unset fields of a tenant's policy (or of the default policy), and
-- apply the change at once: a tenant now over its cap or out of rate tokens is parked,
-- one no longer held comes back (see _tenants.lua).
--!include _common.lua
-- KEYS[12]   tenants with a policy of their own (Set)
-- ARGV[13]   user id ('*' = the default policy)
-- ARGV[14]   N, then N policy field names and values to set
-- ARGV[15+2N] M, then M policy field names to delete
-- Returns {'ok', number of tenants checked again}. A change of the default policy checks
-- the parked tenants again at once; an active tenant it puts over a limit is parked the
-- next time it is picked.

local user = ARGV[13]
local n = tonumber(ARGV[14])
local set = {}
for i = 1, 2 * n do set[i] = ARGV[14 + i] end
local m = tonumber(ARGV[15 + 2 * n])
local unset = {}
for i = 1, m do unset[i] = ARGV[15 + 2 * n + i] end

local key = TENANT_DEFAULT
if user ~= '*' then key = TENANT_PREFIX .. user end
if #set > 0 then redis.call('HSET', key, unpack(set)) end
if #unset > 0 then redis.call('HDEL', key, unpack(unset)) end

local now = now_ms()
if user == '*' then
  local users = redis.call('ZRANGE', PARKED, 0, -1)
  for _, parked_user in ipairs(users) do recheck(parked_user, now) end
  return {'ok', #users}
end
local own = redis.call('HMGET', key, unpack(POLICY_FIELDS))
if own[1] or own[2] or own[3] or own[4] then
  redis.call('SADD', KEYS[12], user)
else
  redis.call('SREM', KEYS[12], user)
end
recheck(user, now)
return {'ok', 1}
