-- push.lua: add one or more tasks atomically (all or none).
--!include _common.lua
-- ARGV[10]    number of tasks N
-- ARGV[11..]  N task documents (JSON): {id, user, priority, due_ms (optional),
--             fields: {name: string value, ...}}
-- Returns {'ok', {state of each task}}
--      or {'duplicate', task_id, state} when an id is still active (nothing written).
-- A task whose due time is in the future becomes SCHEDULED, any other QUEUED.

local n = tonumber(ARGV[10])
local docs = {}
for i = 1, n do
  local doc = cjson.decode(ARGV[10 + i])
  local state = redis.call('HGET', task_key(doc.id), 'state')
  if state and ACTIVE_STATE[state] then return {'duplicate', doc.id, state} end
  docs[i] = doc
end

local now = now_ms()
local states = {}
for _, doc in ipairs(docs) do
  local id, user = doc.id, doc.user
  local tkey = task_key(id)
  local old = redis.call('HGET', tkey, 'state')
  if old then redis.call('ZREM', REG[old], id) end
  redis.call('DEL', tkey)
  local flat = {}
  for name, value in pairs(doc.fields) do
    flat[#flat + 1] = name
    flat[#flat + 1] = value
  end
  redis.call('HSET', tkey, 'attempts', '0', 'recoveries', '0', 'claim', '0',
    'enqueued_at', seconds(now), unpack(flat))
  redis.call('SADD', ALL_USERS, user)
  if doc.due_ms and doc.due_ms > now then
    set_state(tkey, id, user, nil, 'scheduled', doc.due_ms)
    states[#states + 1] = 'scheduled'
  else
    local stamp = next_stamp()
    redis.call('HSET', tkey, 'order', fmt(stamp))
    set_state(tkey, id, user, nil, 'queued', now)
    enqueue(id, user, doc.priority, stamp, false)
    states[#states + 1] = 'queued'
  end
end
return {'ok', states}
