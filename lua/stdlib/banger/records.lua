--- banger.records: the shapes of what `--json` prints. A kind lists its keys
-- and their types; shape() gives a value exactly those keys: an unset one as
-- null (never missing), 0/1 flags as booleans, nested records shaped too.
-- The Lua values recipes work with stay as they are (nil, not json.null);
-- only the JSON is shaped. docs/scripting.md ("JSON output") documents every
-- kind and which command prints it; tests/lua/json_doc_spec.lua runs the
-- commands and keeps the page, this table and the output equal.
--
-- Types: string, integer, number (may have a fraction), boolean, a kind's
-- name, "array of T", "T or null".
local json = require("banger.native.json")

local M = {}

M.kinds = {
  vm = {
    { "id", "string" }, { "name", "string" }, { "state", "string" }, { "image", "string" },
    { "kernel", "string" }, { "driver", "string" }, { "vcpus", "integer" }, { "memory_mib", "integer" },
    { "disk_mib", "integer" }, { "work_disk_mib", "integer" }, { "nat", "boolean" },
    { "allow_hosts", "array of string" }, { "ip", "string or null" },
    { "mac", "string" }, { "dns_name", "string" }, { "last_error", "string or null" }, { "created_at", "string" },
    { "started_at", "string or null" }, { "dir", "string" }, { "pid", "integer or null" },
    { "isolated", "boolean" }, { "alive", "boolean" },
  },
  image = {
    { "name", "string" }, { "source_ref", "string or null" }, { "digest", "string or null" },
    { "size_bytes", "integer" }, { "rootfs_path", "string" }, { "kernel", "string or null" },
    { "is_default", "boolean" }, { "init", "string or null" }, { "created_at", "string" },
  },
  kernel = {
    { "name", "string" }, { "version", "string" }, { "distro", "string" }, { "arch", "string" },
    { "sha256", "string" }, { "source", "string" }, { "source_kind", "string" }, { "modules", "array of string" },
    { "vmlinux_bytes", "integer" }, { "imported_at", "string" }, { "dir", "string" },
  },
  kernel_bundle = {
    { "name", "string" }, { "arch", "string" }, { "version", "string" }, { "distro", "string" },
    { "url", "string" }, { "size", "integer" }, { "sha256", "string" }, { "format", "string" },
  },
  cache_prune = { { "bytes", "integer" }, { "blobs", "integer" } },
  image_push = {
    { "image", "string" }, { "ref", "string or null" }, { "manifest_digest", "string or null" },
    { "layer_digest", "string" }, { "diff_id", "string" }, { "size", "integer" }, { "tar_bytes", "integer" },
    { "entries", "integer" }, { "skipped", "array of string" }, { "layer_uploaded", "boolean" }, { "dry_run", "boolean" },
  },
  workspace = { { "vm", "string" }, { "files", "integer" }, { "guest", "string" } },
  doctor = { { "checks", "array of check" }, { "failed", "integer" }, { "skipped", "integer" }, { "uid", "integer" } },
  check = {
    { "name", "string" }, { "needed_for", "string" }, { "status", "string" }, { "detail", "string" },
    { "fix", "string or null" }, { "objects", "array of orphan or null" },
  },
  forward = {
    { "vm", "string" }, { "proto", "string" }, { "host_address", "string" }, { "host_port", "integer" },
    { "guest_port", "integer" }, { "active", "boolean" },
  },
  orphan = {
    { "kind", "string" }, { "name", "string" }, { "detail", "string" }, { "pid", "integer or null" },
    { "path", "string or null" },
  },
  orphans_removed = {
    { "removed", "array of orphan" }, { "failed", "array of orphan_failure" }, { "unchecked", "array of string" },
  },
  orphan_failure = {
    { "kind", "string" }, { "name", "string" }, { "detail", "string" }, { "pid", "integer or null" },
    { "path", "string or null" }, { "error", "string" },
  },
  dns_status = { { "running", "boolean" }, { "address", "string" }, { "names", "array of dns_name" } },
  dns_name = { { "name", "string" }, { "ip", "string" } },
  install = {
    { "owner", "string" }, { "owner_uid", "integer" }, { "owner_gid", "integer" }, { "owner_home", "string" },
    { "helper", "string" }, { "socket", "string" }, { "unit", "string" }, { "version", "string" },
    { "installed_at", "string" },
  },
  installed = {
    { "owner", "string" }, { "owner_uid", "integer" }, { "owner_gid", "integer" }, { "owner_home", "string" },
    { "helper", "string" }, { "socket", "string" }, { "unit", "string" }, { "version", "string" },
    { "installed_at", "string" }, { "started", "boolean" }, { "note", "string or null" },
  },
  uninstalled = { { "removed", "array of string" }, { "was_installed", "boolean" } },
  system_status = {
    { "installed", "boolean" }, { "record", "install or null" }, { "socket", "string" },
    { "unit_state", "string or null" }, { "helper_reachable", "boolean" }, { "helper", "helper or null" },
    { "helper_error", "string or null" },
  },
  helper = { { "pid", "integer" }, { "version", "string" }, { "commit", "string" }, { "helper_protocol", "integer" },
    { "caller_uid", "integer" } },
  ssh_config_installed = { { "config", "string" }, { "included", "string" } },
  ssh_config_removed = { { "config", "string" }, { "removed", "boolean" } },
  update_check = {
    { "current", "string" }, { "available", "string" }, { "update_available", "boolean" }, { "channel", "string" },
    { "helper_protocol", "integer" },
  },
  update = {
    { "from", "string" }, { "to", "string" }, { "previous", "string or null" }, { "changed", "boolean" },
    { "removed", "array of string" }, { "helper", "string or null" },
  },
  version = { { "version", "string" }, { "commit", "string" }, { "built_at", "string" },
    { "helper_protocol", "integer" } },
  trust = {
    { "root", "string" }, { "digest", "string" }, { "trusted", "boolean" }, { "files", "array of trust_file" },
  },
  trust_file = { { "path", "string" }, { "kind", "string" }, { "sha256", "string or null" } },
  trusted_project = { { "root", "string" }, { "status", "string" }, { "files", "integer" }, { "trusted_at", "string" } },
  trust_revoked = { { "root", "string" }, { "revoked", "boolean" } },
  snapshot = {
    { "id", "string" }, { "name", "string" }, { "kind", "string" }, { "source_vm", "string" }, { "driver", "string" },
    { "image", "string" }, { "kernel", "string" }, { "vcpus", "integer" }, { "memory_mib", "integer" },
    { "disk_mib", "integer" }, { "work_disk_mib", "integer" }, { "ram", "string or null" }, { "size_bytes", "integer" },
    { "banger_version", "string or null" }, { "created_at", "string" }, { "last_used_at", "string or null" },
    { "used_by_vms", "array of string" }, { "used_by_snapshots", "array of string" }, { "dir", "string" },
  },
  snapshot_taken = { { "snapshot", "snapshot" }, { "pause_ms", "integer" } },
  snapshot_prune = { { "deleted", "array of string" }, { "bytes", "integer" } },
  fork = { { "snapshot", "string" }, { "pause_ms", "integer" }, { "total_ms", "integer" }, { "vms", "array of vm" } },
  vm_health = {
    { "name", "string" }, { "state", "string" }, { "ok", "boolean" }, { "rtt_ms", "number or null" },
    { "uptime_seconds", "number or null" }, { "agent_version", "string or null" }, { "protocol", "string or null" },
    { "kernel", "string or null" }, { "banger_version", "string" }, { "error", "string or null" },
  },
  vm_stats = {
    { "name", "string" }, { "state", "string" }, { "hypervisor", "hypervisor_stats or null" },
    { "guest", "guest_stats or null" }, { "network", "net_stats or null" }, { "root_disk", "disk_usage" },
    { "work_disk", "disk_usage" },
  },
  vm_set = {
    { "name", "string" }, { "state", "string" }, { "vcpus", "integer" }, { "memory_mib", "integer" },
    { "work_disk_mib", "integer" }, { "nat", "boolean" }, { "applied", "array of string" },
    { "pending", "array of string" },
  },
  hypervisor_stats = { { "pid", "integer" }, { "cpu_seconds", "number or null" }, { "rss_bytes", "integer or null" } },
  guest_stats = {
    { "mem_total_bytes", "integer" }, { "mem_available_bytes", "integer or null" }, { "mem_free_bytes", "integer" },
    { "load_1", "number" }, { "load_5", "number" }, { "load_15", "number" }, { "uptime_seconds", "number" },
  },
  net_stats = { { "tap", "string" }, { "rx_bytes", "integer or null" }, { "tx_bytes", "integer or null" } },
  disk_usage = {
    { "path", "string" }, { "format", "string" }, { "size_bytes", "integer" }, { "apparent_bytes", "integer or null" },
    { "allocated_bytes", "integer or null" },
  },
  vm_ports = {
    { "name", "string" }, { "ip", "string or null" }, { "truncated", "boolean" }, { "listeners", "array of listener" },
  },
  listener = {
    { "proto", "string" }, { "family", "string" }, { "address", "string" }, { "port", "integer" },
    { "inode", "integer" }, { "pid", "integer or null" }, { "comm", "string or null" }, { "url", "string or null" },
    { "reach", "string" }, { "forwarded", "array of string" },
  },
  status = {
    { "build", "version" }, { "helper", "status_helper or null" }, { "dns", "status_dns or null" },
    { "bridge", "status_bridge or null" }, { "vms", "status_vms or null" }, { "kernels", "store_use or null" },
    { "images", "store_use or null" }, { "snapshots", "store_use or null" }, { "cache", "store_use or null" },
    { "doctor", "status_doctor or null" }, { "errors", "array of status_error" },
  },
  status_helper = {
    { "mode", "string" }, { "installed", "boolean" }, { "socket", "string" }, { "service", "string or null" },
    { "answering", "boolean" }, { "pid", "integer or null" }, { "version", "string or null" },
    { "commit", "string or null" }, { "protocol", "integer or null" }, { "same_build", "boolean or null" },
    { "compatible", "boolean or null" }, { "error", "string or null" }, { "fix", "string or null" },
  },
  status_dns = { { "running", "boolean" }, { "address", "string" }, { "names", "integer" } },
  status_bridge = {
    { "name", "string" }, { "exists", "boolean" }, { "is_bridge", "boolean or null" }, { "up", "boolean or null" },
    { "addresses", "array of string" }, { "expected", "string" },
  },
  status_vms = { { "total", "integer" }, { "by_state", "vm_states" }, { "running", "array of string" } },
  vm_states = {
    { "creating", "integer" }, { "created", "integer" }, { "starting", "integer" }, { "running", "integer" },
    { "stopping", "integer" }, { "stopped", "integer" }, { "error", "integer" },
  },
  store_use = { { "dir", "string" }, { "count", "integer" }, { "bytes", "integer" } },
  status_doctor = {
    { "ok", "integer" }, { "warnings", "integer" }, { "failures", "integer" }, { "skipped", "integer" },
    { "left_out", "array of string" },
  },
  status_error = { { "part", "string" }, { "error", "string" } },
}

--- `value` shaped as type `t` (see the header), ready for json.encode.
function M.shape(t, value)
  local nullable = t:match("^(.-) or null$")
  if nullable then
    if value == nil or value == json.null then
      return json.null
    end
    return M.shape(nullable, value)
  end
  local item = t:match("^array of (.+)$")
  if item then
    local out = json.array()
    for i, v in ipairs(value or {}) do
      out[i] = M.shape(item, v)
    end
    return out
  end
  if t == "boolean" then
    return value == true or value == 1
  end
  local kind = M.kinds[t]
  if kind then
    local out = {}
    for _, field in ipairs(kind) do
      local v = value[field[1]]
      if v == json.null then
        v = nil -- and false stays false: a "boolean or null" may be either
      end
      out[field[1]] = M.shape(field[2], v)
    end
    return out
  end
  -- string, integer: as they are; a missing one shows up as null
  if value == nil then
    return json.null
  end
  return value
end

return M
