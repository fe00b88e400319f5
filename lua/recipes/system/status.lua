-- banger system status: is the root helper installed, running, answering?
return {
  summary = "show the system install and whether the root helper answers",
  json = true,
  flags = { { "root", type = "string", help = "look under this directory instead of /" } },
  run = function(opts)
    local s = banger.system.status(opts.root)
    banger.ui.emit(opts, s, function(st)
      if not st.installed then
        banger.ui.print("not installed (sudo banger system install)")
      else
        local r = st.record
        banger.ui.print(string.format("installed for %s (uid %d), banger %s, %s", r.owner, r.owner_uid, r.version,
          r.installed_at))
        if st.unit_state then
          banger.ui.print("service: " .. st.unit_state)
        end
      end
      if st.helper_reachable then
        banger.ui.print(string.format("helper: answering on %s (pid %d, banger %s)", st.socket, st.helper.pid,
          st.helper.version))
      else
        banger.ui.print("helper: not answering: " .. st.helper_error
          .. (st.installed and " (sudo banger system restart; journalctl -u " .. banger.system.unit_name .. ")" or ""))
      end
    end, "system_status")
    if not s.helper_reachable then
      os.exit(1)
    end
  end,
}
