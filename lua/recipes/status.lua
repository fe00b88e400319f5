-- banger status: this banger, its root helper, DNS, bridge, VMs, disk use
-- and the doctor's verdict in one short block. Fast: no VM boots, nothing
-- goes over the network, and a part that cannot be read shows its error
-- while the others are printed (banger.status).
local MAX_NAMES = 10

local function bytes(n)
  return banger.units.format_bytes(n)
end

local function helper_line(h)
  if h.mode == "local-root" and not h.answering then
    return "not needed: banger runs as root" .. (h.installed and ("; the installed one does not answer: "
      .. h.error .. " (" .. h.fix .. ")") or "; not installed")
  end
  if not h.answering then
    local what = h.installed and ("installed" .. (h.service and (", service " .. h.service) or "")
      .. ", not answering: " .. h.error) or "not installed"
    return what .. (h.fix and (" (" .. h.fix .. ")") or "")
  end
  local line = string.format("answering on %s (pid %d, banger %s, commit %s, protocol %s)", h.socket, h.pid,
    h.version, h.commit or "?", h.protocol and tostring(h.protocol) or "?")
  local service = h.installed and "" or "; not installed as a service"
  if not h.compatible then
    return line .. ": does not match this banger, run " .. h.fix .. service
  end
  return line .. (h.same_build and ": this build" or ": a different build, compatible") .. service
end

local function vms_line(v)
  if v.total == 0 then
    return "none"
  end
  local parts = {}
  for _, s in ipairs(banger.status.vm_states) do
    local n = v.by_state[s]
    if n > 0 then
      local p = n .. " " .. s
      if s == "running" then
        local names = table.move(v.running, 1, math.min(#v.running, MAX_NAMES), 1, {})
        p = p .. " (" .. table.concat(names, ", ") .. (#v.running > MAX_NAMES and (", +" .. (#v.running - MAX_NAMES))
          or "") .. ")"
      end
      parts[#parts + 1] = p
    end
  end
  return v.total .. ": " .. table.concat(parts, ", ")
end

local function bridge_line(b)
  if not b.exists then
    return b.name .. " does not exist yet (made when the first VM with a network starts)"
  end
  local line = b.name .. (b.up and " up" or " down") .. (b.is_bridge and "" or ", not a bridge")
    .. (#b.addresses > 0 and (", " .. table.concat(b.addresses, " ")) or ", no address")
  for _, a in ipairs(b.addresses) do
    if a == b.expected then
      return line
    end
  end
  return line .. " (expected " .. b.expected .. ")"
end

local function doctor_line(d)
  return string.format("%d ok, %d warning%s, %d failure%s%s%s: run banger doctor", d.ok, d.warnings,
    d.warnings == 1 and "" or "s", d.failures, d.failures == 1 and "" or "s",
    d.skipped > 0 and (", " .. d.skipped .. " skipped") or "",
    #d.left_out > 0 and (" (" .. #d.left_out .. " slow check" .. (#d.left_out == 1 and "" or "s") .. " left out)")
      or "")
end

local lines = {
  { "helper", helper_line },
  { "dns", function(d)
    if not d.running then
      return "not running (it starts with the first VM that has an address)"
    end
    return "running on " .. d.address .. ", " .. d.names .. " name" .. (d.names == 1 and "" or "s")
  end },
  { "bridge", bridge_line },
  { "vms", vms_line },
  { "kernels", function(k) return k.count .. ", " .. bytes(k.bytes) end },
  { "images", function(k) return k.count .. ", " .. bytes(k.bytes) end },
  { "snapshots", function(k) return k.count .. ", " .. bytes(k.bytes) end },
  { "cache", function(k) return k.count .. " file" .. (k.count == 1 and "" or "s") .. ", " .. bytes(k.bytes) end,
    "oci cache" },
  { "doctor", doctor_line },
}

return {
  summary = "show banger's version, root helper, DNS, bridge, VMs, disk use and the doctor's verdict",
  json = true,
  needs_config = false, -- a broken config.lua is the doctor part's first failure, not the whole view's
  run = function(opts)
    local s = banger.status.collect()
    banger.ui.emit(opts, s, function(st)
      local failed = {}
      for _, e in ipairs(st.errors) do
        failed[e.part] = e.error
      end
      local b = st.build
      banger.ui.print(string.format("%-10s %s (commit %s, built %s)", "banger", b.version, b.commit, b.built_at))
      for _, l in ipairs(lines) do
        local value = st[l[1]]
        banger.ui.print(string.format("%-10s %s", l[3] or l[1], value and l[2](value) or ("error: " .. failed[l[1]])))
      end
    end, "status")
  end,
}
