--- banger.images: the image store (rows in `images`, files under the state dir).
local errors = require("banger.errors")
local state = require("banger.state")

local M = {}

function M.dir()
  return state.layout().state .. "/images"
end

function M.get(name)
  return state.db():query("SELECT * FROM images WHERE name = ?", name)[1]
end

function M.default()
  return state.db():query("SELECT * FROM images WHERE is_default = 1")[1]
end

function M.require(name)
  local row = M.get(name)
  if not row then
    errors.raise("ENOENT", "no image named '" .. tostring(name) .. "' (see 'banger image list', 'banger image pull')")
  end
  return row
end

function M.list()
  return state.db():query("SELECT * FROM images ORDER BY name")
end

--- Records an image whose rootfs file is already in place.
function M.register(fields)
  local now = os.date("!%Y-%m-%dT%H:%M:%SZ")
  state.transaction(function(db)
    if fields.is_default then
      db:exec("UPDATE images SET is_default = 0 WHERE is_default = 1")
    end
    db:exec([[INSERT INTO images (name, source_ref, digest, size_bytes, rootfs_path, kernel, is_default, created_at)
              VALUES (?, ?, ?, ?, ?, ?, ?, ?)]],
      fields.name, fields.source_ref, fields.digest, fields.size_bytes or 0, fields.rootfs_path, fields.kernel,
      fields.is_default and 1 or 0, now)
  end)
  return M.get(fields.name)
end

return M
