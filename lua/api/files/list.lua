-- GET /v1/sandboxes/{id}/files/list?path=DIR
local json = require("banger.native.json")
local sandbox = require("banger.sandbox")
return function(req, res)
  res.json(200, { entries = json.array(sandbox.list_files(req.params.id, req.query.path or "/root")) })
end
