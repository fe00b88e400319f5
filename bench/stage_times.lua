-- banger run bench/stage_times.lua: millisecond stage timings of the most
-- recent `vm create`, read from the structured log (which stamps every
-- stage with a millisecond clock, unlike the 0.1 s console display).
local path = banger.state.layout().state .. "/banger.log"
local entries = {}
for line in io.lines(path) do
  local ok, e = pcall(banger.json.decode, line)
  if ok and e.component == "stage" then
    if e.msg == "allocate" then
      entries = {}
    end
    entries[#entries + 1] = e
  end
end
local function ms(stamp)
  local h, m, s = stamp:match("T(%d+):(%d+):([%d.]+)Z$")
  return math.floor(((tonumber(h) * 60 + tonumber(m)) * 60 + tonumber(s)) * 1000 + 0.5)
end
local t = {}
for _, e in ipairs(entries) do
  t[e.msg] = t[e.msg] or ms(e.time)
end
-- pre-launch: allocate -> launch; qemu-start: launch -> started
print(string.format("%d %d %d", (t.launch or 0) - (t.allocate or 0), (t.started or 0) - (t.launch or 0),
  t["wait for agent"] or 0))
