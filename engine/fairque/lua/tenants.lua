-- tenants.lua: one page of the tenants, filtered and sorted, for the dashboard's
-- overview. A read: it changes nothing.
-- KEYS[1] every tenant that ever had a task (Set)
-- KEYS[2] counters (Hash: "queued {user}", "started {user}", ...)
-- ARGV[1] sort by: "queued", "started" or "user"   ARGV[2] "desc" or "asc"
-- ARGV[3] search: a substring of the tenant id, ASCII letters in lower case ("": all)
-- ARGV[4] how many of the sorted tenants to skip   ARGV[5] page size
-- Returns {how many tenants match, then the page's tenant ids in order}; ties sort by id,
-- ascending. Sorting by a counter reads it for every matching tenant with HMGET in
-- chunks and groups the tenants by its value, sorting only the groups the page reaches;
-- only the page travels back, so the caller never receives every tenant.

local users = redis.call('SMEMBERS', KEYS[1])
local sort_by, descending, needle = ARGV[1], ARGV[2] == 'desc', ARGV[3]
local offset, size = tonumber(ARGV[4]), tonumber(ARGV[5])
local CHUNK = 1000

local matching = {}
for _, user in ipairs(users) do
  if needle == '' or string.find(string.lower(user), needle, 1, true) then
    matching[#matching + 1] = user
  end
end

local out = {#matching}
local function full() return #out - 1 >= size end

if sort_by == 'user' then
  table.sort(matching)
  for i = offset + 1, math.min(offset + size, #matching) do
    out[#out + 1] = matching[descending and #matching + 1 - i or i]
  end
  return out
end

-- By a counter: group the tenants by its value, then sort (by id) only the groups the
-- page reaches.
local groups, values = {}, {}
for first = 1, #matching, CHUNK do
  local last = math.min(first + CHUNK - 1, #matching)
  local fields = {}
  for i = first, last do fields[#fields + 1] = sort_by .. ' ' .. matching[i] end
  local counts = redis.call('HMGET', KEYS[2], unpack(fields))
  for i = first, last do
    local value = tonumber(counts[i - first + 1]) or 0
    local group = groups[value]
    if not group then
      group = {}
      groups[value] = group
      values[#values + 1] = value
    end
    group[#group + 1] = matching[i]
  end
end
if descending then
  table.sort(values, function(a, b) return a > b end)
else
  table.sort(values)
end
local skip = offset
for _, value in ipairs(values) do
  local group = groups[value]
  if skip >= #group then
    skip = skip - #group
  else
    table.sort(group)
    for i = skip + 1, #group do
      if full() then break end
      out[#out + 1] = group[i]
    end
    skip = 0
  end
  if full() then break end
end
return out
