-- banger vm exec NAME -- CMD...: run a command in a running VM through its
-- agent; its output streams here and its exit code becomes banger's.
return {
  summary = "run a command in a running VM",
  args = {
    { "name", required = true, complete = "vm", help = "VM name" },
    { "command", rest = true, required = true, help = "the command and its arguments" },
  },
  flags = {
    { "env", short = "e", type = "list", help = "KEY=VALUE for the command's environment" },
    { "cwd", type = "string", help = "working directory in the guest (default /root)" },
    { "stdin", type = "boolean", help = "forward our standard input to the command" },
  },
  run = function(opts)
    local row = banger.vms.require(opts.name)
    local input = opts.stdin and io.stdin:read("a") or nil
    local r = banger.guest.exec(row, opts.command, { env = opts.env, cwd = opts.cwd, stdin = input })
    if r.interrupted then
      banger.errors.interrupted()
    end
    return r.code
  end,
}
