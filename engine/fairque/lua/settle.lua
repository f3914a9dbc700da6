-- settle.lua: record a worker's finished runs and claim its next tasks, in one step
-- (the worker's hot path: one round trip per batch instead of one per task).
--!include _common.lua
--!include _outcomes.lua
--!include _claim.lua
-- KEYS[12..13] claim tokens, this call's claim record (see _claim.lua)
-- KEYS[14]   (optional) the claim record of the worker's previous call, whose reply it
--            got: deleted, so a worker keeps at most one or two records alive
-- ARGV[13]   N, the most tasks to claim    ARGV[14] lease in milliseconds
-- ARGV[15]   worker id                     ARGV[16] longest backoff (s)
-- ARGV[17]   K, number of outcomes, then K times 7 values:
--            kind ('ok' or 'fail'), task id, claim_token, result or error (JSON),
--            duration (s), jitter in [0, 1), '1' if retryable
-- ARGV[18+7K] the worker's users and queues, as in pop.lua
-- Returns {replies of the K outcomes (as finish.lua / fail.lua), claimed records, in how
-- many ms the next rate-limited tenant's token is due (-1 when none): a worker with free
-- slots claims again then}.
-- Sent again with the same claim record (its reply was lost), it records nothing and
-- claims nothing new: it returns the first run's replies and the tasks it claimed that
-- are still held under its tokens.

local again, replied = recall()
if again then return {replied, again} end
if KEYS[14] then redis.call('DEL', KEYS[14]) end

local now = now_ms()
local backoff_max = tonumber(ARGV[16])
local k = tonumber(ARGV[17])
local replies = {}
for i = 0, k - 1 do
  local at = 18 + i * 7
  local kind, id, claim_token, data, duration = ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3],
    ARGV[at + 4]
  if kind == 'ok' then
    replies[#replies + 1] = finish_one(id, claim_token, data, duration, now)
  else
    replies[#replies + 1] = fail_one(id, claim_token, data, duration, tonumber(ARGV[at + 5]),
      backoff_max, ARGV[at + 6] == '1', now)
  end
end
if k > 0 then remember({'replies', cjson.encode(replies)}, tonumber(ARGV[14])) end
local claimed = {}
local wanted = tonumber(ARGV[13])
if wanted > 0 then claimed = claim(wanted, tonumber(ARGV[14]), ARGV[15], 18 + k * 7, now) end
local due = next_token_due()
return {replies, claimed, due and fmt(math.max(0, due - now)) or '-1'}
