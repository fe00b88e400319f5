--- banger.main: the command line. The C++ host calls run(argv) and exits
-- with what it returns. Everything a user sees starts here:
--   banger [--debug] <words...> [flags] [-- args]   runs the matching recipe
--   banger run SCRIPT.lua [args...]                 runs a script with the full API
--   banger help [command...]                         lists commands / shows one
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

local function usage_text()
  local lines = {
    "banger: disposable Linux sandboxes as microVMs",
    "",
    "Usage: banger [--debug] <command> [flags] [-- args]",
    "       banger run SCRIPT.lua [args...]",
    "",
    "Commands:",
  }
  for _, r in ipairs(recipes.all()) do
    local ok, recipe = pcall(recipes.load, r.path)
    local summary = ok and recipe.summary or ("(cannot load: " .. errors.message(recipe) .. ")")
    local origin = r.kind ~= "bundled" and (" [" .. r.kind .. "]") or ""
    lines[#lines + 1] = string.format("  %-22s %s%s", r.command, summary or "", origin)
  end
  lines[#lines + 1] = string.format("  %-22s %s", "run SCRIPT.lua", "run a Lua script with banger's API")
  lines[#lines + 1] = string.format("  %-22s %s", "help [command]", "show this list, or a command's flags")
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Aliases: ls = list, rm = delete. 'banger <command> --help' shows a command's flags."
  return table.concat(lines, "\n") .. "\n"
end

-- Every command starts by making the state store match the host (VMs whose
-- hypervisor died are demoted, half-made ones removed). Skipped when there
-- is no state yet, so `help` on a fresh machine creates nothing.
local function reconcile()
  local ok_layout, layout = pcall(require("banger.native.paths").resolve)
  if not ok_layout or not require("banger.native.fs").exists(layout.state .. "/banger.db") then
    return
  end
  local ok, e = pcall(require("banger.vms").reconcile)
  if not ok then
    require("banger.log").error("reconcile", errors.message(e))
  end
end

local function run_recipe(found, argv)
  reconcile()
  local recipe = recipes.load(found.path)
  local cli = require("banger.cli")
  local opts = cli.parse(recipe, argv, found.command)
  if opts.help then
    io.stdout:write(cli.help(recipe, found.command))
    return 0
  end
  return recipe.run(opts, { command = found.command, path = found.path })
end

local function run_script(path, ...)
  if not path then
    errors.usage("run needs a script path", "run")
  end
  local chunk, err = loadfile(path, "t", recipes.environment())
  if not chunk then
    errors.raise("ESYNTAX", err)
  end
  reconcile()
  local env = select(2, debug.getupvalue(chunk, 1))
  env.arg = table.pack(...)
  env.arg[0] = path
  return chunk(...)
end

local function help(words)
  if #words == 0 then
    io.stdout:write(usage_text())
    return 0
  end
  local found = recipes.resolve(words)
  if not found or found.consumed ~= #words then
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
    elseif a == "--version" then
      argv = { "version" }
      i = 1
      break
    else
      errors.usage("unknown global flag " .. a, nil)
    end
    i = i + 1
  end
  local words = table.move(argv, i, #argv, 1, {})
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
  local found = recipes.resolve(words)
  if not found then
    errors.raise("ENOENT", "unknown command '" .. cmd .. "'", { exit = 2, hint = "see 'banger help'" })
  end
  return run_recipe(found, table.move(words, found.consumed + 1, #words, 1, {}))
end

function M.run(argv)
  debug_mode = os.getenv("BANGER_DEBUG") == "1"
  -- os.exit would skip <close> handlers and finalizers; unwind instead.
  os.exit = errors.exit
  return guarded(dispatch, argv)
end

return M
