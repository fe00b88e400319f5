--- banger.complete: shell completion, answered by banger itself.
--
-- The scripts `banger completion SHELL` prints (completion/banger.*) call
-- back `banger __complete -- WORD... CURRENT` at each Tab, so the
-- candidates always follow the recipes and names of the moment, like
-- cobra's and clap's dynamic completion. The callback prints one candidate
-- per line, `word<TAB>description`, or a directive line: `:file` or
-- `:directory` (let the shell complete paths).
--
-- What it reads: the recipes `banger help` lists (bundled, the user's, a
-- trusted project's; never an untrusted project's), loaded to read their
-- `flags` and `args`, never run; names from the state store opened read
-- only. It creates, migrates and reconciles nothing, reads no config and
-- no banger.lua, and never writes to stderr: any failure gives no candidates.
--
-- A recipe says what a value is with `complete` on an arg or flag spec:
-- "vm", "image", "kernel", "snapshot" (names from the state store),
-- "file" or "directory". A spec with `choices` completes to them.
local M = {}

-- Commands main.lua answers itself, not recipes.
local builtins = {
  { "help", "show the commands, or a command's flags" },
  { "run", "run a Lua script with banger's API" },
  { "repl", "an interactive Lua prompt with banger's API" },
}

local global_flags = {
  { "--debug", "tracebacks, debug log on stderr" },
  { "--no-project", "ignore this directory's project" },
}

M.shells = { "bash", "zsh", "fish" }

