-- MCP tool `delete`: removes a sandbox and everything it holds.
local json = banger.json

return {
  name = "delete",
  title = "Delete a sandbox",
  description = "Stop and delete a sandbox with its disks. Its files are gone for good.",
  input_schema = {
    type = "object",
    properties = { sandbox = { type = "string", description = "the sandbox's name" } },
    required = { "sandbox" },
    additionalProperties = false,
  },
  annotations = { readOnlyHint = false, destructiveHint = true, idempotentHint = true, openWorldHint = false },
  run = function(args, ctx)
    local record = ctx:delete(args.sandbox)
    return { content = json.array({ { type = "text", text = "deleted sandbox " .. record.name } }) }
  end,
}
