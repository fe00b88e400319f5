-- banger mcp: a Model Context Protocol server on standard input and output,
-- for AI agents and their clients (docs/mcp.md).
return {
  summary = "serve sandboxes to an MCP client over stdio (Model Context Protocol)",
  flags = {
    { "idle-timeout", type = "integer",
      help = "seconds without a tool call after which a sandbox of this session is deleted (default: config mcp.idle_timeout; 0: never)" },
  },
  run = function(opts)
    -- MCP clients start servers in the user's project directory: nothing
    -- there (banger.lua, .banger/recipes) is this server's input
    banger.trust.disable()
    local cfg = banger.config.get()
    local mcp = banger.mcp
    local sandbox = banger.sandbox
    local idle = opts.idle_timeout or cfg.mcp.idle_timeout
    if idle < 0 then
      banger.errors.usage("--idle-timeout must be 0 or more seconds", "mcp")
    end
    local tools = mcp.tools() -- a broken or unsafe tool file stops the server before it does anything
    -- sandboxes of sessions that died without cleaning up (kill -9)
    local ok, gone = pcall(sandbox.reap, "session:")
    if not ok then
      banger.log.warn("mcp", "reaping dead sessions' sandboxes: " .. banger.errors.message(gone))
    elseif #gone > 0 then
      io.stderr:write("banger mcp: deleted ", #gone, " sandbox(es) of ended sessions: ", table.concat(gone, ", "), "\n")
    end
    local ctx = banger.mcp_sandboxes.new({
      sandbox = sandbox,
      owner = sandbox.session_owner(),
      idle_ms = idle * 1000,
      max_output = banger.units.parse_size(cfg.mcp.max_output),
    })
    banger.log.info("mcp", "session " .. ctx.owner .. " started")
    return mcp.serve({
      tools = tools,
      context = ctx,
      server_info = { name = "banger", title = "banger sandboxes", version = banger.sys.build().version },
      instructions = "Disposable Linux sandboxes (microVMs) on this machine. Call create, then exec, "
        .. "read_file, write_file and list_files with the sandbox's name; delete it when done. "
        .. "Sandboxes end with this session unless created with keep: true.",
    })
  end,
}
