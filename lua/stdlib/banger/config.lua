--- banger.config: $XDG_CONFIG_HOME/banger/config.lua, validated at load.
--
-- The file returns a Lua table. Every key is checked against the schema
-- below; an unknown key, a wrong type or a value that breaks a rule is an
-- error naming the key ("vm.vcpus", "file_sync[2].guest"). docs/config.md
-- lists every key; tests/lua/config_spec.lua has one case per rule.
local errors = require("banger.errors")
local units = require("banger.units")
local validate = require("banger.native.validate")
local paths = require("banger.native.paths")
local kernel = require("banger.native.kernel")

local M = {}

-- Rules return nil when fine, or a reason.
local function positive_size(min_mib)
  return function(v)
    local bytes, why = units.parse_size(v)
    if not bytes then
      return why or "is not a valid size"
    end
    if min_mib and bytes < min_mib * 1024 * 1024 then
      local bare = math.type(v) == "integer" and (" (a bare integer is bytes: write \"" .. v .. "MiB\")") or ""
      return "must be at least " .. min_mib .. "MiB" .. bare
    end
  end
end

local function gate(fn)
  return function(v)
    local ok, why = fn(v)
    if not ok then
      return why or "is not valid" -- a check that gives no reason still fails
    end
  end
end

-- Image names follow VM names' rules: they appear in commands and paths.
local function image_name(v)
  local ok, why = validate.vm_name(v)
  if not ok then
    return (why:gsub("VM name", "image name"))
  end
end
M.image_name = image_name

local function host_dns(v)
  local host, port = v:match("^([%d%.]+):(%d+)$")
  if not host then
    return "must be IPv4:port, e.g. 127.0.0.1:42069"
  end
  if not validate.ipv4(host) then
    return "'" .. host .. "' is not an IPv4 address"
  end
  local p = tonumber(port)
  if p < 1 or p > 65535 then
    return "port must be 1..65535"
  end
end

local function guest_prefix(v)
  local ok, why = validate.cidr_prefix(v)
  if not ok then
    return why
  end
  if v == 32 then
    return "a /32 network leaves no address for guests (use 8..31)"
  end
end

-- Path components: no empty names through "..", and no "~user" forms.
local function traversal(p)
  for part in p:gmatch("[^/]+") do
    if part == ".." then
      return "must not contain '..'"
    end
  end
end

local function absolute_path(p)
  if p:sub(1, 1) ~= "/" then
    return "must be an absolute path"
  end
  return traversal(p)
end

local function host_path(p)
  if p == "" then
    return "must not be empty"
  end
  if p:match("^~[^/]") then
    return "'~user/' paths are not supported; use '~/' or an absolute path"
  end
  if not (p:sub(1, 1) == "/" or p:sub(1, 2) == "~/") then
    return "must be absolute or start with '~/'"
  end
  return traversal(p)
end

-- The work disk is mounted at /root in the guest: that is all banger can sync into.
local function guest_path(p)
  if p == "" then
    return "must not be empty"
  end
  if p:match("^~[^/]") then
    return "'~user/' paths are not supported; use '~/' (the guest's /root)"
  end
  if not (p:sub(1, 2) == "~/" or p:sub(1, 6) == "/root/") then
    return "must be under '~/' or '/root/' (the VM's work disk)"
  end
  if p == "~/" or p == "/root/" then
    return "must name a file or directory under the home directory, not the home itself"
  end
  return traversal(p)
end

-- A release channel is read over HTTP(S) (or file: for a local mirror).
local function update_channel(v)
  if not (v:match("^https?://[^/]") or v:match("^file:///")) then
    return "must be an http://, https:// or file:/// URL"
  end
end

-- A tool's output cap: a marker in place of everything would help no one.
local function output_size(v)
  local bytes, why = units.parse_size(v)
  if not bytes then
    return why or "is not a valid size"
  end
  if bytes < 1024 or bytes > 64 * 1024 * 1024 then
    return "must be between 1KiB and 64MiB"
  end
end

local function mode_string(v)
  local _, why = units.parse_mode(v)
  return why
end

