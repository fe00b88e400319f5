--- banger.main: the command line. The C++ host calls run(argv) and exits
-- with what it returns. Everything a user sees starts here:
--   banger [--debug] [--no-project] <words...> [flags] [-- args]   runs the matching recipe
--   banger run SCRIPT.lua|- [args...]   runs a script (or stdin) with the full API
--   banger repl                          an interactive Lua prompt with the API
--   banger help [command...]             lists commands / shows one
local errors = require("banger.errors")
local recipes = require("banger.recipes")

local M = {}

local debug_mode = false

local function print_error(e, tb)
  if errors.is(e) and e.silent then
    return
  end
  local msg = errors.message(e)
  if errors.is(e) and e.hint then
    msg = msg .. " (" .. e.hint .. ")"
  end
  io.stderr:write("banger: ", msg, "\n")
  if debug_mode and tb then
    io.stderr:write(tb, "\n")
  end
end

local function exit_code(e)
  if errors.is(e) or type(e) == "table" then
    return math.tointeger(e.exit) or 1
  end
  return 1
end

-- Runs fn(...) and turns an uncaught error into a message and an exit code.
local function guarded(fn, ...)
  local tb
  local ok, result = xpcall(fn, function(e)
    tb = debug.traceback(nil, 2)
    return e
  end, ...)
  if ok then
    return math.tointeger(result) or 0
  end
  if not (errors.is(result) and result.code == "EXIT") then
    print_error(result, tb)
    pcall(function()
      require("banger.log").error("main", errors.message(result), { code = errors.is(result) and result.code or nil })
    end)
  end
  return exit_code(result)
end

local function setup_logging()
  local ok = pcall(function()
    local state = require("banger.state")
    local log = require("banger.log")
    log.open(state.layout().state .. "/banger.log")
  end)
  if debug_mode then
    require("banger.native.log").set_stderr("debug")
  end
  return ok
end

local run_usage = [[
Usage: banger run SCRIPT.lua [args...]
       banger run - [args...]        (the script from standard input)
       banger run                    (on a terminal: same as 'banger repl')

Runs a Lua script with banger's whole API (the `banger` table, as recipes
get it). The arguments are in `arg` and `...`; a returned integer is the
exit code. `require "name"` also finds name.lua next to the script.
A script you name is run as you asked: it needs no 'banger trust'.
]]

