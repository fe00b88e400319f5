--- banger.recipes: finding and loading recipes.
--
-- A command's words map to a file: `banger image cache prune` is
-- image/cache/prune.lua. Roots are searched in order and the first file
-- found wins, so a project or a user overrides a bundled recipe by placing
-- a file at the same relative path:
--   1. ./.banger/recipes/            (the project)
--   2. $XDG_CONFIG_HOME/banger/recipes/  (the user)
--   3. <banger's lua dir>/recipes/   (bundled)
local errors = require("banger.errors")
local fs = require("banger.native.fs")
local paths = require("banger.native.paths")
local sys = require("banger.native.sys")

local M = {}

-- Short aliases accepted for any command's last word.
M.aliases = { ls = "list", rm = "delete" }

function M.roots()
  return {
    { kind = "project", dir = (fs.cwd() or ".") .. "/.banger/recipes" },
    { kind = "user", dir = paths.resolve().config .. "/recipes" },
    { kind = "bundled", dir = sys.lua_dir() .. "/recipes" },
  }
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
    if is_file(p) then
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

--- Loads a recipe file and checks its shape.
function M.load(path)
  local chunk, err = loadfile(path, "t", M.environment())
  if not chunk then
    errors.raise("ESYNTAX", err)
  end
  local recipe = chunk()
  if type(recipe) ~= "table" or type(recipe.run) ~= "function" then
    errors.raise("EINVAL", path .. ": a recipe must return a table with a run function")
  end
  return recipe
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
        if not seen[cmd] then
          seen[cmd] = true
          out[#out + 1] = { command = (cmd:gsub("/", " ")), path = dir .. "/" .. n, kind = root.kind }
        end
      elseif is_dir(dir .. "/" .. n) and valid_word(n) then
        walk(root, sub)
      end
    end
  end
  for _, r in ipairs(roots) do
    walk(r, "")
  end
  table.sort(out, function(a, b)
    return a.command < b.command
  end)
  return out
end

return M
