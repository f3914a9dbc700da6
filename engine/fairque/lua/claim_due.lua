-- claim_due.lua: claim the scheduled DAGs whose time has come, for one scheduler.
-- KEYS[1]  the due index (ZSet: DAG id -> epoch seconds when it is next due)
-- ARGV[1]  now (epoch seconds)   ARGV[2] the claim's lease (seconds)   ARGV[3] at most this many
-- Returns {id, score, id, score, ...}: the claimed DAGs, earliest first, with the score
-- they had. Each one's score becomes now + lease, so no other scheduler claims it until
-- the claimer sets its next fire time or the lease ends (the claimer died: another one
-- takes over). Two schedulers calling at once claim disjoint sets.

local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[3])
if #due == 0 then return due end
local lease_end = string.format('%.6f', tonumber(ARGV[1]) + tonumber(ARGV[2]))
local pairs_ = {}
for i = 1, #due, 2 do
  pairs_[#pairs_ + 1] = lease_end
  pairs_[#pairs_ + 1] = due[i]
end
redis.call('ZADD', KEYS[1], unpack(pairs_))
return due