M.schema = {
  vm = {
    kind = "table",
    fields = {
      vcpus = { kind = "integer", default = 2, min = 1, max = 32, doc = "virtual CPUs per VM" },
      memory = { kind = "size", default = "1GiB", rule = positive_size(128), doc = "guest memory" },
      disk = { kind = "size", default = "8GiB", rule = positive_size(256), doc = "root disk size (copy-on-write over the image)" },
      work_disk = { kind = "size", default = "4GiB", rule = positive_size(64), doc = "per-VM work disk mounted at /root" },
      image = { kind = "string", default = nil, rule = image_name,
        doc = "image used when none is given (default: the image marked default)" },
      kernel = { kind = "string", default = "debian-cloud", rule = gate(kernel.validate_name),
        doc = "kernel name used when the image names none" },
      nat = { kind = "boolean", default = false, doc = "give VMs outbound NAT by default" },
      warm_snapshots = { kind = "integer", default = 3, min = 0, max = 100,
        doc = "warm `vm run` snapshots kept (0: every `vm run` boots cold)" },
    },
  },
  network = {
    kind = "table",
    fields = {
      bridge = { kind = "string", default = "br-fc", rule = gate(validate.bridge_name), doc = "host bridge ('br-fc' or 'br-fc-*')" },
      bridge_ip = { kind = "string", default = "172.30.0.1", rule = gate(validate.unicast_ipv4),
        doc = "the bridge's IPv4 address (the guests' gateway): a host address of its network" },
      cidr = { kind = "integer", default = 24, rule = guest_prefix, doc = "prefix length of the guest network (8..31)" },
      dns = { kind = "string", default = "127.0.0.1:42069", rule = host_dns, doc = "where banger answers <vm>.vm queries" },
      mode = { kind = "string", default = "auto", choices = { "auto", "on", "off" },
        doc = "guest networking: 'auto' when root or the root helper can make taps, 'on' requires it, 'off' never" },
      nameservers = { kind = "list", of = { kind = "string", rule = gate(validate.ipv4) }, default = {},
        doc = "resolvers for NAT'd guests (default: the host's upstream servers, never a loopback address)" },
      allow = { kind = "list", of = { kind = "string", rule = gate(validate.allow_host) }, default = {},
        doc = "egress allow-list for VMs given none: names ('example.com') and '*.' wildcards; non-empty implies NAT (docs/networking.md)" },
    },
    -- The address and the prefix are only wrong together (the network's own
    -- or broadcast address); the root helper applies the same gate.
    check = function(net)
      local ok, why = validate.bridge_address(net.bridge_ip, net.cidr)
      if not ok then
        return "bridge_ip", why
      end
    end,
  },
  driver = {
    kind = "table",
    fields = {
      name = { kind = "string", default = "auto", choices = { "auto", "qemu", "firecracker" }, doc = "hypervisor driver" },
      accel = { kind = "string", default = "auto", choices = { "auto", "kvm", "tcg" }, doc = "QEMU acceleration" },
      qemu_bin = { kind = "string", default = "qemu-system-x86_64", doc = "QEMU binary (name in PATH or absolute path)" },
      firecracker_bin = { kind = "string", default = "firecracker", doc = "Firecracker binary" },
      isolate = { kind = "boolean", default = false,
        doc = "have the root helper run QEMU as a uid of its own, reaching only the descriptors banger hands it" },
    },
  },
  helper = {
    kind = "table",
    fields = {
      socket = { kind = "string", default = "/run/banger/helper.sock", rule = absolute_path,
        doc = "the root helper's socket, used when banger does not run as root" },
    },
  },
  ssh = {
    kind = "table",
    fields = {
      key = { kind = "string", default = nil, rule = host_path, doc = "private key banger uses for guests (default: state dir ssh/id_ed25519)" },
    },
  },
  image = {
    kind = "table",
    fields = {
      packages = { kind = "list", of = "string", default = {}, doc = "extra Debian packages in the default image" },
    },
  },
  kernel = {
    kind = "table",
    fields = {
      catalog_url = { kind = "string", default = nil, doc = "URL of a kernel catalog JSON for 'kernel pull'" },
    },
  },
  update = {
    kind = "table",
    fields = {
      channel = { kind = "string", default = nil, rule = update_channel,
        doc = "URL of the release channel `banger update` reads (latest.json, <version>/manifest.json)" },
      public_key = { kind = "string", default = nil, rule = host_path,
        doc = "PEM file of the Ed25519 key a self-hosted channel signs with (default: the key built into banger)" },
    },
  },
  api = {
    kind = "table",
    fields = {
      max_body = { kind = "size", default = "1MiB", rule = positive_size(1), doc = "largest JSON request body `banger serve` accepts (413 beyond)" },
      max_file_bytes = { kind = "size", default = "1GiB", rule = positive_size(1),
        doc = "largest file upload or workspace tar `banger serve` accepts (413 beyond)" },
      max_execs_per_sandbox = { kind = "integer", default = 8, min = 1, max = 1024,
        doc = "execs one sandbox runs at once through the API (429 beyond)" },
      max_sandboxes_per_caller = { kind = "integer", default = 16, min = 1, max = 4096,
        doc = "sandboxes one API caller may own (429 beyond)" },
    },
  },
  log = {
    kind = "table",
    fields = {
      level = { kind = "string", default = "info", choices = { "debug", "info", "warn", "error" }, doc = "log file level" },
    },
  },
  mcp = {
    kind = "table",
    fields = {
      idle_timeout = { kind = "integer", default = 1800, min = 0, max = 7 * 86400,
        doc = "seconds without a tool call on it after which `banger mcp` deletes a sandbox it made (0: never)" },
      max_output = { kind = "size", default = "64KiB", rule = output_size,
        doc = "bytes of a tool's text output (exec's stdout and stderr each, read_file) kept before a truncation marker" },
    },
  },
  file_sync = {
    kind = "list",
    default = {},
    doc = "host files copied onto each VM's work disk",
    of = {
      kind = "table",
      fields = {
        host = { kind = "string", required = true, rule = host_path, doc = "host path ('~/' expands to $HOME)" },
        guest = { kind = "string", required = true, rule = guest_path, doc = "guest path under '~/' or '/root/'" },
        mode = { kind = "string", rule = mode_string, doc = "file mode, default \"0600\" (directories keep their modes)" },
      },
    },
  },
}

