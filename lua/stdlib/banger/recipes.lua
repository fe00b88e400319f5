--- banger.recipes: finding and loading recipes.
--
-- A command's words map to a file: `banger image cache prune` is
-- image/cache/prune.lua. Roots are searched in order and the first file
-- found wins, so a project or a user overrides a bundled recipe by placing
-- a file at the same relative path:
--   1. <project>/.banger/recipes/        (the project: the nearest directory
--      with .banger/ or banger.lua, up to the git repository's root)
--   2. $XDG_CONFIG_HOME/banger/recipes/  (the user)
--   3. <banger's lua dir>/recipes/       (bundled)
-- A project's recipes load only once the user trusted the project
-- (banger.trust); the user's only when no one else can write them.
-- An overriding recipe gets the one it replaces with M.super().
local errors = require("banger.errors")
local fs = require("banger.native.fs")
local paths = require("banger.native.paths")
local sys = require("banger.native.sys")
local trust = require("banger.trust")

local M = {}

-- Aliases accepted for any command's last word.
M.aliases = { ls = "list", rm = "delete", remove = "delete", ping = "health" }

-- Commands no project or user recipe may replace: the way out of an
-- untrusted or broken override must always be the bundled one.
M.reserved = { trust = true }

local roots
function M.roots()
  if not roots then
    roots = {}
    local project = trust.find_root()
    if project then
      roots[#roots + 1] = { kind = "project", project = project, dir = project .. "/" .. trust.code_dir .. "/recipes" }
    end
    local config = paths.resolve().config
    roots[#roots + 1] = { kind = "user", top = config:match("^(.*)/[^/]+$") or config, dir = config .. "/recipes" }
    roots[#roots + 1] = { kind = "bundled", dir = sys.lua_dir() .. "/recipes" }
  end
  return roots
end

local function root_of(path)
  for _, r in ipairs(M.roots()) do
    if path:sub(1, #r.dir + 1) == r.dir .. "/" then
      return r
    end
  end
end

--- Why a root's recipes are not used right now, or nil when they are:
-- an untrusted project, a user directory others can write.
function M.ignored(root)
  if not fs.exists(root.dir) then
    return nil
  end
  if root.kind == "project" and not trust.is_trusted(root.project) then
    return "this project's recipes in " .. root.dir .. " are ignored until you trust them ('banger trust')"
  end
  if root.kind == "user" then
    local why = trust.unsafe_path(root.top, root.dir)
    if why then
      return "your recipes in " .. root.dir .. " are ignored: " .. why
    end
  end
end

local function is_file(p)
  local st = fs.stat(p)
  return st and st.type == "file"
end

local function is_dir(p)
  local st = fs.stat(p)
  return st and st.type == "directory"
end

local function find_file(roots, rel)
  for _, r in ipairs(roots) do
    local p = r.dir .. "/" .. rel .. ".lua"
    if (r.kind == "bundled" or not M.reserved[rel]) and is_file(p) then
      return p, r.kind
    end
  end
end

local function any_dir(roots, rel)
  for _, r in ipairs(roots) do
    if is_dir(r.dir .. "/" .. rel) then
      return true
    end
  end
  return false
end

local function valid_word(w)
  return w:match("^[%w][%w_-]*$") ~= nil
end

--- Resolves the longest command prefix of `words` to a recipe file.
-- Returns { path, kind, command = "vm list", consumed = n } or nil.
function M.resolve(words)
  local roots = M.roots()
  local best
  local rel = nil
  for i, w in ipairs(words) do
    if not valid_word(w) then
      break
    end
    local base = rel and (rel .. "/") or ""
    local candidate = base .. w
    local path, kind = find_file(roots, candidate)
    if not path and M.aliases[w] then
      candidate = base .. M.aliases[w]
      path, kind = find_file(roots, candidate)
    end
    if path then
      best = { path = path, kind = kind, command = candidate:gsub("/", " "), consumed = i }
    end
    if not any_dir(roots, candidate) then
      break
    end
    rel = candidate
  end
  return best
end

--- A fresh environment for a recipe or script: reads fall through to the
-- globals, writes stay in the recipe, so recipes cannot leak globals into
-- each other. `banger` is always there.
function M.environment()
  local env = { banger = require("banger") }
  return setmetatable(env, { __index = _G })
end

-- The text of a recipe, read only if its root may be used: a project's
-- from the bytes checked against the trusted manifest, a user's after the
-- ownership check.
local function recipe_text(path)
  local root = root_of(path)
  if root and root.kind == "project" then
    return trust.read(root.project, path:sub(#root.project + 2))
  end
  if root and root.kind == "user" then
    local why = trust.unsafe_path(root.top, path)
    if why then
      errors.raise("EUNSAFE", "refusing your recipe " .. path .. ": " .. why, { exit = 77 })
    end
  end
  return errors.check(fs.read(path))
end

-- The recipe files being loaded, innermost last: what super() is asked
-- from. Only set while a file's top level runs.
local loading = {}

--- Loads a recipe file and checks its shape.
function M.load(path)
  local chunk, err = load(recipe_text(path), "@" .. path, "t", M.environment())
  if not chunk then
    errors.raise("ESYNTAX", err)
  end
  local recipe
  do
    loading[#loading + 1] = path
    local pop <close> = setmetatable({}, { __close = function() table.remove(loading) end })
    recipe = chunk()
  end
  if type(recipe) ~= "table" or type(recipe.run) ~= "function" then
    errors.raise("EINVAL", path .. ": a recipe must return a table with a run function")
  end
  return recipe
end

--- The recipe the one now loading overrides: the same command in the
-- next root down (a project's: the user's, else the bundled one; a
-- user's: the bundled one), loaded under the same rules as any recipe
-- (a user's directory others can write is refused). Call it at the top
-- of an overriding recipe; its `run(opts, ctx)` is the replaced command.
function M.super()
  local path = loading[#loading]
  local root = path and root_of(path)
  if not root then
    errors.raise("EINVAL", "banger.recipes.super() is called at the top of a recipe file in a recipe directory, "
      .. "while that file loads")
  end
  local rel = path:sub(#root.dir + 2, -5)
  local below = {}
  local seen = false
  for _, r in ipairs(M.roots()) do
    if seen then
      below[#below + 1] = r
    end
    seen = seen or r == root
  end
  local found = find_file(below, rel)
  if not found then
    errors.raise("ENOENT", path .. ": banger.recipes.super(): no recipe '" .. rel:gsub("/", " ")
      .. "' below this one to override")
  end
  return M.load(found)
end

--- Every command reachable from the roots, first root winning per path:
-- a list of { command = "vm list", path = ..., kind = ... } sorted by command.
function M.all()
  local roots = M.roots()
  local seen, out = {}, {}
  local function walk(root, rel)
    local dir = root.dir .. (rel ~= "" and ("/" .. rel) or "")
    local names = fs.list(dir)
    if not names then
      return
    end
    for _, n in ipairs(names) do
      local sub = rel ~= "" and (rel .. "/" .. n) or n
      if n:sub(-4) == ".lua" and is_file(dir .. "/" .. n) then
        local cmd = sub:sub(1, -5)
        if not seen[cmd] and (root.kind == "bundled" or not M.reserved[cmd]) then
          seen[cmd] = true
          out[#out + 1] = { command = (cmd:gsub("/", " ")), path = dir .. "/" .. n, kind = root.kind }
        end
      elseif is_dir(dir .. "/" .. n) and valid_word(n) then
        walk(root, sub)
      end
    end
  end
  for _, r in ipairs(roots) do
    if not M.ignored(r) then
      walk(r, "")
    end
  end
  table.sort(out, function(a, b)
    return a.command < b.command
  end)
  return out
end

return M
