-- MCP tool `read_file`: a file of a sandbox, as text.
local json = banger.json
local mcp = banger.mcp

return {
  name = "read_file",
  title = "Read a file",
  description = "Read a file from a sandbox as text (bytes that are not UTF-8 show as U+FFFD). "
    .. "A file longer than the server's limit keeps its first and last bytes with a "
    .. "'[... N bytes truncated ...]' marker in between.",
  input_schema = {
    type = "object",
    properties = {
      sandbox = { type = "string", description = "the sandbox's name" },
      path = { type = "string", description = "absolute path in the sandbox" },
    },
    required = { "sandbox", "path" },
    additionalProperties = false,
  },
  annotations = { readOnlyHint = true, openWorldHint = false },
  run = function(args, ctx)
    local record = ctx:get(args.sandbox)
    local c = mcp.collector(ctx.max_output)
    ctx.sandbox.read_file(record.name, args.path, { on_data = function(chunk) c:add(chunk) end })
    local text, cut = c:result()
    return { content = json.array({ { type = "text", text = text } }),
      structuredContent = { path = args.path, content = text, truncated_bytes = cut } }
  end,
}
