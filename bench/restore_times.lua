-- banger run bench/restore_times.lua: where the most recent warm `vm run`
-- spent its time, from the structured log's millisecond stamps: QEMU
-- start, loading the device state with the workspace hot-plug, and the
-- guest's re-identification (as banger saw it, and the agent's own time).
local path = banger.state.layout().state .. "/banger.log"
local entries, pid = {}, nil
for line in io.lines(path) do
  local ok, e = pcall(banger.json.decode, line)
  if ok and type(e) == "table" then
    if e.component == "vm run" and e.msg == "restoring warm snapshot" then
      pid, entries = e.pid, {}
    end
    if pid and e.pid == pid then
      entries[#entries + 1] = e
    end
  end
end
local function ms(stamp)
  local h, m, s = stamp:match("T(%d+):(%d+):([%d.]+)Z$")
  return math.floor(((tonumber(h) * 60 + tonumber(m)) * 60 + tonumber(s)) * 1000 + 0.5)
end
local t, took = {}, nil
for _, e in ipairs(entries) do
  local key = e.component == "stage" and e.msg or (e.msg == "re-identified" and "re-identified") or nil
  if key and not t[key] then
    t[key] = ms(e.time)
  end
  took = e.took_ms or took
end
if not (t.launch and t.restore and t.resume and t["re-identified"]) then
  print("no complete warm run in " .. path)
  return
end
print(string.format("qemu start %d ms, state load + workspace hot-plug %d ms, re-identify %d ms (the agent's own %d ms)",
  t.restore - t.launch, t.resume - t.restore, t["re-identified"] - t.resume, took or -1))
