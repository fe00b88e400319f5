-- GET /v1/sandboxes: every sandbox (banger VM), newest last.
local json = require("banger.native.json")
return function(_, res)
  res.json(200, { sandboxes = json.array(require("banger.sandbox").list({})) })
end
