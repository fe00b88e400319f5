--- banger.cli: the argument parser every recipe gets.
--
-- A recipe declares its interface:
--   flags = { { "name", short = "n", type = "string", help = "...", default = ... }, ... }
--   args  = { { "vm", help = "...", required = true }, { "command", rest = true } }
--   json  = true   -- adds --json
-- Flag types: boolean (also --no-<name>), string, integer, list (repeatable).
-- A boolean with tristate = true is nil when not given, so a caller can
-- tell --no-<name> from "not given" (and let the config decide).
-- Parsing yields one table: flags and positionals by name (dashes become
-- underscores). Errors are usage errors (exit 2) naming the command.
local errors = require("banger.errors")

local M = {}

local function key(name)
  return (name:gsub("-", "_"))
end

--- Every flag `recipe` accepts: its own, then the implicit --json (when
-- the recipe has JSON output) and --help; also the same specs indexed by
-- long name and by short letter.
---@param recipe table
---@return table[] specs
---@return table<string, table> by_long
---@return table<string, table> by_short
function M.flag_specs(recipe)
  local specs = {}
  for _, f in ipairs(recipe.flags or {}) do
    specs[#specs + 1] = f
  end
  if recipe.json then
    specs[#specs + 1] = { "json", type = "boolean", help = "print machine-readable JSON" }
  end
  specs[#specs + 1] = { "help", short = "h", type = "boolean", help = "show this help" }
  local by_long, by_short = {}, {}
  for _, f in ipairs(specs) do
    by_long[f[1]] = f
    if f.short then
      by_short[f.short] = f
    end
  end
  return specs, by_long, by_short
end

local function convert(spec, value, command)
  local name = "--" .. spec[1]
  local t = spec.type or "boolean"
  if t == "integer" then
    local n = math.tointeger(tonumber(value))
    if not n then
      errors.usage(name .. " expects an integer, got '" .. value .. "'", command)
    end
    return n
  end
  if spec.choices then
    for _, c in ipairs(spec.choices) do
      if c == value then
        return value
      end
    end
    errors.usage(name .. " must be one of " .. table.concat(spec.choices, ", ") .. ", got '" .. value .. "'", command)
  end
  return value
end

--- Parses argv (a list of strings) for `recipe`; `command` names it in errors.
function M.parse(recipe, argv, command)
  local specs, by_long, by_short = M.flag_specs(recipe)

  local out = {}
  for _, s in ipairs(specs) do
    local t = s.type or "boolean"
    if s.default ~= nil then
      out[key(s[1])] = s.default
    elseif t == "list" then
      out[key(s[1])] = {}
    elseif t == "boolean" and not s.tristate then
      out[key(s[1])] = false
    end
  end

  local positionals, rest = {}, nil
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      rest = table.move(argv, i + 1, #argv, 1, {})
      break
    end
    local spec, value, shown
    if a:sub(1, 2) == "--" and #a > 2 then
      local name, v = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:sub(3)
      value = v
      shown = "--" .. name
      spec = by_long[name]
      if not spec and name:sub(1, 3) == "no-" and value == nil then
        local neg = by_long[name:sub(4)]
        if neg and (neg.type or "boolean") == "boolean" then
          out[key(neg[1])] = false
          i = i + 1
          goto continue
        end
      end
    elseif a:sub(1, 1) == "-" and #a == 2 then
      shown = a
      spec = by_short[a:sub(2)]
    else
      positionals[#positionals + 1] = a
      i = i + 1
      goto continue
    end
    if not spec then
      errors.usage("unknown flag " .. shown, command)
    end
    if (spec.type or "boolean") == "boolean" then
      if value ~= nil then
        errors.usage(shown .. " does not take a value", command)
      end
      out[key(spec[1])] = true
    else
      if value == nil then
        i = i + 1
        value = argv[i]
        if value == nil then
          errors.usage(shown .. " needs a value", command)
        end
      end
      if spec.type == "list" then
        local list = out[key(spec[1])]
        list[#list + 1] = convert(spec, value, command)
      else
        out[key(spec[1])] = convert(spec, value, command)
      end
    end
    i = i + 1
    ::continue::
  end

  if out.help then
    return out
  end

  local arg_specs = recipe.args or {}
  local pi = 1
  for _, spec in ipairs(arg_specs) do
    if spec.rest then
      local collected = {}
      for j = pi, #positionals do
        collected[#collected + 1] = positionals[j]
      end
      pi = #positionals + 1
      for _, r in ipairs(rest or {}) do
        collected[#collected + 1] = r
      end
      rest = nil
      out[key(spec[1])] = collected
      if spec.required and #collected == 0 then
        errors.usage("missing " .. spec[1], command)
      end
    else
      local v = positionals[pi]
      pi = pi + 1
      if v == nil and spec.required then
        errors.usage("missing argument <" .. spec[1] .. ">", command)
      end
      out[key(spec[1])] = v
    end
  end
  if positionals[pi] ~= nil then
    errors.usage("unexpected argument '" .. positionals[pi] .. "'", command)
  end
  if rest and #rest > 0 then
    errors.usage("this command takes no arguments after --", command)
  end
  return out
end

local function arg_usage(spec)
  if spec.rest and spec.metavar then
    -- words that are not a command: given without --
    return "[" .. spec.metavar .. "...]"
  end
  local s = spec.rest and ("[-- " .. spec[1] .. "...]") or ("<" .. spec[1] .. ">")
  if not spec.required and not spec.rest then
    s = "[" .. s .. "]"
  end
  return s
end

--- The help text for a recipe.
-- A help line: `left` padded to `width`, then `help`; a `left` too long
-- for its column puts the help on the next line, aligned with the others.
local function column(left, width, help)
  if #left > width then
    return "  " .. left .. "\n" .. string.rep(" ", width + 3) .. help
  end
  return string.format("  %-" .. width .. "s %s", left, help)
end

function M.help(recipe, command)
  local lines = {}
  local usage = { "banger " .. command }
  local specs = M.flag_specs(recipe)
  if #specs > 0 then
    usage[#usage + 1] = "[flags]"
  end
  for _, a in ipairs(recipe.args or {}) do
    usage[#usage + 1] = arg_usage(a)
  end
  lines[#lines + 1] = "Usage: " .. table.concat(usage, " ")
  lines[#lines + 1] = ""
  lines[#lines + 1] = recipe.summary or ""
  if recipe.description then
    lines[#lines + 1] = ""
    lines[#lines + 1] = recipe.description
  end
  if recipe.args and #recipe.args > 0 then
    lines[#lines + 1] = ""
    lines[#lines + 1] = "Arguments:"
    for _, a in ipairs(recipe.args) do
      lines[#lines + 1] = column(arg_usage(a), 22, a.help or "")
    end
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Flags:"
  for _, f in ipairs(specs) do
    local t = f.type or "boolean"
    local left = (f.short and ("-" .. f.short .. ", ") or "    ") .. "--" .. (f.tristate and "[no-]" or "") .. f[1]
    if t ~= "boolean" then
      left = left .. " " .. (f.metavar or (t == "integer" and "N" or "VALUE"))
    end
    local help = f.help or ""
    if f.default ~= nil and t ~= "boolean" then
      help = help .. " (default " .. tostring(f.default) .. ")"
    end
    if t == "list" then
      help = help .. " (repeatable)"
    end
    lines[#lines + 1] = column(left, 26, help)
  end
  if recipe.examples then
    lines[#lines + 1] = ""
    lines[#lines + 1] = "Examples:"
    for _, e in ipairs(recipe.examples) do
      lines[#lines + 1] = "  " .. e
    end
  end
  return table.concat(lines, "\n") .. "\n"
end

return M
