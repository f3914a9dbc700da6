-- unlock.lua: release a lock, only by its owner (compare the token, then delete).
-- KEYS[1]  the lock (String: the owner's token)
-- ARGV[1]  token
-- Returns 1 when released, 0 when the caller did not hold it.

if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
