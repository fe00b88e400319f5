-- MCP tool `exec`: runs a command in a sandbox and returns its output.
local json = banger.json
local mcp = banger.mcp

return {
  name = "exec",
  title = "Run a command",
  description = "Run a command in a sandbox as root and wait for it to finish. Give either 'command' (a "
    .. "shell command line, run with /bin/sh -c) or 'argv'. Returns the exit code, stdout and stderr; "
    .. "each output keeps its first and last bytes up to the server's limit, with a "
    .. "'[... N bytes truncated ...]' marker in between. A non-zero exit code is a result, not an error.",
  input_schema = {
    type = "object",
    properties = {
      sandbox = { type = "string", description = "the sandbox's name" },
      command = { type = "string", description = "shell command line, run with /bin/sh -c" },
      argv = { type = "array", items = { type = "string" }, description = "program and arguments, run without a shell" },
      stdin = { type = "string", description = "text given to the command's standard input" },
      cwd = { type = "string", description = "working directory (default: /root)" },
      env = { type = "object", additionalProperties = { type = "string" }, description = "extra environment variables" },
      timeout_ms = { type = "integer", minimum = 1, maximum = 86400000,
        description = "kill the command after this many milliseconds" },
    },
    required = { "sandbox" },
    additionalProperties = false,
  },
  annotations = { readOnlyHint = false, destructiveHint = true, openWorldHint = true },
  run = function(args, ctx)
    if (args.command == nil) == (args.argv == nil) then
      banger.errors.raise("EINVAL", "give exactly one of 'command' and 'argv'")
    end
    local argv = args.argv or { "/bin/sh", "-c", args.command }
    if #argv == 0 then
      banger.errors.raise("EINVAL", "argv is empty")
    end
    local env
    if args.env then
      env = {}
      for k, v in pairs(args.env) do
        if not k:match("^[%a_][%w_]*$") then
          banger.errors.raise("EINVAL", "bad environment variable name '" .. k .. "'")
        end
        env[#env + 1] = k .. "=" .. v
      end
      table.sort(env)
    end
    local record = ctx:get(args.sandbox)
    local out, err = mcp.collector(ctx.max_output), mcp.collector(ctx.max_output)
    local r = ctx.sandbox.exec(record.name, {
      argv = argv, stdin = args.stdin, env = env, cwd = args.cwd, timeout_ms = args.timeout_ms,
      on_stdout = function(chunk) out:add(chunk) end,
      on_stderr = function(chunk) err:add(chunk) end,
    })
    local stdout, stdout_cut = out:result()
    local stderr, stderr_cut = err:result()
    local status = r.timed_out and ("timed out after " .. args.timeout_ms .. " ms, killed")
      or r.signal and ("killed by signal " .. tostring(r.signal))
      or ("exit code " .. tostring(r.code))
    local parts = { status }
    if #stdout > 0 then
      parts[#parts + 1] = "--- stdout ---\n" .. stdout
    end
    if #stderr > 0 then
      parts[#parts + 1] = "--- stderr ---\n" .. stderr
    end
    return {
      content = json.array({ { type = "text", text = table.concat(parts, "\n") } }),
      structuredContent = {
        exit_code = r.code, signal = r.signal, timed_out = r.timed_out == true,
        stdout = stdout, stderr = stderr,
        stdout_truncated_bytes = stdout_cut, stderr_truncated_bytes = stderr_cut,
      },
    }
  end,
}
