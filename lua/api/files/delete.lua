-- DELETE /v1/sandboxes/{id}/files?path=P[&recursive=1]
local sandbox = require("banger.sandbox")
return function(req, res)
  local recursive = req.query.recursive == "1" or req.query.recursive == "true"
  sandbox.remove_file(req.params.id, req.query.path or "", { recursive = recursive })
  res.json(200, { removed = true })
end
