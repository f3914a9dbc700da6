-- continue.lua: carry on one step of the bounded work left over: the next pending step
-- (the rest of a release, of a mapped task's instances, of a held run's start, or of a
-- committed batch's opening; one not finished goes to the back, so several share the
-- calls), else a batch given up (its staging timeout
-- passed: its producer stopped before the commit) is taken back a step. Workers call
-- it with their periodic work, and again at once while work is left.
--!include _common.lua
--!include _writes.lua
--!include _batch.lua
-- KEYS[12]    the batches being staged
-- Returns {pending steps left, batches given up and not yet taken back}.

local now = now_ms()
local entry = redis.call('LPOP', PENDING_STEPS)
if entry then
  local step = cjson.decode(entry)
  if step[1] == 'release' then
    resume_release(step[2], step[3], step[4], step[5], now)
  elseif step[1] == 'expand' then
    map_continue(step[2], step[3], step[4], now)
  elseif step[1] == 'start' then
    start_from(step[2], now)
  elseif open_batch(step[2], TELL_STEP, now) > 0 then
    redis.call('RPUSH', PENDING_STEPS, entry)
  end
else
  local expired = redis.call('ZRANGEBYSCORE', BATCHES, '-inf', now, 'LIMIT', 0, 1)[1]
  if expired then unstage_batch(expired, STEP, now) end
end
return {redis.call('LLEN', PENDING_STEPS), redis.call('ZCOUNT', BATCHES, '-inf', now)}
