-- xcom_push.lua: store an XCom value in its scope and record the push in the lineage.
--!include _common.lua
-- ARGV[13] scope (run id, or user:<user id>)   ARGV[14] key   ARGV[15] value (JSON)
-- ARGV[16] producer (task name)
-- Returns {'ok', bytes}.

xcom_store(ARGV[13], ARGV[14], ARGV[15], ARGV[16], now_ms())
return {'ok', #ARGV[15]}
