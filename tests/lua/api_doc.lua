-- docs/lua-api.md and docs/lua-api/*.md read as a contract. Shared by
-- tests/lua/api_doc_spec.lua (coverage, examples) and scripts/api-types.lua
-- (the LuaCATS definitions generated from the same headings).
--
-- One entry per heading whose text is a backticked signature:
--   ### `banger.native.fs.read(path: string): string`
--   ### `banger.ext4.fs:write(path: string, data: string, opts?: table): true`
--   ### `banger.json.null`                       (a value, not a function)
--   ### `banger.vm.hooks: table`                 (a value with its type)
-- Named shapes are bullets under "## Types": - `banger.stat`: `{ ... }`
-- Internal names are bullets under a "## Internal" heading:
--   - `banger.vms.now`: why it is not part of the API
-- Examples are the ```lua blocks; each runs on its own. One that needs what
-- a fresh home cannot have (a VM, a registry) starts with a line
--   -- needs: a registry (tests/lua/e2e_pull_spec.lua runs this flow)
-- and is only compiled.
local M = {}

M.root = (os.getenv("BANGER_SOURCE_DIR") or ".")

local fs = require("banger.native.fs")

--- The documentation files: docs/lua-api.md, then docs/lua-api/*.md sorted.
function M.files()
  local files = { "docs/lua-api.md" }
  local names = assert(fs.list(M.root .. "/docs/lua-api"))
  local pages = {}
  for _, n in ipairs(names) do
    local name = type(n) == "table" and n.name or n
    if name:match("%.md$") then
      pages[#pages + 1] = "docs/lua-api/" .. name
    end
  end
  table.sort(pages)
  for _, p in ipairs(pages) do
    files[#files + 1] = p
  end
  return files
end

-- Splits "a: T, b?: table<string, integer>" at top-level commas.
local function split_top(s)
  local parts, depth, start = {}, 0, 1
  for i = 1, #s do
    local c = s:sub(i, i)
    if c == "(" or c == "[" or c == "{" or c == "<" then
      depth = depth + 1
    elseif c == ")" or c == "]" or c == "}" or c == ">" then
      depth = depth - 1
    elseif c == "," and depth == 0 then
      parts[#parts + 1] = s:sub(start, i - 1)
      start = i + 1
    end
  end
  parts[#parts + 1] = s:sub(start)
  local out = {}
  for _, p in ipairs(parts) do
    p = p:gsub("^%s+", ""):gsub("%s+$", "")
    if p ~= "" then
      out[#out + 1] = p
    end
  end
  return out
end

-- "name(params): returns" -> entry; "name" or "name: type" -> value entry.
local function parse_signature(sig)
  -- "T:m(" is a method; "name: type" a value with its type.
  local name, rest = sig:match("^([%w_.]+:[%a_][%w_]*)(%(.*)$")
  if not name then
    name, rest = sig:match("^([%w_.]+)(.*)$")
  end
  if not name then
    return nil, "not a signature: " .. sig
  end
  local e = { name = name }
  if rest:sub(1, 1) == "(" then
    local depth, close = 0, nil
    for i = 1, #rest do
      local c = rest:sub(i, i)
      if c == "(" then
        depth = depth + 1
      elseif c == ")" then
        depth = depth - 1
        if depth == 0 then
          close = i
          break
        end
      end
    end
    if not close then
      return nil, "unbalanced parentheses: " .. sig
    end
    e.kind = "function"
    e.params = {}
    for _, p in ipairs(split_top(rest:sub(2, close - 1))) do
      local pname, opt, ptype = p:match("^([%w_.]+)(%??)%s*:%s*(.+)$")
      if not pname then
        return nil, "parameter without a type (name: type): " .. p .. " in " .. sig
      end
      e.params[#e.params + 1] = { name = pname, optional = opt == "?", type = ptype }
    end
    local ret = rest:sub(close + 1):match("^%s*:%s*(.+)$")
    e.returns = ret and split_top(ret) or {}
  else
    e.kind = "value"
    e.type = rest:match("^%s*:%s*(.+)$")
  end
  return e
end

--- { entries = { {name, kind, params, returns, type, file, line, text} ... },
---   by_name = { [name] = entry }, internal = { [name] = {file, line} },
---   examples = { {file, line, code} ... }, errors = { "file:line: ..." } }
function M.parse()
  local doc = { entries = {}, by_name = {}, internal = {}, examples = {}, errors = {}, types = {}, type_names = {} }
  for _, file in ipairs(M.files()) do
    local text = assert(fs.read(M.root .. "/" .. file))
    local lineno, in_code, code, code_line, code_lang = 0, false, nil, nil, nil
    local section, current = nil, nil
    for line in (text .. "\n"):gmatch("(.-)\n") do
      lineno = lineno + 1
      if in_code then
        if line:match("^```%s*$") then
          in_code = false
          if code_lang == "lua" then
            doc.examples[#doc.examples + 1] = { file = file, line = code_line, code = table.concat(code, "\n") .. "\n",
              entry = current and current.name, needs = code[1] and code[1]:match("^%-%- needs: (.+)$") }
          end
        else
          code[#code + 1] = line
        end
      elseif line:match("^```") then
        if current then
          current.summary_done = true
        end
        in_code, code, code_line, code_lang = true, {}, lineno, line:match("^```%s*(%S*)")
      elseif line:match("^## ") then
        section = line:match("^##%s+(.-)%s*$")
        current = nil
      elseif line:match("^###+%s+`") then
        local sig = line:match("^###+%s+`([^`]+)`%s*$")
        local e, err
        if sig then
          e, err = parse_signature(sig)
        else
          err = "a heading must be one backticked signature: " .. line
        end
        if e then
          e.file, e.line = file, lineno
          if doc.by_name[e.name] then
            doc.errors[#doc.errors + 1] = string.format("%s:%d: %s is documented twice (also %s:%d)", file, lineno,
              e.name, doc.by_name[e.name].file, doc.by_name[e.name].line)
          end
          e.summary = {}
          doc.entries[#doc.entries + 1] = e
          doc.by_name[e.name] = e
          current = e
        else
          doc.errors[#doc.errors + 1] = string.format("%s:%d: %s", file, lineno, err)
        end
      elseif current and not current.summary_done then
        -- the first paragraph under a heading: its one-line description
        if line:match("^%s*$") then
          current.summary_done = #current.summary > 0
        else
          current.summary[#current.summary + 1] = line
        end
      elseif section == "Types" and line:match("^%- `") then
        local name, shape = line:match("^%- `([%w_.]+)`: `(.+)`%s*$")
        if name then
          doc.types[#doc.types + 1] = { name = name, shape = shape }
          doc.type_names[name] = true
        else
          doc.errors[#doc.errors + 1] = string.format("%s:%d: a type is - `name`: `shape`", file, lineno)
        end
      elseif section == "Internal" then
        local name = line:match("^%- `([%w_.:]+)`")
        if name then
          doc.internal[name] = { file = file, line = lineno }
        end
      end
    end
  end
  return doc
end

return M
