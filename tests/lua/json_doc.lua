-- docs/scripting.md's "JSON output" section, read as a contract: which
-- command prints which type, and each record's keys and types. conforms()
-- checks a decoded --json output against it: every documented key present
-- (null only where the page says "or null"), no other key, and each value
-- of the documented JSON type. Shared by json_doc_spec and the specs that
-- already run the commands needing a registry, an HTTP server or a VM.
local M = {}

local function strip(s)
  return (s:gsub("`", ""):gsub("^%s+", ""):gsub("%s+$", ""))
end

--- { commands = { ["vm list"] = "array of vm", ... }, order = { "vm list", ... },
--   kinds = { vm = { { "id", "string" }, ... }, ... } }
function M.parse()
  local doc = t.read(t.source_dir() .. "/docs/scripting.md")
  local start = doc:find("\n## JSON output\n", 1, true)
  assert(start, "docs/scripting.md has no '## JSON output' section")
  local stop = doc:find("\n## ", start + 1, true)
  local section = doc:sub(start, stop or #doc) .. "\n"
  local out = { commands = {}, order = {}, kinds = {} }
  local head = section:match("^(.-)\n### ") or section
  for cmd, ty in head:gmatch("\n| `([%w%- ]+)` | ([^|\n]+) |") do
    out.commands[cmd] = strip(ty)
    out.order[#out.order + 1] = cmd
  end
  local pos = 1
  while true do
    local s, e, name = section:find("\n### `([%w_]+)`\n", pos)
    if not s then
      break
    end
    local next_heading = section:find("\n### ", e, true) or #section
    local fields = {}
    for key, ty in section:sub(e, next_heading):gmatch("\n| `([%w_]+)` | ([^|\n]+) |") do
      fields[#fields + 1] = { key, strip(ty) }
    end
    out.kinds[name] = fields
    pos = next_heading
  end
  return out
end

local function is_array(v)
  if type(v) ~= "table" then
    return false
  end
  local n = 0
  for _ in pairs(v) do
    n = n + 1
  end
  return n == #v
end

local function check(doc, ty, v, where)
  local inner = ty:match("^(.-) or null$")
  if inner then
    if v == banger.json.null then
      return
    end
    return check(doc, inner, v, where)
  end
  t.truthy(v ~= nil and v ~= banger.json.null, where .. " is null or missing, documented as " .. ty)
  local item = ty:match("^array of (.+)$")
  if item then
    t.truthy(is_array(v), where .. " is not an array")
    for i, x in ipairs(v) do
      check(doc, item, x, where .. "[" .. i .. "]")
    end
  elseif ty == "string" then
    t.eq(type(v), "string", where)
  elseif ty == "integer" then
    t.eq(math.type(v), "integer", where)
  elseif ty == "number" then
    t.eq(type(v), "number", where)
  elseif ty == "boolean" then
    t.eq(type(v), "boolean", where)
  else
    local kind = doc.kinds[ty]
    t.truthy(kind, where .. ": no section for type " .. ty)
    t.eq(type(v), "table", where)
    local documented = {}
    for _, f in ipairs(kind) do
      documented[f[1]] = true
      t.truthy(v[f[1]] ~= nil, where .. "." .. f[1] .. " is missing (a documented key is always present)")
      check(doc, f[2], v[f[1]], where .. "." .. f[1])
    end
    for k in pairs(v) do
      t.truthy(documented[k], where .. "." .. tostring(k) .. " is not documented in docs/scripting.md")
    end
  end
end

--- Checks `stdout` of `banger <command> --json` against the page; returns the decoded value.
function M.conforms(command, stdout)
  local doc = M.doc or M.parse()
  M.doc = doc
  local ty = doc.commands[command]
  t.truthy(ty, "docs/scripting.md does not say what '" .. command .. " --json' prints")
  local ok, v = pcall(banger.json.decode, stdout)
  t.truthy(ok, command .. " --json did not print JSON: " .. stdout)
  check(doc, ty, v, command)
  return v
end

return M
