-- MCP tool `list_files`: a directory of a sandbox.
local json = banger.json

return {
  name = "list_files",
  title = "List a directory",
  description = "List the entries of a directory in a sandbox: name, type (file, dir, link, other), "
    .. "size in bytes and octal mode.",
  input_schema = {
    type = "object",
    properties = {
      sandbox = { type = "string", description = "the sandbox's name" },
      path = { type = "string", description = "absolute path of a directory in the sandbox" },
    },
    required = { "sandbox", "path" },
    additionalProperties = false,
  },
  annotations = { readOnlyHint = true, openWorldHint = false },
  run = function(args, ctx)
    local record = ctx:get(args.sandbox)
    local entries = ctx.sandbox.list_files(record.name, args.path)
    for _, e in ipairs(entries) do
      e.name = banger.mcp.text(e.name)
    end
    table.sort(entries, function(a, b) return a.name < b.name end)
    local lines = {}
    for _, e in ipairs(entries) do
      lines[#lines + 1] = string.format("%s\t%d\t%04o\t%s", e.type, e.size or 0, e.mode or 0,
        e.name .. (e.type == "dir" and "/" or ""))
    end
    local text = #lines > 0 and table.concat(lines, "\n") or "(empty directory)"
    return { content = json.array({ { type = "text", text = banger.mcp.text(text) } }),
      structuredContent = { path = args.path, entries = json.array(entries) } }
  end,
}
