-- MCP tool `list`: the sandboxes this session may use.
local json = banger.json

return {
  name = "list",
  title = "List sandboxes",
  description = "List the sandboxes this MCP session made and the ones kept by earlier sessions (keep: true).",
  input_schema = { type = "object", properties = {}, additionalProperties = false },
  annotations = { readOnlyHint = true, openWorldHint = false },
  run = function(_, ctx)
    local records = ctx:list()
    local lines = {}
    for _, r in ipairs(records) do
      lines[#lines + 1] = string.format("%s\t%s\t%s%s", r.name, tostring(r.state), r.ip or "-",
        r.owner == banger.mcp_sandboxes.kept_owner and "\tkept" or "")
    end
    local text = #lines > 0 and table.concat(lines, "\n") or "no sandboxes (make one with the create tool)"
    return { content = json.array({ { type = "text", text = text } }),
      structuredContent = { sandboxes = json.array(records) } }
  end,
}
