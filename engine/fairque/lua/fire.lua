-- fire.lua: create a scheduled DAG run from the DAG's run template kept in Redis: what
-- push.lua does, with push.lua's arguments stored once per DAG version instead of sent.
--!include _common.lua
-- KEYS[12..]  the run's keys, as push.lua's KEYS[12..17]; then, LAST, the DAG's run
--             template (List: its version, the positions (1-based, space-separated) of
--             the arguments holding a stand-in text, then push.lua's ARGV[13...] for a
--             stand-in run)
-- ARGV[13]    the template version this call expects
-- ARGV[14]    number S of swaps, then S pairs (stand-in text, this run's text): in the
--             stored arguments at those positions each stand-in text (the stand-in run
--             id, dates, tick) is replaced by this run's
-- Returns what push.lua returns, or {'no_template'} (nothing written) when the template
-- is missing or of another version: the caller stores it and calls again.

local TEMPLATE = table.remove(KEYS)
local stored = redis.call('LRANGE', TEMPLATE, 0, -1)
if stored[1] ~= ARGV[13] then return {'no_template'} end

local swaps = {}
for i = 1, 2 * tonumber(ARGV[14]) do swaps[i] = ARGV[14 + i] end

-- `text` with every stand-in replaced (plain text, not patterns).
local function swapped(text)
  for i = 1, #swaps, 2 do
    local old, new = swaps[i], swaps[i + 1]
    local from = string.find(text, old, 1, true)
    while from do
      text = string.sub(text, 1, from - 1) .. new .. string.sub(text, from + #old)
      from = string.find(text, old, from + #new, true)
    end
  end
  return text
end

local A = {}
for i = 1, 12 do A[i] = ARGV[i] end
for i = 3, #stored do A[10 + i] = stored[i] end
for position in string.gmatch(stored[2], '%d+') do
  local at = 12 + tonumber(position)
  A[at] = swapped(A[at])
end
--!include _push.lua
