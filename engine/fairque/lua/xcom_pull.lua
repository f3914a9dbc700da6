-- xcom_pull.lua: read an XCom value and record the pull (who read whose key).
--!include _common.lua
-- ARGV[13] scope   ARGV[14] key   ARGV[15] consumer (task name)
-- ARGV[16] (when a claimed task pulls) its attempt number, kept in the lineage entry
-- Returns {'ok', value JSON, producer} or {'missing'}.

local scope, key = ARGV[13], ARGV[14]
local stored = redis.call('HGET', XCOM_PREFIX .. scope, key)
if not stored then return {'missing'} end
local cut = string.find(stored, '\n', 1, true)
local producer = cjson.decode(string.sub(stored, 1, cut - 1)).producer
local value = string.sub(stored, cut + 1)
local attempt = ARGV[16] and tonumber(ARGV[16]) or cjson.null
log_lineage(scope, {kind = 'pull', key = key, producer = producer, consumer = ARGV[15],
  bytes = #value, time = now_ms() / 1000, attempt = attempt})
return {'ok', value, producer}
