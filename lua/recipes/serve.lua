-- banger serve: the HTTP API (docs/api.md) on <runtime dir>/api.sock, and
-- with --listen on a TCP address too (bearer token).
return {
  summary = "serve the HTTP API for programs: sandboxes, exec, files (docs/api.md)",
  flags = {
    { "listen", type = "string", metavar = "ADDR:PORT", help = "also listen on this TCP address (needs the bearer token)" },
    { "allow-remote", type = "boolean", help = "allow --listen on an address that is not loopback" },
    { "socket", type = "string", metavar = "PATH", help = "the Unix socket (default: <runtime dir>/api.sock)" },
  },
  run = function(opts)
    banger.api.serve({ listen = opts.listen, allow_remote = opts.allow_remote, socket = opts.socket })
  end,
}
