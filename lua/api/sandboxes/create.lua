-- POST /v1/sandboxes: a JSON body of options, or (Content-Type:
-- application/x-tar) a workspace tar with the options in the query string.
-- Creates and starts the sandbox; 201 with its record.
local errors = require("banger.errors")
local fs = require("banger.native.fs")
local sandbox = require("banger.sandbox")

local function from_query(q)
  local o = { name = q.name, image = q.image, snapshot = q.snapshot, kernel = q.kernel, memory = q.memory }
  o.vcpus = q.vcpus and tonumber(q.vcpus)
  if q.vcpus and not o.vcpus then
    errors.raise("EINVAL", "vcpus must be a number")
  end
  if q.nat then
    o.nat = q.nat == "1" or q.nat == "true"
  end
  if q.allow_hosts and q.allow_hosts ~= "" then
    o.allow_hosts = {}
    for h in q.allow_hosts:gmatch("[^,]+") do
      o.allow_hosts[#o.allow_hosts + 1] = h
    end
  end
  return o
end

local allowed = { name = true, image = true, snapshot = true, kernel = true, vcpus = true, memory = true, nat = true,
  allow_hosts = true }

return function(req, res)
  require("banger.api").check_sandbox_limit(req)
  local ctype = (req.headers["content-type"] or ""):match("^[^;]*")
  local opts, tmp
  if ctype == "application/x-tar" then
    opts = from_query(req.query)
    tmp = errors.check(fs.mkdtemp())
    local path = tmp .. "/workspace.tar"
    local f = assert(io.open(path, "wb"))
    for chunk in req.read do
      f:write(chunk)
    end
    f:close()
    opts.workspace_tar = path
  else
    opts = req.json()
    for k in pairs(opts) do
      if not allowed[k] then
        errors.raise("EINVAL", "unknown option '" .. tostring(k) .. "'")
      end
    end
  end
  opts.owner = req.caller
  local ok, record = pcall(sandbox.create, opts)
  if tmp then
    fs.remove_tree(tmp)
  end
  if not ok then
    error(record, 0)
  end
  res.json(201, record)
end
