-- advance.lua: move a schedule's cursor (the last tick handled) forward, never back.
-- KEYS[1]  cursors (Hash: schedule id -> epoch seconds of the last tick handled)
-- ARGV[1]  schedule id   ARGV[2] epoch seconds of the tick
-- Returns the cursor after the call (as a string).

local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
if tonumber(ARGV[2]) > current then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return ARGV[2]
end
return tostring(current)
