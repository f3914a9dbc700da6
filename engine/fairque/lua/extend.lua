-- extend.lua: renew the leases of claimed tasks.
--!include _common.lua
-- ARGV[13]    lease in milliseconds from now
-- ARGV[14..]  pairs: task id, claim_token
-- Returns one word per pair: 'ok', 'cancel' (still held, cancellation requested) or
-- 'lost' (the lease is gone: the caller must stop working on the task).
-- A renewal acknowledges the claim ('acked'): the holder has the task, so an expiry from
-- now on counts as an attempt (see reclaim.lua).

local expiry = now_ms() + tonumber(ARGV[13])
local out = {}
for i = 14, #ARGV, 2 do
  local id = ARGV[i]
  local tkey = task_key(id)
  if held(tkey, ARGV[i + 1]) then
    redis.call('ZADD', REG.started, 'XX', fmt(expiry), id)
    redis.call('HSET', tkey, 'acked', '1')
    if redis.call('HGET', tkey, 'cancel_requested') == '1' then
      out[#out + 1] = 'cancel'
    else
      out[#out + 1] = 'ok'
    end
  else
    out[#out + 1] = 'lost'
  end
end
return out
