-- lock.lua: take or renew a lock held under a token, with a time to live.
-- KEYS[1]  the lock (String: the owner's token)
-- ARGV[1]  token   ARGV[2] time to live in milliseconds
-- Returns {'acquired'}, {'renewed'}, or {'held', owner token} when someone else holds it.

local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {'renewed'}
end
if owner then return {'held', owner} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {'acquired'}
