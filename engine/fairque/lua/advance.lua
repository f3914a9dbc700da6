-- advance.lua: move schedule cursors (the last tick handled) forward, never back.
-- KEYS[1]  cursors (Hash: schedule id -> epoch seconds of the last tick handled)
-- ARGV[1]  schedule id   ARGV[2] epoch seconds of the tick; then more pairs like them
-- Returns the first pair's cursor after the call (as a string).

local first
for i = 1, #ARGV, 2 do
  local current = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '-1')
  local now = tostring(current)
  if tonumber(ARGV[i + 1]) > current then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    now = ARGV[i + 1]
  end
  first = first or now
end
return first
