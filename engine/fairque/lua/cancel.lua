-- cancel.lua: cancel a task that has not ended.
--!include _common.lua
-- ARGV[13] task id   ARGV[14] reason (stored on the task as its error message)
-- Returns {'ok', 'canceled'} (queued, deferred or scheduled task),
--         {'ok', 'requested'} (started: its worker records CANCELED when it ends),
--         {'invalid', state} (already ended) or {'not_found'}.

return cancel_task(ARGV[13], 'Canceled', ARGV[14], now_ms())
