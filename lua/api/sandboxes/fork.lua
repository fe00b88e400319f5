-- POST /v1/sandboxes/{id}/fork, body {"name"?}: 201 with the new sandbox.
local sandbox = require("banger.sandbox")
return function(req, res)
  require("banger.api").check_sandbox_limit(req)
  local body = req.json()
  res.json(201, sandbox.fork(req.params.id, { name = body.name, owner = req.caller }))
end
