-- watch.lua: end the runs that have a timeout or callbacks: time out the late ones, and
-- claim the ones that ended, each by exactly one caller.
--!include _common.lua
-- KEYS[12]  watched runs (ZSet: run id -> deadline in ms, '+inf' without a timeout)
-- ARGV[13]  the most runs to look at in this call   ARGV[14] run key prefix (+ run id)
-- Returns {ended run ids, timed-out run ids}. A run past its deadline gets `timed_out`
-- on its hash; its waiting tasks are canceled (error type RunTimeout) and its started
-- ones asked to stop; it stays watched (deadline '+inf') until they have. A run whose
-- tasks all ended leaves the watched set and gets `ended_at` on its hash: the caller
-- that sees it in the reply is the only one, so it runs the run's callbacks. A watched
-- id whose run was forgotten is dropped.

local WATCHED, RUN_PREFIX = KEYS[12], ARGV[14]
local now = now_ms()
local ended, timed_out = {}, {}

local function time_out(run_id, rkey, ids)
  redis.call('HSET', rkey, 'timed_out', '1')
  local timeout = redis.call('HGET', rkey, 'dagrun_timeout_seconds') or '?'
  for _, id in ipairs(ids) do
    cancel_task(id, 'RunTimeout', 'run ' .. run_id .. ' ran longer than its timeout of ' ..
      timeout .. ' s', now)
  end
  redis.call('ZADD', WATCHED, '+inf', run_id)
  timed_out[#timed_out + 1] = run_id
end

local watched = redis.call('ZRANGE', WATCHED, 0, tonumber(ARGV[13]) - 1, 'WITHSCORES')
for i = 1, #watched, 2 do
  local run_id, deadline = watched[i], tonumber(watched[i + 1])
  local rkey = RUN_PREFIX .. run_id
  local task_ids = redis.call('HGET', rkey, 'task_ids')
  if not task_ids then
    redis.call('ZREM', WATCHED, run_id)
  else
    local ids = run_task_ids(task_ids)
    if deadline <= now and not ended_at(ids) then time_out(run_id, rkey, ids) end
    if ended_at(ids) then
      redis.call('ZREM', WATCHED, run_id)
      redis.call('HSET', rkey, 'ended_at', seconds(now))
      ended[#ended + 1] = run_id
    end
  end
end
return {ended, timed_out}
