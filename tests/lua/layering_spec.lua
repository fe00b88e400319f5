-- The layering rules of docs/architecture.md ("Layers"), checked against
-- the bundled Lua so they cannot quietly erode: recipes hold no SQL, the
-- stdlib never runs a recipe, and each table is written by one module.
local root = t.source_dir() .. "/lua"

local function lua_files(dir, out)
  out = out or {}
  for _, name in ipairs(banger.fs.list(dir) or {}) do
    local path = dir .. "/" .. name
    if banger.fs.stat(path).type == "directory" then
      lua_files(path, out)
    elseif name:match("%.lua$") then
      out[#out + 1] = path
    end
  end
  table.sort(out)
  return out
end

-- The file's code without its comment lines (a comment may name SQL).
local function code(path)
  local lines = {}
  for line in (t.read(path) .. "\n"):gmatch("([^\n]*)\n") do
    if not line:match("^%s*%-%-") then
      lines[#lines + 1] = line
    end
  end
  return table.concat(lines, "\n")
end

-- The tables `text` writes: INSERT [OR x] INTO t, UPDATE t SET, DELETE FROM t.
local function tables_written(text)
  local up, found = text:upper(), {}
  for _, pattern in ipairs({ "INSERT%s+INTO%s+([%w_]+)", "INSERT%s+OR%s+%u+%s+INTO%s+([%w_]+)",
    "UPDATE%s+([%w_]+)%s+SET", "DELETE%s+FROM%s+([%w_]+)" }) do
    for name in up:gmatch(pattern) do
      found[name:lower()] = true
    end
  end
  return found
end

describe("layering", function()
  it("the checks see what they look for", function()
    t.eq(tables_written("db:exec('insert or ignore into snapshot_users (a) values (1)')"), { snapshot_users = true })
    t.eq(tables_written([[UPDATE vms SET x = 1; DELETE FROM images WHERE 1]]), { vms = true, images = true })
    t.truthy(#lua_files(root .. "/recipes") > 40)
  end)

  it("recipes hold no SQL and open no database", function()
    for _, path in ipairs(lua_files(root .. "/recipes")) do
      local text = code(path)
      for _, needle in ipairs({ "db()", "transaction(", "store.open", ":query(" }) do
        t.falsy(text:find(needle, 1, true), path .. " uses " .. needle .. " (move it into the stdlib module that owns the rows)")
      end
      t.eq(tables_written(text), {}, path .. " writes rows")
      t.falsy(text:upper():find("SELECT%s[^\n]*%sFROM%s"), path .. " holds a query")
    end
  end)

  it("the stdlib never runs a recipe (only the dispatcher, and completion reading their flags, find them)", function()
    for _, path in ipairs(lua_files(root .. "/stdlib")) do
      local name = path:match("([^/]+)%.lua$")
      if name ~= "main" and name ~= "recipes" and name ~= "complete" then
        local text = code(path)
        t.falsy(text:find("banger.recipes", 1, true), path .. " uses banger.recipes")
      end
    end
  end)

  it("each table has one writer", function()
    local owner = { vms = "vms", images = "images", snapshots = "snapshots", snapshot_users = "snapshots",
      forwards = "forwards" }
    local writers = {}
    for _, path in ipairs(lua_files(root .. "/stdlib")) do
      local module = path:match("([^/]+)%.lua$")
      for tbl in pairs(tables_written(code(path))) do
        t.eq(owner[tbl], module, path .. " writes table " .. tbl)
        writers[tbl] = true
      end
    end
    t.eq(writers, { vms = true, images = true, snapshots = true, snapshot_users = true, forwards = true })
  end)
end)