local function starts(s, prefix)
  return s:sub(1, #prefix) == prefix
end

-- names ----------------------------------------------------------------------

local tables = { vm = "vms", image = "images", snapshot = "snapshots" }

--- The names of one kind ("vm", "image", "kernel", "snapshot") in the state
-- store, sorted; none when there is no store yet. Reads only.
function M.names(kind)
  local layout = require("banger.native.paths").resolve()
  local fs = require("banger.native.fs")
  local out = {}
  if kind == "kernel" then
    local dir = layout.state .. "/kernels"
    for _, n in ipairs(fs.list(dir) or {}) do
      if fs.exists(dir .. "/" .. n .. "/manifest.json") then
        out[#out + 1] = n
      end
    end
  elseif tables[kind] then
    local path = layout.state .. "/banger.db"
    if not fs.exists(path) then
      return out
    end
    local db, err = require("banger.native.store").open_readonly(path)
    if not db then
      error(err, 0)
    end
    local rows = db:query("SELECT name FROM " .. tables[kind] .. " ORDER BY name")
    for _, r in ipairs(rows) do
      out[#out + 1] = r.name
    end
  end
  table.sort(out)
  return out
end

-- commands ---------------------------------------------------------------------

-- The commands `banger help` lists: { ["vm list"] = entry }, and the entries.
local function commands()
  local recipes = require("banger.recipes")
  local by_command = {}
  local all = recipes.all()
  for _, r in ipairs(all) do
    by_command[r.command] = r
  end
  return by_command, all
end

local function summary_of(entry)
  local ok, recipe = pcall(require("banger.recipes").load, entry.path)
  return ok and type(recipe.summary) == "string" and recipe.summary or ""
end

-- The next words after the group `prefix` ("" or "vm " ...) that begin
-- with `cur`, with the summary of a command or "commands" for a group.
-- `all` is sorted, so a command comes before the group of the same name.
local function next_words(all, prefix, cur)
  local out, seen = {}, {}
  for _, r in ipairs(all) do
    if starts(r.command, prefix) then
      local rest = r.command:sub(#prefix + 1)
      local word = rest:match("^[^ ]+")
      if word and starts(word, cur) and not seen[word] then
        seen[word] = true
        out[#out + 1] = { word, word == rest and summary_of(r) or "commands" }
      end
    end
  end
  return out
end

local function is_group(all, command)
  for _, r in ipairs(all) do
    if starts(r.command, command .. " ") then
      return true
    end
  end
  return false
end

-- flags ------------------------------------------------------------------------

local function takes_value(spec)
  return (spec.type or "boolean") ~= "boolean"
end

--- A flag's value placeholder, as `banger help` shows it (its choices
-- when it has some).
local function placeholder(spec)
  return spec.metavar or (spec.choices and table.concat(spec.choices, "|"))
    or (spec.type == "integer" and "N" or "VALUE")
end

local function flag_candidates(specs, given, cur)
  local out = {}
  for _, s in ipairs(specs) do
    local repeatable = s.type == "list"
    if repeatable or not given[s[1]] then
      local help = s.help or ""
      local name = "--" .. s[1]
      if takes_value(s) then
        help = placeholder(s) .. (help ~= "" and (": " .. help) or "")
      end
      if starts(name, cur) then
        out[#out + 1] = { name, help }
      end
      if s.tristate and starts("--no-" .. s[1], cur) then
        out[#out + 1] = { "--no-" .. s[1], "the opposite of " .. name }
      end
    end
  end
  return out
end

-- values -----------------------------------------------------------------------

-- Candidates for a value described by `spec` (an arg or a flag); a
-- directive string for paths; `prefix` is put back in front (--flag=).
local function value_candidates(spec, cur, prefix)
  prefix = prefix or ""
  local out = {}
  if spec.choices then
    for _, c in ipairs(spec.choices) do
      if starts(c, cur) then
        out[#out + 1] = { prefix .. c }
      end
    end
    return out
  end
  local kind = spec.complete
  if kind == "file" or kind == "directory" then
    return ":" .. kind
  end
  if kind then
    for _, n in ipairs(M.names(kind)) do
      if starts(n, cur) then
        out[#out + 1] = { prefix .. n, kind }
      end
    end
  end
  return out
end

-- After a recipe's words: its flags, flag values and positional args.
local function recipe_candidates(recipe, rest, cur, subcommands)
  local specs, by_long, by_short = require("banger.cli").flag_specs(recipe)
  local given, positionals, after_dashes = {}, 0, false
  local i = 1
  while i <= #rest do
    local a = rest[i]
    if after_dashes then
      positionals = positionals + 1
    elseif a == "--" then
      after_dashes = true
    elseif starts(a, "-") and (starts(a, "--") or #a == 2) then
      local spec, inline_value
      if starts(a, "--") then
        local name = a:match("^%-%-([^=]+)") or ""
        spec, inline_value = by_long[name] or by_long[name:gsub("^no%-", "")], a:find("=", 1, true) ~= nil
      else
        spec = by_short[a:sub(2)]
      end
      if spec then
        given[spec[1]] = true
        if takes_value(spec) and not inline_value then
          i = i + 1
          if i > #rest then
            return value_candidates(spec, cur)
          end
        end
      end
    else
      positionals = positionals + 1
    end
    i = i + 1
  end
  -- The word being completed.
  if not after_dashes then
    local name, value = cur:match("^%-%-([^=]+)=(.*)$")
    if name then
      local spec = by_long[name]
      return spec and takes_value(spec) and value_candidates(spec, value, "--" .. name .. "=") or {}
    end
    if starts(cur, "-") then
      return flag_candidates(specs, given, cur)
    end
  end
  local out = positionals == 0 and not after_dashes and subcommands() or {}
  local slot
  local n = 0
  for _, a in ipairs(recipe.args or {}) do
    n = n + 1
    if a.rest or n == positionals + 1 then
      slot = a
      break
    end
  end
  if slot and not (after_dashes and not slot.rest) then
    local values = value_candidates(slot, cur)
    if type(values) == "string" then
      return #out > 0 and out or values
    end
    table.move(values, 1, #values, #out + 1, out)
  end
  return out
end

--- The candidates for `cur` after `words` (the words after `banger`):
-- a list of { word, description }, or a directive string (":file").
function M.candidates(words, cur)
  local i = 1
  while words[i] and starts(words[i], "-") do
    if words[i] == "--no-project" then
      require("banger.trust").disable()
    end
    i = i + 1
  end
  words = table.move(words, i, #words, 1, {})
  for _, w in ipairs(words) do
    if w == "--" then
      break
    end
    if w == "--no-project" then
      require("banger.trust").disable()
    end
  end
  if #words == 0 and starts(cur, "-") then
    local out = {}
    for _, f in ipairs(global_flags) do
      if starts(f[1], cur) then
        out[#out + 1] = { f[1], f[2] }
      end
    end
    return out
  end
  if words[1] == "run" then
    return #words == 1 and ":file" or {}
  end
  if words[1] == "repl" then
    return {}
  end
  local helping = words[1] == "help"
  if helping then
    words = table.move(words, 2, #words, 1, {})
  end
  local by_command, all = commands()
  local aliases = require("banger.recipes").aliases
  -- The longest run of words naming groups, then a command; aliases allowed.
  local prefix, found, consumed = "", nil, 0
  for j, w in ipairs(words) do
    local cmd = prefix .. (by_command[prefix .. w] and w or aliases[w] or w)
    local group = is_group(all, cmd)
    if by_command[cmd] then
      found, consumed = by_command[cmd], j
    end
    if not group then
      break
    end
    prefix = cmd .. " "
  end
  local group_depth = select(2, prefix:gsub(" ", ""))
  local function subcommands()
    return next_words(all, prefix, cur)
  end
  if not found or consumed < group_depth then
    if group_depth ~= #words then
      return {}
    end
    local out = subcommands()
    if #words == 0 and not helping then
      for _, b in ipairs(builtins) do
        if starts(b[1], cur) then
          out[#out + 1] = { b[1], b[2] }
        end
      end
      table.sort(out, function(a, b)
        return a[1] < b[1]
      end)
    end
    return out
  end
  if helping then
    return group_depth == #words and subcommands() or {}
  end
  local recipe = require("banger.recipes").load(found.path)
  local rest = table.move(words, consumed + 1, #words, 1, {})
  return recipe_candidates(recipe, rest, cur, group_depth == consumed and subcommands or function()
    return {}
  end)
end

--- `banger __complete -- WORD... CURRENT`: prints the candidates. Never
-- fails loudly: errors give no candidates and exit status 0.
function M.main(argv)
  local ok, result = pcall(function()
    local first = argv[2] == "--" and 3 or 2
    local words = table.move(argv, first, #argv, 1, {})
    local cur = table.remove(words) or ""
    return M.candidates(words, cur)
  end)
  if not ok then
    return 0
  end
  if type(result) == "string" then
    io.stdout:write(result, "\n")
    return 0
  end
  local lines = {}
  for _, c in ipairs(result) do
    local desc = (c[2] or ""):gsub("[\t\n]", " ")
    lines[#lines + 1] = desc ~= "" and (c[1] .. "\t" .. desc) or c[1]
  end
  if #lines > 0 then
    io.stdout:write(table.concat(lines, "\n"), "\n")
  end
  return 0
end

--- The completion script for `shell` ("bash", "zsh" or "fish").
function M.script(shell)
  local fs = require("banger.native.fs")
  local path = require("banger.native.sys").lua_dir() .. "/stdlib/banger/completion/banger." .. shell
  local text, err = fs.read(path)
  if not text then
    require("banger.errors").raise("ENOENT", "no completion script for " .. shell .. ": " .. tostring(err))
  end
  return text
end

return M
