-- GET /v1/sandboxes/{id}
return function(req, res)
  res.json(200, require("banger.sandbox").get(req.params.id))
end
