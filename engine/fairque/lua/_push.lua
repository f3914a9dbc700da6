-- _push.lua: the body of push.lua, inlined where a script says `--!include _push.lua`.
-- It reads the push arguments from the table `A` (ARGV's layout: A[1..12] the common
-- arguments, A[13] the number of tasks...; see push.lua) that the including script
-- defines, and the run's keys from KEYS[12..17] (see push.lua).
--!include _writes.lua

local docs, at = read_tasks(A, 13)
local run
if KEYS[12] then
  run = {id = A[at]}
  run.fields = read_fields(A, at + 1)
  if created_before(run.fields) then return {'run_exists', run.id} end
end
local refused = refusal_of(docs)
if refused then return refused end

local now = now_ms()
local held = false
if run then held = create_run(run, now) end
local active = 0
local states = {}
for i, doc in ipairs(docs) do
  local tkey, verdict = write_task(doc, now)
  if verdict == 'run' and #doc.deps > 0 then unblock(doc.id) end  -- e.g. one_success
  states[i] = enter(tkey, doc.id, doc.user, verdict, held, nil, 'its upstreams already ended', now)
  enqueued(tkey, states[i], now)
  if states[i] ~= 'canceled' then active = active + 1 end
end
if run then redis.call('HSET', KEYS[12], 'active_tasks', active) end
return {'ok', states}
