-- MCP tool `write_file`: creates or replaces a file in a sandbox.
local json = banger.json

return {
  name = "write_file",
  title = "Write a file",
  description = "Create or replace a file in a sandbox with the given text. Missing parent directories "
    .. "are an error.",
  input_schema = {
    type = "object",
    properties = {
      sandbox = { type = "string", description = "the sandbox's name" },
      path = { type = "string", description = "absolute path in the sandbox" },
      content = { type = "string", description = "the file's new content" },
      mode = { type = "string", description = "octal permissions, e.g. \"0755\" (default \"0644\")" },
    },
    required = { "sandbox", "path", "content" },
    additionalProperties = false,
  },
  annotations = { readOnlyHint = false, destructiveHint = true, idempotentHint = true, openWorldHint = false },
  run = function(args, ctx)
    local mode
    if args.mode then
      mode = banger.units.parse_mode(args.mode)
      if not mode then
        banger.errors.raise("EINVAL", "mode must be octal permissions such as \"0644\", got '" .. args.mode .. "'")
      end
    end
    local record = ctx:get(args.sandbox)
    local r = ctx.sandbox.write_file(record.name, args.path, args.content, { mode = mode })
    return { content = json.array({ { type = "text", text = "wrote " .. r.bytes .. " bytes to " .. args.path } }),
      structuredContent = { path = args.path, bytes = r.bytes } }
  end,
}
