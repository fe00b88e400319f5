-- GET /v1/sandboxes/{id}/files?path=P: the file's bytes, streamed.
local sandbox = require("banger.sandbox")
return function(req, res)
  local headers = { ["Content-Type"] = "application/octet-stream" }
  sandbox.read_file(req.params.id, req.query.path or "", {
    max_bytes = req.limits.max_file_bytes,
    on_data = function(chunk)
      if not res.sent then
        res.head(200, headers)
      end
      res.write(chunk)
    end,
  })
  if not res.sent then
    res.head(200, headers)  -- an empty file
  end
end
