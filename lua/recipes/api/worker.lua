-- banger api worker: serves one request of `banger serve` (started by it;
-- reads the request on stdin, writes the response on stdout). Not for
-- people: docs/api.md, "How requests are served".
return {
  summary = "serve one HTTP API request (started by 'banger serve')",
  reconcile = false,
  run = function()
    return banger.api.run_worker() and 0 or 1
  end,
}
