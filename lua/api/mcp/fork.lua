-- MCP tool `fork`: a copy of a running sandbox, memory and disks included.
local json = banger.json

return {
  name = "fork",
  title = "Fork a sandbox",
  description = "Make a new sandbox that continues from the current state of another (its files and "
    .. "running processes). Both go on independently. The fork belongs to this session like a created one.",
  input_schema = {
    type = "object",
    properties = {
      sandbox = { type = "string", description = "the sandbox to fork" },
      name = { type = "string", description = "name for the fork (default: generated)" },
      keep = { type = "boolean", description = "keep the fork after this session ends" },
    },
    required = { "sandbox" },
    additionalProperties = false,
  },
  annotations = { readOnlyHint = false, destructiveHint = false, openWorldHint = false },
  run = function(args, ctx)
    local record = ctx:fork(args.sandbox, args)
    return { content = json.array({ { type = "text", text = "forked " .. args.sandbox .. " as " .. record.name } }),
      structuredContent = record }
  end,
}
