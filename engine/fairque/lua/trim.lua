-- trim.lua: forget the runs that ended more than the retention ago: the run's record,
-- its task records, its XCom values and lineage, and its entries in the run indexes.
--!include _common.lua
-- KEYS[12] every run (ZSet)   KEYS[13] runs by retention start (ZSet)
-- KEYS[14] schedule cursors (Hash: cursor name -> epoch seconds of the last tick handled)
-- ARGV[13] retention in milliseconds   ARGV[14] the most runs to look at in this call
-- ARGV[15] run key prefix (+ run id)    ARGV[16] DAG-runs key prefix (+ DAG id)
-- Returns {removed count, kept count}.
-- Looks at the runs whose retention started longest ago, oldest first. A run with an
-- active task has its retention start moved to now, one that ended less than the
-- retention ago to its end, so every call makes progress. A run the scheduler fired stays
-- until its schedule's cursor passed its tick: until then push.lua tells the tick was
-- fired by the run's existence, after that by the cursor (runs are created once).
-- Bounded: once the runs looked at hold 10 x the step size of tasks, the rest wait for
-- the next call (a single larger run is still looked at in one call).

local now = now_ms()
local TASK_BUDGET = 10 * STEP  -- tasks read (or forgotten) per call, after the first run
local retention = tonumber(ARGV[13])
local RUNS, RETENTION, CURSORS = KEYS[12], KEYS[13], KEYS[14]
local RUN_PREFIX, DAG_RUNS_PREFIX = ARGV[15], ARGV[16]

-- True while the scheduler may still fire this tick (its cursor has not passed it).
local function tick_pending(schedule, tick)
  if not schedule then return false end
  local cursor = redis.call('HGET', CURSORS, schedule)
  return cursor ~= false and tonumber(cursor) < tonumber(tick)
end

local function forget(run_id, ids, dag_id)
  for _, id in ipairs(ids) do
    local tkey = task_key(id)
    local state = redis.call('HGET', tkey, 'state')
    if state then
      unregister(tkey, id, state)
    else -- the record expired first (result_ttl_seconds): its registry entry may remain
      for _, name in ipairs({'finished', 'failed', 'canceled'}) do redis.call('ZREM', REG[name], id) end
    end
    redis.call('DEL', tkey, WAITING_PREFIX .. id, BLOCKED_PREFIX .. id)
  end
  redis.call('DEL', RUN_PREFIX .. run_id, XCOM_PREFIX .. run_id, LINEAGE_PREFIX .. run_id)
  redis.call('ZREM', RUNS, run_id)
  redis.call('ZREM', RETENTION, run_id)
  if dag_id then redis.call('ZREM', DAG_RUNS_PREFIX .. dag_id, run_id) end
end

local due = redis.call('ZRANGEBYSCORE', RETENTION, '-inf', now - retention,
  'LIMIT', 0, tonumber(ARGV[14]))
local removed, kept, tasks = 0, 0, 0
for _, run_id in ipairs(due) do
  if tasks >= TASK_BUDGET then break end  -- the rest in the next call
  local r = redis.call('HMGET', RUN_PREFIX .. run_id, 'task_ids', 'dag_id', 'schedule', 'tick')
  local ids = run_task_ids(r[1])
  tasks = tasks + #ids
  local ended = ended_at(ids)
  if ended == nil or tick_pending(r[3], r[4]) then
    redis.call('ZADD', RETENTION, now, run_id)
    kept = kept + 1
  elseif ended > now - retention then
    redis.call('ZADD', RETENTION, ended, run_id)
    kept = kept + 1
  else
    forget(run_id, ids, r[2])
    removed = removed + 1
  end
end
return {removed, kept}
