-- MCP tool `create`: a new sandbox (a banger VM), started and ready.
local json = banger.json

return {
  name = "create",
  title = "Create a sandbox",
  description = "Create and boot a disposable Linux sandbox (a microVM) and wait until it can run commands. "
    .. "Returns its name, which the other tools take as 'sandbox'. The sandbox is deleted when this MCP "
    .. "session ends or after the idle timeout, unless keep is true.",
  input_schema = {
    type = "object",
    properties = {
      name = { type = "string", description = "name for the sandbox (default: generated)" },
      image = { type = "string", description = "banger image to boot (default: the configured default image)" },
      snapshot = { type = "string", description = "start from this snapshot instead of an image" },
      vcpus = { type = "integer", minimum = 1, maximum = 32, description = "virtual CPUs" },
      memory = { type = "string", description = "guest memory, e.g. \"1GiB\" or \"512MiB\"" },
      nat = { type = "boolean", description = "give the sandbox outbound network access" },
      allow_hosts = { type = "array", items = { type = "string" },
        description = "host names the sandbox may reach (\"*.example.com\" wildcards); implies network access" },
      keep = { type = "boolean", description = "keep the sandbox after this session ends (no idle timeout either)" },
    },
    additionalProperties = false,
  },
  annotations = { readOnlyHint = false, destructiveHint = false, openWorldHint = true },
  run = function(args, ctx)
    local record = ctx:create(args)
    local text = "created sandbox " .. record.name .. " (" .. tostring(record.state) .. ")"
    if record.ip then
      text = text .. ", address " .. record.ip
    end
    if args.keep then
      text = text .. "; kept after this session ends"
    end
    return { content = json.array({ { type = "text", text = text } }), structuredContent = record }
  end,
}