-- `key` and `why` travel with the error so banger.datafile can add the
-- line the key is written on; `hint` is printed after the message.
local function fail(source, key, why, hint, suggestion)
  errors.raise("EINVAL", source .. ": " .. key .. ": " .. why,
    { exit = 78, key = key, why = why, hint = hint, suggestion = suggestion })
end

-- Optimal string alignment distance: a typo is mostly one letter added,
-- dropped, changed, or two neighbours swapped ("memroy").
local function distance(a, b)
  local d = {}
  for i = 0, #a do
    d[i] = { [0] = i }
  end
  for j = 0, #b do
    d[0][j] = j
  end
  for i = 1, #a do
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      d[i][j] = math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if i > 1 and j > 1 and a:byte(i) == b:byte(j - 1) and a:byte(i - 1) == b:byte(j) then
        d[i][j] = math.min(d[i][j], d[i - 2][j - 2] + 1)
      end
    end
  end
  return d[#a][#b]
end

-- The key an unknown `name` under `parent` (whose keys are `siblings`)
-- most likely meant, or nil: a close spelling among the siblings
-- ("vm.cpus" -> "vm.vcpus"), else the same name in another section
-- ("vm.bridge" -> "network.bridge", "vcpus" -> "vm.vcpus").
local function suggest(parent, name, siblings)
  local best, best_d
  local allowed = math.max(1, #name // 3)
  for field in pairs(siblings or {}) do
    local d = distance(name:lower(), field)
    if d <= allowed and (not best_d or d < best_d or (d == best_d and field < best)) then
      best, best_d = field, d
    end
  end
  if best then
    return parent ~= "" and (parent .. "." .. best) or best
  end
  local sections = {}
  for s in pairs(M.schema) do
    sections[#sections + 1] = s
  end
  table.sort(sections)
  for _, s in ipairs(sections) do
    local fields = M.schema[s].fields
    if s ~= parent and fields and fields[name] then
      return s .. "." .. name
    end
  end
end

--- What an unknown key `name` in section `parent` ("vm"; "" for the top
-- level) most likely meant ("vm.vcpus"), or nil.
---@param parent string
---@param name string
---@return string|nil
function M.suggest(parent, name)
  local siblings = parent == "" and M.schema or (M.schema[parent] and M.schema[parent].fields)
  return suggest(parent, name, siblings)
end

local function copy_default(v)
  if type(v) == "table" then
    local t = {}
    for k, x in pairs(v) do
      t[k] = copy_default(x)
    end
    return t
  end
  return v
end

local check_value

local function check_table(spec, value, key, source)
  if type(value) ~= "table" then
    fail(source, key, "expected a table, got " .. type(value))
  end
  local out = {}
  for k in pairs(value) do
    if type(k) ~= "string" or not spec.fields[k] then
      local name = key ~= "" and (key .. "." .. tostring(k)) or tostring(k)
      local meant = type(k) == "string" and suggest(key, k, spec.fields)
      fail(source, name, "unknown key", meant and ("did you mean " .. meant .. "?") or nil, meant)
    end
  end
  for name, field in pairs(spec.fields) do
    local full = key ~= "" and (key .. "." .. name) or name
    local v = value[name]
    if v == nil then
      if field.required then
        fail(source, full, "is required")
      end
      out[name] = copy_default(field.default)
      if field.kind == "table" then
        out[name] = check_value(field, {}, full, source)
      end
    else
      out[name] = check_value(field, v, full, source)
    end
  end
  if spec.check then
    local field, why = spec.check(out)
    if field then -- a check that names a field fails it, with or without a reason
      fail(source, key ~= "" and (key .. "." .. field) or field, why or "is not valid")
    end
  end
  return out
end

function check_value(spec, v, key, source)
  local kind = spec.kind
  if kind == "table" then
    return check_table(spec, v, key, source)
  elseif kind == "list" then
    if type(v) ~= "table" then
      fail(source, key, "expected a list, got " .. type(v))
    end
    local out = {}
    for k in pairs(v) do
      if math.type(k) ~= "integer" or k < 1 or k > #v then
        fail(source, key, "expected a list (keys 1..n), found key " .. tostring(k))
      end
    end
    local item = type(spec.of) == "table" and spec.of or { kind = spec.of }
    for i, x in ipairs(v) do
      out[i] = check_value(item, x, key .. "[" .. i .. "]", source)
    end
    return out
  elseif kind == "integer" then
    if math.type(v) ~= "integer" then
      fail(source, key, "expected an integer, got " .. (type(v) == "number" and tostring(v) or type(v)))
    end
    if (spec.min and v < spec.min) or (spec.max and v > spec.max) then
      fail(source, key, "must be between " .. spec.min .. " and " .. spec.max .. ", got " .. v)
    end
  elseif kind == "size" then
    if type(v) ~= "string" and math.type(v) ~= "integer" then
      fail(source, key, "expected a size such as \"2GiB\", got " .. type(v))
    end
  elseif kind == "boolean" then
    if type(v) ~= "boolean" then
      fail(source, key, "expected true or false, got " .. type(v))
    end
  elseif kind == "string" then
    if type(v) ~= "string" then
      fail(source, key, "expected a string, got " .. type(v))
    end
    if spec.choices then
      local ok = false
      for _, c in ipairs(spec.choices) do
        ok = ok or c == v
      end
      if not ok then
        fail(source, key, "must be one of " .. table.concat(spec.choices, ", ") .. ", got '" .. v .. "'")
      end
    end
  end
  if spec.rule then
    local why = spec.rule(v)
    if why then
      fail(source, key, why)
    end
  end
  return v
end

--- Validates one value against the schema entry at `key` ("vm.vcpus",
-- "file_sync"); for files that share config's rules, like banger.lua.
function M.check(key, value, source)
  local spec = M.schema
  for part in key:gmatch("[^.]+") do
    spec = spec.fields and spec.fields[part] or spec[part]
  end
  return check_value(spec, value, key, source)
end

--- Validates a config table; returns it with defaults filled in.
function M.validate(tbl, source)
  return check_table({ fields = M.schema }, tbl, "", source or "config")
end

function M.path()
  return paths.resolve().config .. "/config.lua"
end

local function load_file(path)
  local datafile = require("banger.datafile")
  local text = datafile.read(path)
  if not text then
    return M.validate({}, path)
  end
  local value, functions = datafile.eval(text, path)
  if type(value) ~= "table" then
    errors.raise("EINVAL", path .. ": must return a table (got " .. type(value) .. ")", { exit = 78 })
  end
  local ok, result = pcall(function()
    if #functions > 0 then
      fail(path, functions[1], "a function is not a setting")
    end
    return M.validate(value, path)
  end)
  if not ok then
    datafile.locate(result, path, text)
  end
  return result
end

--- Loads and validates the config file (defaults when it does not exist).
-- The file is data, not a program: it is evaluated by banger.datafile, in
-- a sandbox with no libraries, a memory cap and an instruction budget.
-- Every failure to read or validate it raises with exit 78 (EX_CONFIG) and
-- `config_file` set to the path, so callers (banger doctor) can tell a bad
-- config from their own failures.
function M.load(path)
  path = path or M.path()
  local ok, result = pcall(load_file, path)
  if not ok then
    if errors.is(result) and result.code ~= "ECANCELED" then
      result.exit, result.config_file = 78, path
    end
    error(result, 0)
  end
  return result
end

--- True when `e` is a failure to read or validate the config file.
---@param e any  an error value caught by pcall
---@return boolean
function M.is_error(e)
  return errors.is(e) and e.config_file ~= nil
end

local cached
--- The current user's config, loaded once per process.
function M.get()
  cached = cached or M.load()
  return cached
end

return M
