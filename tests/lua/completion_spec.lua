-- Shell completion: `banger completion bash|zsh|fish` scripts, run in the
-- real shells, and the `banger __complete` callback they share.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()

-- An environment for a shell in `home` with `banger` on its PATH.
local function shell_env(home)
  local bin = home .. "/bin"
  banger.fs.mkdir(bin, 493, true)
  if not banger.fs.exists(bin .. "/banger") then
    t.eq(banger.proc.run({ "ln", "-s", t.bin(), bin .. "/banger" }).code, 0)
  end
  local env = {}
  for _, kv in ipairs(t.env(home)) do
    if kv:sub(1, 5) ~= "PATH=" then
      env[#env + 1] = kv
    end
  end
  env[#env + 1] = "PATH=" .. bin .. ":" .. (os.getenv("PATH") or "/usr/bin:/bin")
  return env
end

local function run_shell(home, argv)
  argv.env = shell_env(home)
  argv.cwd = home
  argv.timeout_ms = 60000
  local r = banger.proc.run(argv)
  t.eq(r.code, 0, table.concat(argv, " ") .. ": " .. r.stderr)
  t.eq(r.stderr, "", table.concat(argv, " "))
  return r.stdout
end

local function lines(text)
  local out = {}
  for line in text:gmatch("[^\n]+") do
    out[#out + 1] = line
  end
  return out
end

-- bash: COMP_WORDS as readline splits `banger WORDS...` (the last is the
-- word under the cursor), _banger run, COMPREPLY one per line.
local bash_driver = [[
source <(banger completion bash) || exit 3
complete -p banger >/dev/null || exit 4
COMP_WORDS=(banger "$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}
COMPREPLY=()
_banger
for c in "${COMPREPLY[@]}"; do printf '%s\n' "$c"; done
]]

local function bash_complete(home, words)
  local argv = { "bash", "-c", bash_driver, "bash" }
  table.move(words, 1, #words, #argv + 1, argv)
  return lines(run_shell(home, argv))
end

-- zsh: the completion system's functions are replaced by ones that print
-- what they are given, so the script's own logic runs in real zsh.
local zsh_driver = [[
_describe() { local -a arr; arr=("${(@P)${@[-1]}}"); print -rl -- "${arr[@]%%:*}"; }
_files() { print -r -- ":file $*"; }
compdef() { :; }
source <(banger completion zsh) || exit 3
words=(banger "$@"); CURRENT=${#words}
_banger
]]

local function zsh_complete(home, words)
  local argv = { "zsh", "-f", "-c", zsh_driver, "zsh" }
  table.move(words, 1, #words, #argv + 1, argv)
  return lines(run_shell(home, argv))
end

-- fish: its own `complete -C` runs the registered completion.
local function fish_complete(home, words)
  local line = "banger " .. table.concat(words, " ")
  local out = run_shell(home, { "fish", "--no-config", "-c",
    "banger completion fish | source; or exit 3; complete -C " .. string.format("%q", line) })
  local words_out = {}
  for _, l in ipairs(lines(out)) do
    words_out[#words_out + 1] = l:match("^[^\t]*")
  end
  return words_out
end

-- The callback itself: candidate words (descriptions dropped).
local function callback(home, words)
  local argv = { "__complete", "--" }
  table.move(words, 1, #words, 3, argv)
  local r = t.banger(argv, { home = home })
  t.eq(r.code, 0)
  t.eq(r.stderr, "", "the callback writes nothing on stderr")
  local out = {}
  for _, l in ipairs(lines(r.stdout)) do
    out[#out + 1] = l:match("^[^\t]*")
  end
  return out
end

local function sorted(list)
  local copy = table.move(list, 1, #list, 1, {})
  table.sort(copy)
  return copy
end

-- The commands of a group, from its own listing (`banger vm --help`).
local function group_commands(home, group)
  local r = t.banger({ group, "--help" }, { home = home })
  t.eq(r.code, 0, r.stderr)
  local out = {}
  for line in r.stdout:gmatch("[^\n]+") do
    local cmd = line:match("^  " .. group .. " (%S+)%s%s")
    if cmd then
      out[#out + 1] = cmd
    end
  end
  return out
end

-- The long flags `banger <command> --help` lists, --[no-]x as both.
local function help_flags(home, argv)
  local with_help = table.move(argv, 1, #argv, 1, {})
  with_help[#with_help + 1] = "--help"
  local r = t.banger(with_help, { home = home })
  t.eq(r.code, 0, r.stderr)
  local out = {}
  local in_flags = false
  for line in r.stdout:gmatch("[^\n]*") do
    if line == "Flags:" then
      in_flags = true
    elseif in_flags and line == "" then
      in_flags = false
    elseif in_flags and not line:match("^          ") then  -- (a help continued on its own line)
      local tristate, name = line:match("^  [- %w,]-%-%-(%[no%-%])([%w-]+)")
      name = name or line:match("^  [- %w,]-%-%-([%w-]+)")
      if tristate then
        out[#out + 1] = "--no-" .. name
      end
      out[#out + 1] = "--" .. name
    end
  end
  return out
end

local function tree(dir)
  return banger.proc.run({ "find", dir, "-printf", "%P %s %T@\n" }).stdout
end

describe("banger completion", function()
  it("bash: `vm st` completes to exactly the vm commands beginning with st", function()
    local home = t.tmpdir()
    local want = {}
    for _, c in ipairs(group_commands(home, "vm")) do
      if c:sub(1, 2) == "st" then
        want[#want + 1] = c
      end
    end
    t.truthy(#want >= 2, "vm has start and stop")
    local got = bash_complete(home, { "vm", "st" })
    t.eq(sorted(got), sorted(want))
    local has = {}
    for _, c in ipairs(got) do
      has[c] = true
    end
    t.truthy(has.start and has.stop, "start and stop are offered")
    -- the top level: groups, commands and banger's own words
    local top = {}
    for _, c in ipairs(bash_complete(home, { "" })) do
      top[c] = true
    end
    for _, c in ipairs({ "vm", "image", "kernel", "snapshot", "completion", "help", "run", "version" }) do
      t.truthy(top[c], "top level offers " .. c)
    end
    t.eq(bash_complete(home, { "image", "cache", "" }), { "prune" })
    t.eq(bash_complete(home, { "help", "vm", "sto" }), { "stop" })
  end)

  it("bash: the flags of `vm create --` are exactly those its help lists", function()
    local home = t.tmpdir()
    local want = help_flags(home, { "vm", "create" })
    t.truthy(#want > 10, "vm create has its flags")
    t.eq(sorted(bash_complete(home, { "vm", "create", "--" })), sorted(want))
    t.eq(bash_complete(home, { "vm", "create", "--dri" }), { "--driver" })
    -- a flag's choices, after a space and after '=' (readline splits at '=')
    t.eq(bash_complete(home, { "vm", "create", "--driver", "" }), { "auto", "qemu", "firecracker" })
    t.eq(bash_complete(home, { "vm", "create", "--driver", "=", "q" }), { "qemu" })
    t.eq(bash_complete(home, { "completion", "" }), { "bash", "zsh", "fish" })
    -- the callback shows a value's placeholder with the flag
    local r = t.banger({ "__complete", "--", "vm", "create", "--mem" }, { home = home })
    t.eq(r.stdout, "--memory\tSIZE: memory, e.g. 2GiB\n")
    -- an alias finds the command; a flag already given is not offered again
    t.eq(sorted(bash_complete(home, { "vm", "ls", "--" })), sorted(help_flags(home, { "vm", "list" })))
    local again = bash_complete(home, { "vm", "list", "--json", "--" })
    t.falsy(table.concat(again, " "):find("--json", 1, true), "--json offered twice")
  end)

  it("bash: names of VMs, images and kernels from the state store", function()
    local home = e2e.home()
    for _, name in ipairs({ "box1", "box2", "other" }) do
      local r = t.banger({ "vm", "create", "--no-start", "--image", "tiny", name }, { home = home })
      t.eq(r.code, 0, r.stderr)
    end
    t.eq(bash_complete(home, { "vm", "start", "" }), { "box1", "box2", "other" })
    t.eq(bash_complete(home, { "vm", "start", "bo" }), { "box1", "box2" })
    t.eq(bash_complete(home, { "vm", "delete", "box1", "o" }), { "other" }, "every argument of delete is a VM")
    t.eq(bash_complete(home, { "vm", "start", "box1", "" }), {}, "start takes one VM")
    t.eq(bash_complete(home, { "vm", "exec", "ot" }), { "other" })
    t.eq(bash_complete(home, { "vm", "create", "--image", "" }), { "tiny" })
    t.eq(bash_complete(home, { "vm", "create", "--kernel", "deb" }), { "debian-cloud" })
    t.eq(bash_complete(home, { "image", "show", "" }), { "tiny" })
    t.eq(bash_complete(home, { "kernel", "delete", "" }), { "debian-cloud" })
    t.eq(bash_complete(home, { "snapshot", "show", "" }), {}, "no snapshots yet")
    -- reading names touches nothing in the state directory
    local before = tree(home .. "/.local/state")
    t.eq(callback(home, { "vm", "stop", "" }), { "box1", "box2", "other" })
    t.eq(tree(home .. "/.local/state"), before, "the state directory is unchanged")
    -- a new VM is there at the next Tab; a deleted one is gone
    t.eq(t.banger({ "vm", "delete", "box2" }, { home = home }).code, 0)
    t.eq(bash_complete(home, { "vm", "start", "bo" }), { "box1" })
    -- the same through zsh's and fish's scripts
    t.eq(zsh_complete(home, { "vm", "start", "" }), { "box1", "other" })
    t.eq(fish_complete(home, { "vm", "start", "" }), { "box1", "other" })
  end)

  it("zsh and fish scripts parse and give the callback's candidates", function()
    local home = t.tmpdir()
    local zsh_script = home .. "/banger.zsh"
    local fish_script = home .. "/banger.fish"
    t.write(zsh_script, run_shell(home, { t.bin(), "completion", "zsh" }))
    t.write(fish_script, run_shell(home, { t.bin(), "completion", "fish" }))
    run_shell(home, { "zsh", "-n", zsh_script })
    run_shell(home, { "fish", "--no-config", "-n", fish_script })
    run_shell(home, { "bash", "-n", "-c", run_shell(home, { t.bin(), "completion", "bash" }) })
    for _, words in ipairs({ { "vm", "st" }, { "vm", "create", "--dr" }, { "" }, { "image", "cache", "" },
      { "vm", "create", "--driver=q" } }) do
      local want = callback(home, words)
      t.truthy(#want > 0, table.concat(words, " "))
      t.eq(zsh_complete(home, words), want, "zsh: " .. table.concat(words, " "))
      t.eq(fish_complete(home, words), want, "fish: " .. table.concat(words, " "))
    end
    -- a path argument: each shell completes files itself
    t.eq(callback(home, { "trust", "" }), { ":directory" })
    t.eq(zsh_complete(home, { "trust", "" }), { ":file -/" })
    banger.fs.mkdir(home .. "/projdir", 493)
    t.eq(fish_complete(home, { "trust", "proj" }), { "projdir/" })
    t.eq(bash_complete(home, { "trust", "proj" }), { "projdir" })
  end)

  it("the callback creates nothing in an empty home, reads no config, never writes stderr", function()
    local home = t.tmpdir()
    t.env(home)
    -- a config that fails every command: completion does not read it
    t.write(home .. "/.config/banger/config.lua", "return { nosuchkey = 1 }\n")
    local before = tree(home)
    for _, words in ipairs({ { "vm", "start", "" }, { "vm", "create", "--image", "" }, { "kernel", "show", "" },
      { "snapshot", "delete", "" }, { "vm", "st" }, { "nosuch", "" }, { "vm", "start", "--bogus", "" } }) do
      callback(home, words)
    end
    t.eq(callback(home, { "vm", "st" }), sorted(callback(home, { "vm", "st" })))
    t.eq(tree(home), before, "no file was created")
    t.falsy(banger.fs.exists(home .. "/.local/state/banger/banger.db"))
    -- a damaged store: no candidates, no noise
    t.write(home .. "/.local/state/banger/banger.db", "not a database")
    t.eq(callback(home, { "vm", "start", "" }), {})
    t.eq(bash_complete(home, { "vm", "start", "" }), {})
    t.eq(t.read(home .. "/.local/state/banger/banger.db"), "not a database")
  end)

  it("user recipes are completed; an untrusted project's are neither listed nor loaded", function()
    local home = t.tmpdir()
    t.env(home)
    t.write(home .. "/.config/banger/recipes/vm/hello.lua", [[
return { summary = "say hello", flags = { { "shout", type = "boolean", help = "loudly" } },
  args = { { "vm", complete = "vm" } }, run = function() end }
]])
    t.eq(bash_complete(home, { "vm", "hel" }), { "hello" })
    t.eq(bash_complete(home, { "vm", "hello", "--sh" }), { "--shout" })
    -- a project whose recipe would leave a mark if it ran
    local proj = home .. "/proj"
    banger.proc.run({ "git", "init", "-q", proj })
    local marker = home .. "/ran"
    t.write(proj .. "/.banger/recipes/vm/evil.lua", "io.open(" .. string.format("%q", marker)
      .. ", 'w'):close()\nreturn { summary = 'evil', flags = { { 'evil-flag' } }, run = function() end }\n")
    local function in_project(words)
      local argv = { "bash", "-c", "cd proj || exit 5\n" .. bash_driver, "bash" }
      table.move(words, 1, #words, #argv + 1, argv)
      return lines(run_shell(home, argv))
    end
    t.eq(in_project({ "vm", "ev" }), {}, "the untrusted project's command is not offered")
    t.eq(in_project({ "vm", "evil", "--" }), {}, "nor its flags")
    t.falsy(banger.fs.exists(marker), "the untrusted project's code did not run")
    t.eq(in_project({ "vm", "hel" }), { "hello" })
    -- trusted, it is listed exactly as `banger help` lists it
    t.eq(t.banger({ "trust", proj }, { home = home }).code, 0)
    t.eq(in_project({ "vm", "ev" }), { "evil" })
    t.eq(in_project({ "--no-project", "vm", "ev" }), {}, "--no-project ignores it")
  end)
end)
