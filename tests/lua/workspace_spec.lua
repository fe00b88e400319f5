-- Which files `vm run` copies: tracked ones by default, untracked
-- non-ignored ones on request, ignored ones never.
local function repo()
  local dir = t.tmpdir() .. "/proj"
  local function git(...)
    local r = banger.proc.run({ "git", "-C", dir, ... })
    t.eq(r.code, 0, r.stderr)
  end
  banger.fs.mkdir(dir, 493, true)
  git("init", "-q")
  git("config", "user.email", "t@example.com")
  git("config", "user.name", "t")
  t.write(dir .. "/tracked.txt", "t\n")
  t.write(dir .. "/src/main.c", "int main(void) { return 0; }\n")
  t.write(dir .. "/.gitignore", "*.log\nbuild/\n")
  git("add", ".")
  git("commit", "-q", "-m", "init")
  t.write(dir .. "/notes.md", "untracked\n")
  t.write(dir .. "/debug.log", "ignored\n")
  t.write(dir .. "/build/out.o", "ignored\n")
  return dir
end

describe("vm run --dry-run", function()
  it("lists exactly the tracked files and says what it skipped", function()
    local dir = repo()
    local r = t.banger({ "vm", "run", "--dry-run" }, { cwd = dir })
    t.eq(r.code, 0, r.stderr)
    t.eq(r.stdout, ".gitignore\nsrc/main.c\ntracked.txt\n")
    -- an empty home: the dry run also says that the real run builds the default image
    t.eq(r.stderr, "image: no default image yet; the run builds it first\n"
      .. "note: 1 untracked file(s) not copied (add --include-untracked to copy them)\n")
  end)

  it("adds untracked files that are not ignored", function()
    local dir = repo()
    local r = t.banger({ "vm", "run", "--dry-run", "--include-untracked" }, { cwd = dir })
    t.eq(r.code, 0, r.stderr)
    t.eq(r.stdout, ".gitignore\nnotes.md\nsrc/main.c\ntracked.txt\n")
    t.not_contains(r.stdout, "debug.log")
    t.not_contains(r.stdout, "build/")
    t.eq(r.stderr, "image: no default image yet; the run builds it first\n")
  end)

  it("works from a subdirectory and creates no VM", function()
    local dir = repo()
    local home = t.tmpdir()
    local r = t.banger({ "vm", "run", "--dry-run" }, { cwd = dir .. "/src", home = home })
    t.eq(r.stdout, ".gitignore\nsrc/main.c\ntracked.txt\n")
    t.eq(t.banger({ "vm", "list", "--json" }, { home = home }).stdout, "[]\n")
  end)

  it("outside a repository there is nothing to copy", function()
    local r = t.banger({ "vm", "run", "--dry-run" }, { cwd = t.tmpdir() })
    t.eq(r.code, 0)
    t.eq(r.stdout, "")
    t.contains(r.stderr, "not inside a git repository")
  end)
end)
