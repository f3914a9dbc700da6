-- _common.lua: shared helpers, inlined where a script says `--!include _common.lua`.
--
-- Every script receives the same leading KEYS and ARGV (built by fairque/core/keys.py
-- and fairque/queue/calls.py); its own arguments follow them.
-- KEYS[1..7]  state registries (ZSet) in this order: queued (only tasks queued before
--             the queued index, see set_state), started, deferred, finished, failed,
--             canceled, scheduled
-- KEYS[8]     stats (Hash)       KEYS[9]  active users (ZSet, score = virtual time)
-- KEYS[10]    order clock (String, microseconds)
-- KEYS[11]    every user (Set)
-- ARGV[1..6]  key templates: task prefix, user-queue head, critical tail, normal tail,
--             deps-waiting prefix, deps-blocked prefix
-- ARGV[7]     ready channel (Pub/Sub)
-- ARGV[8]     priority ageing step in microseconds
-- ARGV[9]     seconds to keep a task record after it ends
-- ARGV[10]    XCom key prefix (+ scope)   ARGV[11] lineage key prefix (+ scope)
-- ARGV[12]    seconds to keep XCom values and lineage
-- After a script's own keys and arguments come the tenant keys and arguments, taken off
-- KEYS and ARGV by _tenants.lua (inlined below; see its header), then the queue
-- templates (Keys.queue_templates), taken off the end of ARGV here, in this order:
--   the default queue's name (its keys are the ones above: KEYS[9] and the user-queue
--     templates);
--   head of another queue's keys (+ queue); user infix (another queue's user queue:
--     head .. queue .. infix .. user .. critical or normal tail); active-set tail
--     (another queue's active set: head .. queue .. tail);
--   tenant-queues prefix (+ user): the other queues where it has ready tasks;
--   lane separator: a gated task (of a pool, or of a DAG with max_active_tasks) waits in
--     the lane queue ~ gate [~ gate], a queue of its own (keys as another queue's);
--   slots per gate (Hash); started tasks per gate (Hash);
--   open-lanes prefix (+ queue): a queue's gated lanes with every gate open;
--   gate-lanes prefix (+ gate): the lanes with ready tasks behind a gate;
--   batch prefix (+ batch id): a large batch's staged task ids (List, see stage.lua);
--   step size: the most tasks one step of a large batch writes or takes back; half of it
--     the most tasks one call tells of an upstream's end or opens (see release below).
-- Last in KEYS: the pending steps (List: bounded work left over, see continue.lua),
-- then the queued tasks per queue (Hash: name -> count, the queues other than the
-- default one), then the queued index (ZSet and Hash, see set_state below).
-- KEYS[1], the registry of queued tasks, holds only tasks queued before that index.

--!per-call: set for each call (see fairque/queue/scripts.py)
local STATES = {'queued', 'started', 'deferred', 'finished', 'failed', 'canceled', 'scheduled'}
local REG = {}
for i, name in ipairs(STATES) do REG[name] = KEYS[i] end
local ACTIVE_STATE = {queued = true, started = true, deferred = true, scheduled = true}
local STATS, ACTIVE_USERS, CLOCK, ALL_USERS = KEYS[8], KEYS[9], KEYS[10], KEYS[11]
local TASK_PREFIX, QUEUE_HEAD, CRITICAL_TAIL, NORMAL_TAIL = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local WAITING_PREFIX, BLOCKED_PREFIX = ARGV[5], ARGV[6]
local READY_CHANNEL = ARGV[7]
local AGING_US = tonumber(ARGV[8])
local RESULT_TTL = tonumber(ARGV[9])
local XCOM_PREFIX, LINEAGE_PREFIX, XCOM_TTL = ARGV[10], ARGV[11], tonumber(ARGV[12])
local CRITICAL = 6
local NORMAL = '3'  -- a record without 'priority' is NORMAL (Task.to_hash leaves it out)
-- What a record without them holds (RECORD_DEFAULTS in fairque/core/models.py).
local MAX_RETRIES, RETRY_DELAY = '3', '1.0'
local QUEUED_SECONDS = table.remove(KEYS)
local QUEUED_SINCE = table.remove(KEYS)
local QUEUE_COUNTS = table.remove(KEYS)
local PENDING_STEPS = table.remove(KEYS)
local STEP = tonumber(table.remove(ARGV))
local TELL_STEP = math.max(1, math.floor(STEP / 2))  -- ~2 writes a task (QueueConfig.half_step)
local BATCH_PREFIX = table.remove(ARGV)
local GATE_LANES = table.remove(ARGV)
local OPEN_LANES = table.remove(ARGV)
local GATES_RUNNING = table.remove(ARGV)
local GATES = table.remove(ARGV)
local LANE_SEP = table.remove(ARGV)
local TENANT_QUEUES = table.remove(ARGV)
local ACTIVE_TAIL = table.remove(ARGV)
local QUEUE_USER = table.remove(ARGV)
local QUEUES_HEAD = table.remove(ARGV)
local DEFAULT_QUEUE = table.remove(ARGV)
--!end-per-call

local function fmt(n) return string.format('%.0f', n) end

-- Server time: milliseconds and microseconds since the epoch, read once per call (a
-- script runs alone, so one reading serves it; next_stamp keeps stamps increasing).
--!per-call: set for each call (see fairque/queue/scripts.py)
local call_time
--!end-per-call
local function now_us()
  if not call_time then
    local t = redis.call('TIME')
    call_time = tonumber(t[1]) * 1000000 + tonumber(t[2])
  end
  return call_time
end
local function now_ms() return math.floor(now_us() / 1000) end
local function seconds(ms) return string.format('%.3f', ms / 1000) end

local function task_key(id) return TASK_PREFIX .. id end

-- Queues (routing): a task's `queue` field (absent: the default queue) names the
-- user queues and the active set it waits in; the default queue's are the keys of the
-- time before queues.
local function is_default(queue) return not queue or queue == DEFAULT_QUEUE end
local function queue_head(queue)
  if is_default(queue) then return QUEUE_HEAD end
  return QUEUES_HEAD .. queue .. QUEUE_USER
end
local function critical_key(user, queue) return queue_head(queue) .. user .. CRITICAL_TAIL end
local function normal_key(user, queue) return queue_head(queue) .. user .. NORMAL_TAIL end
local function active_key(queue)
  if is_default(queue) then return ACTIVE_USERS end
  return QUEUES_HEAD .. queue .. ACTIVE_TAIL
end

-- Gates: a pool (`pool` field) and a DAG's max_active_tasks (`dag_gate` field) hold at
-- most their slots of started tasks. A gated task waits in its lane (queue ~ gate ...),
-- whose active set is a queue's: a claim tries a queue's open lanes too, so a lane with
-- a full gate is never looked at, and the other work is served as if it did not exist.
-- The step that takes a gate's last slot closes its lanes; the one that frees it (any
-- end of a started task, a reclaim included) opens them again.

-- The lane of a task: its queue, then its gates.
local function lane_from(queue, pool, dag_gate)
  local lane = queue or DEFAULT_QUEUE
  if pool then lane = lane .. LANE_SEP .. pool end
  if dag_gate then lane = lane .. LANE_SEP .. dag_gate end
  return lane
end

local function lane_of(tkey)
  return lane_from(unpack(redis.call('HMGET', tkey, 'queue', 'pool', 'dag_gate')))
end

-- A lane's queue and its gates.
local function lane_parts(lane)
  local parts, start = {}, 1
  while true do
    local at = string.find(lane, LANE_SEP, start, true)
    if not at then break end
    parts[#parts + 1] = string.sub(lane, start, at - 1)
    start = at + #LANE_SEP
  end
  parts[#parts + 1] = string.sub(lane, start)
  return table.remove(parts, 1), parts
end

-- A gate is open while it has a free slot (a gate without slots is unlimited).
local function gate_open(gate)
  local slots = tonumber(redis.call('HGET', GATES, gate) or '')
  return not slots or tonumber(redis.call('HGET', GATES_RUNNING, gate) or '0') < slots
end

local function gates_open(gates)
  for _, gate in ipairs(gates) do
    if not gate_open(gate) then return false end
  end
  return true
end

-- A gated lane has ready tasks: note it behind its gates, open when they all are.
local function lane_ready(lane)
  local queue, gates = lane_parts(lane)
  if #gates == 0 then return end
  for _, gate in ipairs(gates) do redis.call('SADD', GATE_LANES .. gate, lane) end
  if gates_open(gates) then redis.call('SADD', OPEN_LANES .. queue, lane) end
end

-- A gated lane has no active user left.
local function lane_idle(lane)
  local queue, gates = lane_parts(lane)
  if #gates == 0 then return end
  for _, gate in ipairs(gates) do redis.call('SREM', GATE_LANES .. gate, lane) end
  redis.call('SREM', OPEN_LANES .. queue, lane)
end

-- A gate opened or closed: open its lanes whose gates are all open (idle workers are
-- told), or close them all.
local function gate_changed(gate)
  local open = gate_open(gate)
  for _, lane in ipairs(redis.call('SMEMBERS', GATE_LANES .. gate)) do
    local queue, gates = lane_parts(lane)
    if not open then
      redis.call('SREM', OPEN_LANES .. queue, lane)
    elseif gates_open(gates) and redis.call('SADD', OPEN_LANES .. queue, lane) == 1 then
      redis.call('PUBLISH', READY_CHANNEL, lane)
    end
  end
end

-- A gated task started (delta 1) or stopped running (-1): count it in its gates; a gate
-- that became full closes its lanes, one that has a free slot again opens them.
local function gates_moved(tkey, delta)
  local r = redis.call('HMGET', tkey, 'pool', 'dag_gate')
  for i = 1, 2 do
    local gate = r[i]
    if gate then
      local running = redis.call('HINCRBY', GATES_RUNNING, gate, delta)
      local slots = tonumber(redis.call('HGET', GATES, gate) or '')
      if slots and ((delta > 0 and running >= slots) or (delta < 0 and running == slots - 1)) then
        gate_changed(gate)
      end
    end
  end
end

-- The lanes a claim of `queue` tries: the queue, then its open gated lanes, rotated by
-- `turn` (round robin among them).
local function lanes_of(queue, turn)
  local open = redis.call('SMEMBERS', OPEN_LANES .. queue)
  if #open == 0 then return {queue} end
  table.insert(open, 1, queue)
  local lanes = {}
  for i = 1, #open do lanes[i] = open[(turn + i - 1) % #open + 1] end
  return lanes
end

-- The queues where a user may have ready tasks: the default one and those in its set.
local function queues_of(user)
  local queues = redis.call('SMEMBERS', TENANT_QUEUES .. user)
  table.insert(queues, 1, DEFAULT_QUEUE)
  return queues
end

-- A strictly increasing stamp (µs): FIFO order within a priority, even inside one script.
local function next_stamp()
  local stamp = now_us()
  local last = tonumber(redis.call('GET', CLOCK) or '0')
  if stamp <= last then stamp = last + 1 end
  redis.call('SET', CLOCK, fmt(stamp))
  return stamp
end

--!include _tenants.lua

-- Queued tasks have no registry entry each (one costs ~100 bytes a task; their users'
-- queues hold them): the queued index counts them per second of their `order` stamp
-- (QUEUED_SECONDS: second -> count, and 'all') and keeps the seconds that hold some,
-- scored by the earliest stamp (ms) that entered each (QUEUED_SINCE), which gives the
-- oldest queued task's age to within a second. A task queued before the index was kept
-- is in the registry of queued tasks (REG.queued) instead: it leaves that, and
-- promote.lua moves such tasks into the index.

-- The millisecond of an `order` stamp (µs), as a number.
local function stamp_ms(order) return math.floor(tonumber(order) / 1000) end

-- The second (the index's field) and the millisecond of a queued task's `order` stamp.
local function queued_at(order)
  local ms = stamp_ms(order)
  return fmt(math.floor(ms / 1000)), fmt(ms)
end

-- Whether the registry of queued tasks still holds tasks queued before the index: asked
-- once per call (only an earlier version writes it), not once per task leaving QUEUED.
--!per-call: set for each call (see fairque/queue/scripts.py)
local legacy_queued
--!end-per-call
local function holds_legacy_queued()
  if legacy_queued == nil then legacy_queued = redis.call('EXISTS', REG.queued) == 1 end
  return legacy_queued
end

-- When a record was enqueued (seconds, text): its `enqueued_at`, which a task queued at
-- once when it became visible leaves out (its first `order` stamp says it; see
-- enqueued below), as TaskRecord reads it.
local function enqueued_at_of(tkey)
  local r = redis.call('HMGET', tkey, 'enqueued_at', 'order')
  if r[1] or not r[2] then return r[1] end
  return seconds(stamp_ms(r[2]))
end

-- A task became visible (pushed, its batch opened, a mapped instance made) in `state`:
-- it is enqueued now. A QUEUED one's first order stamp says so (a record leaves out what
-- it can tell); any other state writes `enqueued_at`, which make_ready keeps later.
local function enqueued(tkey, state, now)
  if state ~= 'queued' then redis.call('HSET', tkey, 'enqueued_at', seconds(now)) end
end

-- Count a task that became QUEUED at `ms` (its stamp: every path to QUEUED gives one,
-- or keeps the one it had; else `ms` becomes it, so that leaving finds its second).
local function index_queued(tkey, ms)
  local order = redis.call('HGET', tkey, 'order')
  if not order then
    order = fmt(ms * 1000)
    redis.call('HSET', tkey, 'order', order)
  end
  local second, since = queued_at(order)
  redis.call('HINCRBY', QUEUED_SECONDS, 'all', 1)
  redis.call('HINCRBY', QUEUED_SECONDS, second, 1)
  redis.call('ZADD', QUEUED_SINCE, 'LT', since, second)
end

-- Stop counting a task that leaves QUEUED.
local function unindex_queued(tkey, id)
  if holds_legacy_queued() and redis.call('ZREM', REG.queued, id) == 1 then
    return  -- queued before the index
  end
  local second = queued_at(redis.call('HGET', tkey, 'order'))
  redis.call('HINCRBY', QUEUED_SECONDS, 'all', -1)
  if redis.call('HINCRBY', QUEUED_SECONDS, second, -1) <= 0 then
    redis.call('HDEL', QUEUED_SECONDS, second)
    redis.call('ZREM', QUEUED_SINCE, second)
  end
end

-- Enter the registry of `state` (for 'queued', the queued index) with `score`.
local function register(tkey, id, state, score)
  if state == 'queued' then
    index_queued(tkey, score)
  else
    redis.call('ZADD', REG[state], fmt(score), id)
  end
end

-- Leave the registry of `state` (before the record changes or goes).
local function unregister(tkey, id, state)
  if state == 'queued' then
    unindex_queued(tkey, id)
  else
    redis.call('ZREM', REG[state], id)
  end
end

-- Move a task between state registries and keep the per-user counters in step.
-- Counters of active states go up and down; counters of terminal states only go up.
-- `...`: more field names and values to write to the record with its state.
local function set_state(tkey, id, user, from, to, score, ...)
  if from then
    unregister(tkey, id, from)
    if ACTIVE_STATE[from] then redis.call('HINCRBY', STATS, from .. ' ' .. user, -1) end
  end
  redis.call('HINCRBY', STATS, to .. ' ' .. user, 1)
  if not ACTIVE_STATE[to] then redis.call('HINCRBY', STATS, 'total ' .. to, 1) end
  redis.call('HSET', tkey, 'state', to, ...)
  register(tkey, id, to, score)
  if from == 'started' then
    slot_freed(user)
    gates_moved(tkey, -1)
  elseif to == 'started' then
    gates_moved(tkey, 1)
  end
end

-- A user with ready tasks of `queue` joins its active set at the smallest virtual time
-- present, so an idle user keeps no hoard of credit; idle workers are told through
-- Pub/Sub. A tenant parked by its cap or rate stays out: it comes back when it may run.
local function activate(user, queue)
  if not is_default(queue) then
    redis.call('SADD', TENANT_QUEUES .. user, queue)
    lane_ready(queue)
  end
  local akey = active_key(queue)
  if redis.call('ZSCORE', akey, user) or parked(user) then return end
  local first = redis.call('ZRANGE', akey, 0, 0, 'WITHSCORES')
  redis.call('ZADD', akey, first[2] or '0', user)
  redis.call('PUBLISH', READY_CHANNEL, user)
end

-- Drop a user from the active set of `queue` when both of its queues there are empty.
local function deactivate_if_idle(user, queue)
  if redis.call('LLEN', critical_key(user, queue)) == 0
      and redis.call('ZCARD', normal_key(user, queue)) == 0 then
    redis.call('ZREM', active_key(queue), user)
    if not is_default(queue) then
      redis.call('SREM', TENANT_QUEUES .. user, queue)
      if redis.call('ZCARD', active_key(queue)) == 0 then lane_idle(queue) end
    end
    return true
  end
  return false
end

-- Keep the count of a user's queued tasks per priority, and of another queue's queued
-- tasks (for statistics; the default queue's is the rest).
local function count_queued(user, priority, delta, queue)
  redis.call('HINCRBY', STATS, 'p' .. priority .. ' ' .. user, delta)
  if not is_default(queue) then redis.call('HINCRBY', QUEUE_COUNTS, queue, delta) end
end

-- Put a ready task in its user's queue of `queue`. CRITICAL: the list (at the front when
-- `front`); priorities 1-5: score = order stamp - priority * ageing step, smallest first.
local function enqueue(id, user, priority, stamp, front, queue)
  if priority == CRITICAL then
    if front then
      redis.call('LPUSH', critical_key(user, queue), id)
    else
      redis.call('RPUSH', critical_key(user, queue), id)
    end
  else
    redis.call('ZADD', normal_key(user, queue), fmt(stamp - priority * AGING_US), id)
  end
  count_queued(user, priority, 1, queue)
  activate(user, queue)
end

-- Remove a queued task from its user's queue of `queue` (for cancel and delete).
local function dequeue(id, user, priority, queue)
  if priority == CRITICAL then
    redis.call('LREM', critical_key(user, queue), 1, id)
  else
    redis.call('ZREM', normal_key(user, queue), id)
  end
  count_queued(user, priority, -1, queue)
  deactivate_if_idle(user, queue)
end

-- Make a task runnable: SCHEDULED while its execute_after lies ahead, else QUEUED.
local function make_ready(tkey, id, user, from, now)
  local r = redis.call('HMGET', tkey, 'priority', 'execute_after', 'queue', 'pool', 'dag_gate',
    'enqueued_at', 'order')
  local due = r[2] and math.floor(tonumber(r[2]) * 1000)
  if due and due > now then
    set_state(tkey, id, user, from, 'scheduled', due)
    return 'scheduled'
  end
  local stamp = next_stamp()
  if r[7] and not r[6] then  -- its enqueued_at was its first stamp's: keep it
    set_state(tkey, id, user, from, 'queued', now, 'order', fmt(stamp),
      'enqueued_at', seconds(stamp_ms(r[7])))
  else
    set_state(tkey, id, user, from, 'queued', now, 'order', fmt(stamp))
  end
  enqueue(id, user, tonumber(r[1] or NORMAL), stamp, false, lane_from(r[3], r[4], r[5]))
  return 'queued'
end

-- Trigger rules: may a task run, given how its upstreams ended so far? Returns 'run',
-- 'wait', or the cause of a cancel: 'upstream_failed' or 'skipped' (Airflow's words).
-- `failed` counts failed upstreams and upstreams canceled as upstream_failed; `canceled`
-- counts the other canceled (skipped) ones. The same table as fairque/tasks/rules.py.
local function decide(rule, total, finished, failed, canceled)
  local done = finished + failed + canceled
  if total == 0 then return 'run' end
  if rule == 'all_done' then
    if done == total then return 'run' end
  elseif rule == 'all_failed' then
    if finished + canceled > 0 then return 'skipped' elseif failed == total then return 'run' end
  elseif rule == 'one_success' then
    if finished > 0 then return 'run' end
    if done == total then
      if canceled == total then return 'skipped' end
      return 'upstream_failed'
    end
  elseif rule == 'one_failed' then
    if failed > 0 then return 'run' elseif done == total then return 'skipped' end
  elseif rule == 'none_failed' then
    if failed > 0 then return 'upstream_failed' elseif done == total then return 'run' end
  elseif rule == 'none_failed_min_one_success' then
    if failed > 0 then return 'upstream_failed' end
    if done == total then
      if finished > 0 then return 'run' end
      return 'skipped'
    end
  elseif rule == 'always' then
    return 'run'
  elseif rule == 'all_skipped' then
    if finished + failed > 0 then return 'skipped' elseif canceled == total then return 'run' end
  elseif rule == 'none_skipped' then
    if canceled > 0 then return 'skipped' elseif done == total then return 'run' end
  else -- all_success
    if failed > 0 then return 'upstream_failed' end
    if canceled > 0 then return 'skipped' elseif finished == total then return 'run' end
  end
  return 'wait'
end

-- The verdict for a task from the upstream counters kept on its record.
local function verdict_of(tkey)
  local c = redis.call('HMGET', tkey, 'trigger_rule', 'deps_total', 'deps_finished',
    'deps_failed', 'deps_canceled')
  return decide(c[1] or 'all_success', tonumber(c[2] or '0'), tonumber(c[3] or '0'),
    tonumber(c[4] or '0'), tonumber(c[5] or '0'))
end

-- How an ended task counts for its dependents' rules: a task canceled as upstream_failed
-- counts as failed (as in Airflow), any other canceled one as skipped ('canceled').
local function outcome_of(tkey, state)
  if state == 'canceled' and redis.call('HGET', tkey, 'upstream_failed') == '1' then
    return 'failed'
  end
  return state
end

-- How ended task `id` is named and shown in its dependents' messages: its name in its
-- run (else its id) and the outcome `run show` gives it (skipped and upstream_failed
-- apart from canceled), e.g. 'extract', 'skipped'.
local function shown_end(id)
  local r = redis.call('HMGET', task_key(id), 'name', 'state', 'skipped', 'upstream_failed')
  local shown = r[2] or 'deleted'
  if shown == 'canceled' and r[4] == '1' then shown = 'upstream_failed'
  elseif shown == 'canceled' and r[3] == '1' then shown = 'skipped' end
  return r[1] or id, shown
end

-- Cancel a deferred or new task whose trigger rule can no longer be met (`cause`:
-- 'upstream_failed' or 'skipped', from decide); `why` ends the error message.
local function rule_error(tkey, rule, cause, why)
  local kind = 'Skipped'
  if cause == 'upstream_failed' then
    kind = 'UpstreamFailed'
    redis.call('HSET', tkey, 'upstream_failed', '1')
  else
    redis.call('HSET', tkey, 'skipped', '1')
  end
  redis.call('HSET', tkey, 'error', cjson.encode({type = kind,
    message = why .. ', so trigger rule ' .. (rule or 'all_success') ..
      ' can no longer be met (' .. cause .. ')', traceback = ''}))
end

-- Link a task to its upstreams `deps` (ids): count those that already ended (each as
-- outcome_of says), wait on the others (wait_on: also for a staged task's further
-- upstreams, see stage.lua). Returns the verdict of its trigger rule (for push and
-- clear).
local function wait_on(tkey, id, deps)
  for _, up in ipairs(deps) do
    local state = redis.call('HGET', task_key(up), 'state')
    if ACTIVE_STATE[state] then
      redis.call('SADD', BLOCKED_PREFIX .. id, up)
      redis.call('SADD', WAITING_PREFIX .. up, id)
    else
      redis.call('HINCRBY', tkey, 'deps_' .. outcome_of(task_key(up), state), 1)
    end
  end
end

local function link(tkey, id, deps)
  redis.call('HSET', tkey, 'deps_total', #deps)
  wait_on(tkey, id, deps)
  return verdict_of(tkey)
end

-- Runs and their DAG's max_active_runs. A run's hash counts its active tasks
-- (`active_tasks`, from push.lua); each task of a run names its run's key (`run_key`);
-- a DAG's run holds a slot (its key in `slots_key`) or waits in `queued_key` (`held`).
-- Whatever script ends a run's last active task frees its slot and, in the same step,
-- starts the DAG's queued runs that now fit, oldest first.

-- A run with a `dagrun_timeout_seconds` starts its clock: `timeout_at` (ms, see watch.lua).
local function set_timeout(rkey, now)
  local timeout = redis.call('HGET', rkey, 'dagrun_timeout_seconds')
  if timeout then
    redis.call('HSET', rkey, 'timeout_at', fmt(now + math.floor(tonumber(timeout) * 1000)))
  end
end

-- A task of a started run becomes ready when nothing holds it any more.
local function start_task(id, now)
  local tkey = task_key(id)
  local r = redis.call('HMGET', tkey, 'state', 'user_id')
  if r[1] == 'deferred' and redis.call('SCARD', BLOCKED_PREFIX .. id) == 0
      and verdict_of(tkey) == 'run' then
    make_ready(tkey, id, r[2], 'deferred', now)
  end
end

-- Start the tasks listed in `key` (List of ids), TELL_STEP at most; the rest is a
-- pending step {'start', key} (see continue.lua).
local function start_from(key, now)
  for _, id in ipairs(redis.call('LPOP', key, TELL_STEP) or {}) do start_task(id, now) end
  if redis.call('EXISTS', key) == 1 then
    redis.call('RPUSH', PENDING_STEPS, cjson.encode({'start', key}))
  end
end

-- Start a held run: its tasks with nothing left to wait for become ready; beyond
-- TELL_STEP tasks, in steps (its ids listed in `rkey:starting`, see start_from).
local function start_run(rkey, now)
  redis.call('HDEL', rkey, 'held')
  set_timeout(rkey, now)
  local ids = {}
  for _, id in pairs(cjson.decode(redis.call('HGET', rkey, 'task_ids') or '{}')) do
    ids[#ids + 1] = id
  end
  if #ids <= TELL_STEP then
    for _, id in ipairs(ids) do start_task(id, now) end
    return
  end
  local starting = rkey .. ':starting'
  for i = 1, #ids, 1000 do  -- unpack stays within Lua's stack
    redis.call('RPUSH', starting, unpack(ids, i, math.min(i + 999, #ids)))
  end
  start_from(starting, now)
end

-- Does the task's run wait for a slot of its DAG's max_active_runs?
local function run_held(tkey)
  local rkey = redis.call('HGET', tkey, 'run_key')
  return rkey ~= false and redis.call('HGET', rkey, 'held') == '1'
end

-- Give free slots (fewer than `limit` runs in `slots`) to the queued runs, oldest
-- first; a queued run with no active task left (canceled, trimmed) is dropped.
local function fill_slots(slots, queued, limit, now)
  while redis.call('SCARD', slots) < limit do
    local nxt = redis.call('ZRANGE', queued, 0, 0)[1]
    if not nxt then return end
    redis.call('ZREM', queued, nxt)
    if tonumber(redis.call('HGET', nxt, 'active_tasks') or '0') > 0 then
      redis.call('SADD', slots, nxt)
      start_run(nxt, now)
    end
  end
end

-- A task of a run stopped being active: count it; at the run's end, free its slot.
local function run_task_ended(tkey, now)
  local rkey = redis.call('HGET', tkey, 'run_key')
  if not rkey or redis.call('HEXISTS', rkey, 'active_tasks') == 0 then return end
  if redis.call('HINCRBY', rkey, 'active_tasks', -1) > 0 then return end
  local r = redis.call('HMGET', rkey, 'slots_key', 'queued_key', 'max_active_runs')
  if not r[1] then return end
  redis.call('ZREM', r[2], rkey)
  if redis.call('SREM', r[1], rkey) == 1 then fill_slots(r[1], r[2], tonumber(r[3]), now) end
end

-- A task waits no more (it runs, ended or is deleted): leave the waiting sets of the
-- upstreams it was still blocked by, so that their end cannot reach a later life of the id.
local function unblock(id)
  local blocked = BLOCKED_PREFIX .. id
  local ups = redis.call('SMEMBERS', blocked)
  if #ups == 0 then return end  -- a set is never empty: no key to delete either
  for _, up in ipairs(ups) do
    redis.call('SREM', WAITING_PREFIX .. up, id)
  end
  redis.call('DEL', blocked)
end

-- Record the end of a task: state, time, and expiry of the record and its deps keys.
local function conclude(tkey, id, user, from, to, now)
  set_state(tkey, id, user, from, to, now)
  run_task_ended(tkey, now)
  redis.call('HSET', tkey, 'finished_at', seconds(now))
  unblock(id)
  if RESULT_TTL > 0 then redis.call('EXPIRE', tkey, RESULT_TTL) end
end

-- Task mapping (set in _mapping.lua, included at the end of this file): the source's
-- check when it finishes, a mapped task's expansion and the end of its instances.
local map_refusal, map_expand, map_gather, map_instances, map_continue

-- Tell the dependents of an ended task how it ended: each deferred one runs, is
-- canceled (and tells its own dependents in turn) or keeps waiting, per its rule.
-- A mapped task is expanded instead of queued, and ends when its instances have.
-- A task of a batch still being written (field `batch`, see stage.lua) only counts the
-- end: its batch decides it when it opens.
-- `first_outcome` is 'finished', 'failed' or 'canceled'; a dependent canceled as
-- upstream_failed tells its own dependents 'failed' (see outcome_of).
-- Only a dependent still blocked by this task counts it: an id in the waiting set may
-- belong to an earlier life of a reused id (ended, then pushed again with other upstreams).
-- Bounded: one call tells at most TELL_STEP dependents (half the step size: telling one
-- costs about two writes of a task). The rest of a waiting set is parked under a key of
-- its own (so a later life of the id starts afresh) in PENDING_STEPS, and continue.lua
-- tells them in later calls, TELL_STEP at a time.
-- The step names the life of `id` that ended (when it was enqueued: a push starts a life).
local function park_release(waiting, id, outcome, life)
  local parked = waiting
  if waiting == WAITING_PREFIX .. id then
    parked = waiting .. '#' .. fmt(next_stamp())
    redis.call('RENAME', waiting, parked)
  end
  life = life or enqueued_at_of(task_key(id)) or ''
  redis.call('RPUSH', PENDING_STEPS, cjson.encode({'release', parked, id, outcome, life}))
end

-- Take up to `budget` members out of set `waiting`: a small set (a listpack) in the
-- order its members were added, so releases are told in a repeatable order; a large
-- one at random (SPOP: reading it all on every step would cost what the steps save).
local function take_some(waiting, budget)
  local count = redis.call('SCARD', waiting)
  if count == 0 then return {} end  -- no dependents (no key): nothing to read or delete
  if count <= 128 then
    local all = redis.call('SMEMBERS', waiting)
    if #all <= budget then
      redis.call('DEL', waiting)
      return all
    end
    local some = {unpack(all, 1, budget)}
    redis.call('SREM', waiting, unpack(some))
    return some
  end
  return redis.call('SPOP', waiting, budget)
end

-- Release from a work list of {id, outcome[, waiting key, life]}; `budget` dependents at
-- most.
local function release_from(work, budget, now)
  local i = 1
  while i <= #work do
    local id, outcome, life = work[i][1], work[i][2], work[i][4]
    local waiting = work[i][3] or WAITING_PREFIX .. id
    i = i + 1
    local dependents = {}
    if budget > 0 then dependents = take_some(waiting, budget) end
    budget = budget - #dependents
    if budget <= 0 and redis.call('EXISTS', waiting) == 1 then
      park_release(waiting, id, outcome, life)
    end
    for _, dep in ipairs(dependents) do
      local dkey = task_key(dep)
      local r = redis.call('HMGET', dkey, 'state', 'user_id', 'trigger_rule', 'expand',
        'map_count', 'map_index', 'batch')
      if r[1] == 'deferred' and redis.call('SREM', BLOCKED_PREFIX .. dep, id) == 1 then
        redis.call('HINCRBY', dkey, 'deps_' .. outcome, 1)
        local verdict = 'wait'
        if r[7] then  -- staged: decided when its batch opens (open_batch in _push.lua)
        elseif r[5] then
          local ended = map_gather(dkey, dep, r[2], now)
          if ended then work[#work + 1] = {dep, ended} end
        else
          verdict = verdict_of(dkey)
        end
        if verdict == 'run' and r[4] and not r[6] then  -- a mapped task, not an instance
          unblock(dep)
          local ended = map_expand(dkey, dep, r[2], now)
          if ended then work[#work + 1] = {dep, outcome_of(dkey, ended)} end
        elseif verdict == 'run' then
          unblock(dep)
          -- In a held run it stays DEFERRED: start_run makes it ready with the others.
          if not run_held(dkey) then make_ready(dkey, dep, r[2], 'deferred', now) end
        elseif verdict ~= 'wait' then
          local up, shown = shown_end(id)
          rule_error(dkey, r[3], verdict, 'upstream ' .. up .. ' ended ' .. shown)
          conclude(dkey, dep, r[2], 'deferred', 'canceled', now)
          work[#work + 1] = {dep, outcome_of(dkey, 'canceled')}
        end
      end
    end
  end
end

-- The pending step {'release', parked, id, outcome, life}: tell the dependents left in
-- the parked set how `id` ended, as it is now. Cleared since (the same life, active
-- again), it has not ended: they go back to its waiting set, to be told of its next end;
-- ended again, they are told of that end; gone, or pushed again (another life), of the
-- end the step carries.
local function resume_release(parked, id, outcome, life, now)
  local tkey = task_key(id)
  local state = redis.call('HGET', tkey, 'state')
  if state and life and enqueued_at_of(tkey) == life then
    if ACTIVE_STATE[state] then
      redis.call('SUNIONSTORE', WAITING_PREFIX .. id, WAITING_PREFIX .. id, parked)
      redis.call('DEL', parked)
      return
    end
    outcome = outcome_of(tkey, state)
  end
  release_from({{id, outcome, parked, life}}, TELL_STEP, now)
end

local function release(first_id, first_outcome, now)
  release_from({{first_id, first_outcome}}, TELL_STEP, now)
end

-- End a task for good and release its dependents.
local function finalize(tkey, id, user, from, to, now)
  conclude(tkey, id, user, from, to, now)
  release(id, to, now)
end

-- The most lineage events kept per scope: a user's standalone scope lives on while the
-- user is busy (each event renews its TTL), so its log keeps only the newest.
local LINEAGE_MAX = 10000

-- Append an event to a scope's lineage log (newest LINEAGE_MAX kept, with the XCom TTL).
local function log_lineage(scope, event)
  local lkey = LINEAGE_PREFIX .. scope
  redis.call('RPUSH', lkey, cjson.encode(event))
  redis.call('LTRIM', lkey, -LINEAGE_MAX, -1)
  if XCOM_TTL > 0 then redis.call('EXPIRE', lkey, XCOM_TTL) end
end

-- Keep an XCom value (JSON text) in its run's scope, with who pushed it, and log it
-- (with the pushing attempt's number when a claimed task pushed, else null).
local function xcom_store(scope, key, value_json, producer, attempt, now)
  local xkey = XCOM_PREFIX .. scope
  redis.call('HSET', xkey, key, cjson.encode({producer = producer}) .. '\n' .. value_json)
  if XCOM_TTL > 0 then redis.call('EXPIRE', xkey, XCOM_TTL) end
  log_lineage(scope, {kind = 'push', key = key, producer = producer,
    consumer = cjson.null, bytes = #value_json, time = now / 1000,
    attempt = attempt or cjson.null})
end

-- Append one attempt to the task's attempt_history (a JSON array kept on its record, so
-- it lives as long as the record): number, worker, start, end (s), duration (s or
-- null), outcome (finished, failed, canceled or lease_expired) and error (JSON text of
-- {type, message, traceback}, or nil). Built by text so the error is stored as sent.
local function record_attempt(tkey, outcome, duration, err_json, now)
  local r = redis.call('HMGET', tkey, 'attempts', 'worker_id', 'started_at', 'attempt_history')
  local entry = cjson.encode({attempt = tonumber(r[1] or '0'), worker = r[2] or cjson.null,
    started_at = tonumber(r[3] or '') or cjson.null, finished_at = now / 1000,
    duration = tonumber(duration or '') or cjson.null, outcome = outcome})
  entry = string.sub(entry, 1, -2) .. ',"error":' .. (err_json or 'null') .. '}'
  local log = r[4]
  if not log or log == '[]' then log = '[' .. entry .. ']'
  else log = string.sub(log, 1, -2) .. ',' .. entry .. ']' end
  redis.call('HSET', tkey, 'attempt_history', log)
end

-- The task's user when the caller still holds the claim (its `claim_token` matches the
-- task's claim_token field); else nil and a reply.
local function held(tkey, claim_token)
  local r = redis.call('HMGET', tkey, 'state', 'claim_token', 'user_id')
  if not r[1] then return nil, {'lease_lost', 'deleted'} end
  if r[1] ~= 'started' or r[2] ~= claim_token then return nil, {'lease_lost', r[1]} end
  return r[3]
end

-- Where a started task that ended goes: CANCELED when cancellation was asked for.
local function end_state(tkey, wanted)
  if redis.call('HGET', tkey, 'cancel_requested') == '1' then return 'canceled' end
  return wanted
end

-- The task ids of a run, from its hash's `task_ids` field (JSON: name -> id; nil: none).
local function run_task_ids(task_ids_json)
  local ids = {}
  if task_ids_json then
    for _, id in pairs(cjson.decode(task_ids_json)) do ids[#ids + 1] = id end
  end
  return ids
end

-- When the last of the tasks `ids` ended (ms; 0 when no record is left), or nil while
-- one of them is active.
local function ended_at(ids)
  local last = 0
  for _, id in ipairs(ids) do
    local r = redis.call('HMGET', task_key(id), 'state', 'finished_at')
    if r[1] and ACTIVE_STATE[r[1]] then return nil end
    if r[2] then last = math.max(last, math.floor(tonumber(r[2]) * 1000)) end
  end
  return last
end

-- Is a task of batch `batch` (its `batch` field, or nil) still staged, i.e. of a batch
-- not yet committed (see stage.lua)? Such a task is not the queue's yet: it cannot be
-- canceled or deleted.
local function staged(batch)
  return batch ~= nil and batch ~= false and redis.call('EXISTS', BATCH_PREFIX .. batch) == 1
end

-- Cancel a task that has not ended: a queued, deferred or scheduled one ends CANCELED
-- (error `kind`: `message`) and its dependents are told; a started one is marked and its
-- worker records CANCELED when it ends. Returns {'ok', 'canceled' or 'requested'},
-- {'invalid', state} (already ended) or {'not_found'}.
local function cancel_task(id, kind, message, now)
  local tkey = task_key(id)
  local r = redis.call('HMGET', tkey, 'state', 'user_id', 'priority', 'batch')
  local state, user = r[1], r[2]
  if not state or staged(r[4]) then return {'not_found'} end
  if r[4] then redis.call('HDEL', tkey, 'batch') end  -- committed: its opening skips it
  if not ACTIVE_STATE[state] then return {'invalid', state} end
  if state == 'started' then
    redis.call('HSET', tkey, 'cancel_requested', '1')
    return {'ok', 'requested'}
  end
  if state == 'queued' then dequeue(id, user, tonumber(r[3] or NORMAL), lane_of(tkey)) end
  redis.call('HSET', tkey, 'error', cjson.encode({type = kind, message = message, traceback = ''}))
  finalize(tkey, id, user, state, 'canceled', now)
  return {'ok', 'canceled'}
end

--!include _mapping.lua
