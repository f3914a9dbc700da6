-- watch.lua: end the runs that have a timeout or callbacks: time out the late ones, and
-- claim the ones that ended, each by exactly one caller.
--!include _common.lua
-- KEYS[12]  watched runs (ZSet: run id -> when it was last looked at, ms)
-- ARGV[13]  the most runs to look at in this call   ARGV[14] run key prefix (+ run id)
-- Returns {ended run ids, timed-out run ids}.
-- Looks at the runs looked at longest ago (each one looked at moves to the back, so
-- every watched run gets its turn however many there are). A run past the `timeout_at`
-- (ms) on its hash gets `timed_out`; its waiting tasks are canceled (error type
-- RunTimeout) and its started ones asked to stop. A run whose tasks all ended leaves the
-- watched set and gets `ended_at` on its hash: the caller that sees it in the reply is
-- the only one, so it runs the run's callbacks. A watched id whose run was forgotten is
-- dropped.

local WATCHED, RUN_PREFIX = KEYS[12], ARGV[14]
local now = now_ms()
local ended, timed_out = {}, {}

local function time_out(run_id, rkey, ids, timeout)
  redis.call('HSET', rkey, 'timed_out', '1')
  local message = 'run ' .. run_id .. ' ran longer than its timeout of ' .. (timeout or '?') ..
    ' s'
  for _, id in ipairs(ids) do cancel_task(id, 'RunTimeout', message, now) end
  timed_out[#timed_out + 1] = run_id
end

for _, run_id in ipairs(redis.call('ZRANGE', WATCHED, 0, tonumber(ARGV[13]) - 1)) do
  local rkey = RUN_PREFIX .. run_id
  local r = redis.call('HMGET', rkey, 'task_ids', 'timeout_at', 'timed_out',
    'dagrun_timeout_seconds')
  if not r[1] then
    redis.call('ZREM', WATCHED, run_id)
  else
    local ids = run_task_ids(r[1])
    if r[2] and not r[3] and tonumber(r[2]) <= now and not ended_at(ids) then
      time_out(run_id, rkey, ids, r[4])
    end
    if ended_at(ids) then
      redis.call('ZREM', WATCHED, run_id)
      redis.call('HSET', rkey, 'ended_at', seconds(now))
      ended[#ended + 1] = run_id
    else
      redis.call('ZADD', WATCHED, now, run_id)
    end
  end
end
return {ended, timed_out}
