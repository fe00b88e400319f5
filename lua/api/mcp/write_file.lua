-- MCP tool `write_file`: creates or replaces a file in a sandbox.
local json = banger.json

return {
  name = "write_file",
  title = "Write a file",
  description = "Create or replace a file in a sandbox with the given text, or with binary content given "
    .. "as base64 (encoding \"base64\"). Missing parent directories are an error.",
  input_schema = {
    type = "object",
    properties = {
      sandbox = { type = "string", description = "the sandbox's name" },
      path = { type = "string", description = "absolute path in the sandbox" },
      content = { type = "string", description = "the file's new content" },
      encoding = { type = "string", enum = { "utf-8", "base64" },
        description = "how content is given: text (\"utf-8\", the default) or base64 for binary files" },
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
    local data = args.content
    if args.encoding == "base64" then
      local bytes, why = require("banger.native.crypto").base64_decode(data)
      if not bytes then
        banger.errors.raise("EINVAL", "content is not base64: " .. why)
      end
      data = bytes
    end
    local record = ctx:get(args.sandbox)
    local r = ctx.sandbox.write_file(record.name, args.path, data, { mode = mode })
    return { content = json.array({ { type = "text", text = "wrote " .. r.bytes .. " bytes to " .. args.path } }),
      structuredContent = { path = args.path, bytes = r.bytes } }
  end,
}
