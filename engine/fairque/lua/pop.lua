-- pop.lua: claim up to N ready tasks, fairly across users, each with a lease.
--!include _common.lua
--!include _claim.lua
-- KEYS[12..13] claim tokens, this call's claim record (see _claim.lua)
-- ARGV[13]   N, the most tasks to claim
-- ARGV[14]   lease in milliseconds
-- ARGV[15]   worker id
-- ARGV[16]   A, number of assigned users, then A user ids ('*' = every active user)
-- ARGV[17+A] S, number of steal targets, then S user ids ('*' allowed)
-- ARGV[18+A+S] Q, number of the worker's queues, then Q queue names (the one whose turn
--            it is first)
-- Returns a list of claimed task records, each a flat HGETALL list (may be empty).
-- Sent again with the same claim record (its reply was lost), it claims nothing new and
-- returns the tasks the first run claimed that are still held under its tokens.
--
-- Queues: each claim takes the next of the worker's queues in turn (round robin; a
-- queue without a ready task for the worker is passed over) and claims there.
-- Fairness: among the users the worker may serve (assigned ones, or the steal targets
-- when no assigned user has a ready task), the one with the smallest virtual time is
-- served; per user the CRITICAL list first, then the smallest score of the sorted set.
-- The served user's virtual time becomes max(own, next smallest - lag) + cost / weight
-- (cost 1, or worker seconds with fairness by time; lag one turn): with the default
-- policy, plain round robin among busy users, and a user that was idle gains at most one
-- turn of credit. Tenants at their max_running or out of rate tokens are parked out of
-- the active set (see _tenants.lua).

local again = recall()
if again then return again end
return claim(tonumber(ARGV[13]), tonumber(ARGV[14]), ARGV[15], 16, now_ms())
