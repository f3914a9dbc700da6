-- decide_all.lua (tests only): the real decide() of _common.lua applied to many cases.
--!include _common.lua
-- KEYS, ARGV[1..12] as every script gets them (see _common.lua)
-- ARGV[13]    JSON list of cases [rule, total, finished, failed, canceled]
-- Returns     the verdict of each case ('run', 'wait', 'upstream_failed' or 'skipped'),
--             in order
local out = {}
for i, c in ipairs(cjson.decode(ARGV[13])) do
  out[i] = decide(c[1], c[2], c[3], c[4], c[5])
end
return out