-- One line per command: its words, its recipe's summary and, for a
-- project's or user's recipe, where it comes from.
local function command_lines(lines, entries)
  for _, r in ipairs(entries) do
    local ok, recipe = pcall(recipes.load, r.path)
    local summary = ok and recipe.summary or ("(cannot load: " .. errors.message(recipe) .. ")")
    local origin = r.kind ~= "bundled" and (" [" .. r.kind .. "]") or ""
    lines[#lines + 1] = string.format("  %-22s %s%s", r.command, summary or "", origin)
  end
end

-- A line for each root whose recipes are not used (an untrusted project).
local function ignored_notes(lines)
  for _, r in ipairs(recipes.roots()) do
    local why = recipes.ignored(r)
    if why then
      lines[#lines + 1] = "note: " .. why
    end
  end
end

local function usage_text()
  local lines = {
    "banger: disposable Linux sandboxes as microVMs",
    "",
    "Usage: banger [--debug] [--no-project] <command> [flags] [-- args]",
    "       banger run SCRIPT.lua [args...]",
    "",
    "Commands:",
  }
  command_lines(lines, recipes.all())
  lines[#lines + 1] = string.format("  %-22s %s", "run SCRIPT.lua", "run a Lua script with banger's API ('-': from stdin)")
  lines[#lines + 1] = string.format("  %-22s %s", "repl", "an interactive Lua prompt with banger's API")
  lines[#lines + 1] = string.format("  %-22s %s", "help [command]", "show this list, or a command's flags")
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Global flags: --debug (tracebacks, debug log on stderr), --no-project (ignore this"
  lines[#lines + 1] = "directory's project: its .banger/recipes and banger.lua)."
  lines[#lines + 1] = "Aliases: ls = list, rm and remove = delete. 'banger <command> --help' shows a command's flags."
  ignored_notes(lines)
  return table.concat(lines, "\n") .. "\n"
end

-- The commands of a group ("vm", "image cache"): the recipes under its
-- directory in the roots `banger help` uses, or nil when there are none.
local function group_entries(group)
  local out = {}
  for _, r in ipairs(recipes.all()) do
    if r.command:sub(1, #group + 1) == group .. " " then
      out[#out + 1] = r
    end
  end
  return #out > 0 and out or nil
end

local function group_text(group, entries)
  local lines = { "Usage: banger " .. group .. " <command> [flags] [-- args]", "", "Commands:" }
  command_lines(lines, entries)
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Aliases: ls = list, rm and remove = delete. 'banger " .. group
    .. " <command> --help' shows a command's flags."
  ignored_notes(lines)
  return table.concat(lines, "\n") .. "\n"
end

-- `words` name no recipe. When they start with a command group, the group
-- answers like git's: `banger vm --help` (and `banger help vm`) lists the
-- group's commands on stdout and exits 0; a bare `banger vm` is an
-- incomplete command: the same list on stderr, exit 2 (a usage error).
local function group_or_unknown(words, asked_help)
  local group, entries, n
  for i = 1, #words do
    local candidate = table.concat(words, " ", 1, i)
    local found = group_entries(candidate)
    if not found then
      break
    end
    group, entries, n = candidate, found, i
  end
  local next_word = words[(n or 0) + 1]
  if not group or (next_word and next_word:sub(1, 1) ~= "-") then
    local shown = table.concat(words, " ", 1, math.min(#words, (n or 0) + 1))
    errors.raise("ENOENT", "unknown command '" .. shown .. "'",
      { exit = 2, hint = "see 'banger " .. (group and (group .. " --help") or "help") .. "'" })
  end
  if asked_help or next_word == "--help" or next_word == "-h" then
    io.stdout:write(group_text(group, entries))
    return 0
  end
  if next_word then
    errors.usage("'banger " .. group .. "' is a group of commands: name one before " .. next_word, group)
  end
  io.stderr:write(group_text(group, entries))
  return 2
end

-- The config file is validated before any command runs (docs/config.md),
-- so a typo fails every command at once (exit 78) instead of whichever
-- happens to read that key. A recipe with `needs_config = false` (version,
-- doctor) runs anyway: it is how the user finds and fixes the file.
local function check_config()
  local cfg = require("banger.config").get()
  require("banger.native.log").set_level(cfg.log.level)
end

-- Every command starts by making the state store match the host (VMs whose
-- hypervisor died are demoted, half-made ones removed). Skipped when there
-- is no state yet, so `help` on a fresh machine creates nothing.
local function reconcile()
  local ok_layout, layout = pcall(require("banger.native.paths").resolve)
  if not ok_layout or not require("banger.native.fs").exists(layout.state .. "/banger.db") then
    return
  end
  for _, module in ipairs({ "banger.vms", "banger.snapshots" }) do
    local ok, e = pcall(require(module).reconcile)
    if not ok then
      require("banger.log").error("reconcile", errors.message(e))
    end
  end
end

local function run_recipe(found, argv)
  local recipe = recipes.load(found.path)
  local cli = require("banger.cli")
  local parsed, opts = pcall(cli.parse, recipe, argv, found.command)
  if parsed and opts.help then
    io.stdout:write(cli.help(recipe, found.command))
    return 0
  end
  -- A broken config is reported before a usage error: it fails every command.
  if recipe.needs_config ~= false then
    check_config()
  end
  if not parsed then
    error(opts, 0)
  end
  -- a background server started by a command (the port forwarder) leaves
  -- reconciling to the commands
  if recipe.reconcile ~= false then
    reconcile()
  end
  return recipe.run(opts, { command = found.command, path = found.path })
end

-- A script's environment: the recipes' one, with `require` also finding
-- modules next to the script (after banger's stdlib, so banger.* cannot be
-- shadowed by a file that happens to lie there).
local function script_env(dir)
  local env = recipes.environment()
  if dir then
    local extra = dir .. "/?.lua;" .. dir .. "/?/init.lua"
    env.require = function(name)
      local saved = package.path
      package.path = saved .. ";" .. extra
      local ok, mod = pcall(require, name)
      package.path = saved
      if not ok then
        error(mod, 2)
      end
      return mod
    end
  end
  return env
end

local function run_script(path, ...)
  if path == "--help" or path == "-h" then
    io.stdout:write(run_usage)
    return 0
  end
  if not path then
    if require("banger.native.sys").isatty(0) then
      check_config()
      return require("banger.repl").run(script_env(nil))
    end
    errors.usage("run needs a script path, or '-' to read the script from standard input", "run")
  end
  local text, name, dir
  if path == "-" then
    text, name = io.stdin:read("a"), "=stdin"
  else
    local f, err = io.open(path, "rb")
    if not f then
      errors.raise("ENOENT", err, { exit = 66 })
    end
    text, name = f:read("a"), "@" .. path
    f:close()
    dir = path:match("^(.*)/[^/]*$") or "."
  end
  local env = script_env(dir)
  local chunk, err = load(text, name, "t", env)
  if not chunk then
    errors.raise("ESYNTAX", err)
  end
  check_config()
  reconcile()
  env.arg = table.pack(...)
  env.arg[0] = path
  return chunk(...)
end

local function help(words)
  if #words == 0 then
    io.stdout:write(usage_text())
    return 0
  end
  if words[1] == "run" or words[1] == "repl" then
    io.stdout:write(run_usage)
    return 0
  end
  local found = recipes.resolve(words)
  if not found then
    return group_or_unknown(words, true)
  end
  if found.consumed ~= #words then
    errors.raise("ENOENT", "unknown command '" .. table.concat(words, " ") .. "'", { exit = 2, hint = "see 'banger help'" })
  end
  return run_recipe(found, { "--help" })
end

local function dispatch(argv)
  local i = 1
  while argv[i] and argv[i]:sub(1, 1) == "-" do
    local a = argv[i]
    if a == "--debug" then
      debug_mode = true
    elseif a == "--help" or a == "-h" then
      return help({})
    elseif a == "--no-project" then
      require("banger.trust").disable()
    elseif a == "--version" then
      argv = { "version" }
      i = 1
      break
    else
      errors.usage("unknown global flag " .. a, nil)
    end
    i = i + 1
  end
  -- --no-project is global but also accepted after the command's words
  -- (before any `--`), where a user reaching for it would put it; a
  -- script's arguments are its own.
  local words = {}
  for j = i, #argv do
    if argv[j] == "--" or argv[i] == "run" then
      table.move(argv, j, #argv, #words + 1, words)
      break
    end
    if argv[j] == "--no-project" then
      require("banger.trust").disable()
    else
      words[#words + 1] = argv[j]
    end
  end
  setup_logging()

  local cmd = words[1]
  if cmd == nil then
    io.stdout:write(usage_text())
    return 0
  end
  if cmd == "help" then
    return help(table.move(words, 2, #words, 1, {}))
  end
  if cmd == "run" then
    return run_script(table.unpack(words, 2))
  end
  if cmd == "repl" then
    check_config()
    return require("banger.repl").run(script_env(nil))
  end
  local found = recipes.resolve(words)
  if not found then
    return group_or_unknown(words, false)
  end
  return run_recipe(found, table.move(words, found.consumed + 1, #words, 1, {}))
end

function M.run(argv)
  -- The shell's Tab (banger.complete): before logging, config and
  -- reconciling, none of which completion may touch.
  if argv[1] == "__complete" then
    return require("banger.complete").main(argv)
  end
  debug_mode = os.getenv("BANGER_DEBUG") == "1"
  -- os.exit would skip <close> handlers and finalizers; unwind instead.
  os.exit = errors.exit
  return guarded(dispatch, argv)
end

return M
