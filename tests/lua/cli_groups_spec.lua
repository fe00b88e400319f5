-- Command groups (`banger vm`, `banger image cache`, ...) list their
-- commands; `remove` is an alias of `delete` like `rm`.

-- The "  <command>  <summary>" lines of a listing, keyed by command.
local function command_lines(text)
  local out = {}
  for line in text:gmatch("[^\n]+") do
    local cmd = line:match("^  (%S.-%S)%s%s+")
    if cmd then
      out[cmd] = line
    end
  end
  return out
end

-- Every group `banger help` shows: each prefix of a command of two or
-- more words ("vm", "image", "image cache").
local function groups_of(help_text)
  local groups = {}
  for cmd in pairs(command_lines(help_text)) do
    if cmd:find("[%[A-Z]") then -- "run SCRIPT.lua", "help [command]": not recipes
      goto continue
    end
    local words = {}
    for w in cmd:gmatch("%S+") do
      words[#words + 1] = w
    end
    for i = 1, #words - 1 do
      groups[table.concat(words, " ", 1, i)] = true
    end
    ::continue::
  end
  return groups
end

local function split(s)
  local out = {}
  for w in s:gmatch("%S+") do
    out[#out + 1] = w
  end
  return out
end

describe("command groups", function()
  it("<group> --help lists the group's commands exactly as banger help does, exit 0", function()
    local home = t.tmpdir()
    local help = t.banger({ "help" }, { home = home })
    t.eq(help.code, 0, help.stderr)
    local all = command_lines(help.stdout)
    local groups = groups_of(help.stdout)
    for _, g in ipairs({ "vm", "image", "kernel", "ssh-config", "snapshot", "dns", "system", "image cache",
      "vm workspace" }) do
      t.truthy(groups[g], "banger help shows group " .. g)
    end
    for group in pairs(groups) do
      local argv = split(group)
      argv[#argv + 1] = "--help"
      local r = t.banger(argv, { home = home })
      t.eq(r.code, 0, group .. ": " .. r.stderr)
      t.eq(r.stderr, "", group)
      t.contains(r.stdout, "Usage: banger " .. group .. " <command>", group)
      local listed = command_lines(r.stdout)
      local n = 0
      for cmd, line in pairs(all) do
        if cmd:sub(1, #group + 1) == group .. " " then
          t.eq(listed[cmd], line, group .. ": " .. cmd)
          n = n + 1
        end
      end
      local m = 0
      for _ in pairs(listed) do
        m = m + 1
      end
      t.eq(m, n, group .. " lists only its own commands")
      t.truthy(n > 0, group)
    end
  end)

  it("-h and banger help <group> print the same list", function()
    local home = t.tmpdir()
    local long = t.banger({ "vm", "--help" }, { home = home })
    t.contains(long.stdout, "vm create")
    t.contains(long.stdout, "vm delete")
    t.not_contains(long.stdout, "image pull")
    t.eq(t.banger({ "vm", "-h" }, { home = home }).stdout, long.stdout)
    local h = t.banger({ "help", "vm" }, { home = home })
    t.eq(h.code, 0)
    t.eq(h.stdout, long.stdout)
    local nested = t.banger({ "help", "image", "cache" }, { home = home })
    t.eq(nested.code, 0)
    t.eq(nested.stdout, t.banger({ "image", "cache", "--help" }, { home = home }).stdout)
  end)

  it("a bare group is an incomplete command: the list on stderr, exit 2", function()
    local home = t.tmpdir()
    local listing = t.banger({ "kernel", "--help" }, { home = home }).stdout
    local r = t.banger({ "kernel" }, { home = home })
    t.eq(r.code, 2)
    t.eq(r.stdout, "")
    t.eq(r.stderr, listing)
    local nested = t.banger({ "image", "cache" }, { home = home })
    t.eq(nested.code, 2)
    t.contains(nested.stderr, "Usage: banger image cache <command>")
  end)

  it("an unknown command in a group names the group's help; a flag instead of a command is a usage error", function()
    local home = t.tmpdir()
    local r = t.banger({ "vm", "nosuch", "x" }, { home = home })
    t.eq(r.code, 2)
    t.eq(r.stdout, "")
    t.eq(r.stderr, "banger: unknown command 'vm nosuch' (see 'banger vm --help')\n")
    local f = t.banger({ "ssh-config", "--json" }, { home = home })
    t.eq(f.code, 2)
    t.eq(f.stderr, "banger: 'banger ssh-config' is a group of commands: name one before --json"
      .. " (see 'banger ssh-config --help')\n")
    local h = t.banger({ "help", "vm", "nosuch" }, { home = home })
    t.eq(h.code, 2)
    t.eq(h.stderr, "banger: unknown command 'vm nosuch' (see 'banger vm --help')\n")
    t.eq(t.banger({ "nosuch" }, { home = home }).stderr, "banger: unknown command 'nosuch' (see 'banger help')\n")
  end)

  it("lists a trusted project's and the user's recipes with their origin, not an untrusted project's", function()
    local home = t.tmpdir()
    local project = home .. "/project"
    t.write(project .. "/.banger/recipes/vm/hello.lua", 'return { summary = "say hello from the project", run = function() end }\n')
    t.write(project .. "/.banger/recipes/vm/list.lua", 'return { summary = "list VMs (project)", run = function() end }\n')
    t.write(home .. "/.config/banger/recipes/vm/wave.lua", 'return { summary = "wave from the user", run = function() end }\n')
    t.write(home .. "/.config/banger/recipes/greet/hi.lua", 'return { summary = "say hi", run = function() end }\n')

    local untrusted = t.banger({ "vm", "--help" }, { home = home, cwd = project })
    t.eq(untrusted.code, 0, untrusted.stderr)
    t.not_contains(untrusted.stdout, "vm hello")
    t.not_contains(untrusted.stdout, "(project)")
    t.contains(untrusted.stdout, "wave from the user [user]")
    t.contains(untrusted.stdout, "note: this project's recipes in " .. project .. "/.banger/recipes are ignored")

    t.eq(t.banger({ "trust" }, { home = home, cwd = project }).code, 0)
    local trusted = t.banger({ "vm", "--help" }, { home = home, cwd = project })
    local lines = command_lines(trusted.stdout)
    t.contains(lines["vm hello"], "say hello from the project [project]")
    t.contains(lines["vm list"], "list VMs (project) [project]")
    t.contains(lines["vm wave"], "wave from the user [user]")
    local help = command_lines(t.banger({ "help" }, { home = home, cwd = project }).stdout)
    for _, cmd in ipairs({ "vm hello", "vm list", "vm wave" }) do
      t.eq(lines[cmd], help[cmd], cmd)
    end

    local greet = t.banger({ "greet" }, { home = home })
    t.eq(greet.code, 2)
    t.contains(greet.stderr, "greet hi")
    t.contains(greet.stderr, "say hi [user]")
  end)
end)

describe("aliases", function()
  it("remove, rm and delete are the same command in every group that has delete", function()
    local home = t.tmpdir()
    local n = 0
    for cmd in pairs(command_lines(t.banger({ "help" }, { home = home }).stdout)) do
      local group = cmd:match("^(.*) delete$")
      if group then
        n = n + 1
        local function help_of(word)
          local argv = split(group)
          argv[#argv + 1] = word
          argv[#argv + 1] = "--help"
          local r = t.banger(argv, { home = home })
          t.eq(r.code, 0, cmd .. " " .. word .. ": " .. r.stderr)
          return r.stdout
        end
        local delete = help_of("delete")
        t.contains(delete, "Usage: banger " .. group .. " delete")
        t.eq(help_of("remove"), delete, group .. " remove")
        t.eq(help_of("rm"), delete, group .. " rm")
      end
    end
    for _, g in ipairs({ "vm", "image", "kernel", "snapshot" }) do
      t.truthy(t.banger({ g, "delete", "--help" }, { home = home }).code == 0, g .. " has delete")
    end
    t.truthy(n >= 4, "groups with delete: " .. n)
  end)

  it("image remove deletes an image", function()
    local home = t.tmpdir()
    local src = t.tmpdir()
    t.write(src .. "/etc/os-release", "ID=test\n")
    local tgz = home .. "/layer.tgz"
    t.eq(banger.proc.run({ "tar", "-C", src, "--owner=0", "--group=0", "-czf", tgz, "." }).code, 0)
    t.eq(t.banger({ "image", "import", "--name", "img1", tgz }, { home = home }).code, 0)
    t.eq(#banger.json.decode(t.banger({ "image", "list", "--json" }, { home = home }).stdout), 1)
    local r = t.banger({ "image", "remove", "img1" }, { home = home })
    t.eq(r.code, 0, r.stderr)
    t.eq(t.banger({ "image", "list", "--json" }, { home = home }).stdout, "[]\n")
    t.eq(banger.fs.list(home .. "/.local/state/banger/images"), {})
  end)

  it("banger help names the aliases", function()
    t.contains(t.banger({ "help" }).stdout, "rm and remove = delete")
  end)
end)
