-- POST /v1/sandboxes/{id}/snapshot, body {"name"?}: 201 with the snapshot.
local sandbox = require("banger.sandbox")
return function(req, res)
  local body = req.json()
  res.json(201, sandbox.snapshot(req.params.id, { name = body.name }))
end
