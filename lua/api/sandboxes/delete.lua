-- DELETE /v1/sandboxes/{id}
return function(req, res)
  require("banger.sandbox").delete(req.params.id)
  res.json(200, { deleted = true, id = req.params.id })
end
