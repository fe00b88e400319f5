-- banger vm ssh NAME [-- CMD]: the system ssh into a VM with banger's key
-- and banger's pinned host keys.
return {
  summary = "open an SSH session (or run a command) in a VM with banger's key and pinned host key",
  args = { { "vm", required = true, complete = "vm", help = "VM name" }, { "command", rest = true, help = "command to run instead of a shell" } },
  flags = {
    { "forget", type = "boolean", help = "drop the VM's pinned host key (after re-keying it on purpose)" },
    { "print", type = "boolean", help = "print the ssh command line instead of running it" },
  },
  examples = { "banger vm ssh box", "banger vm ssh box -- uname -a", "banger vm ssh --forget box" },
  run = function(opts)
    local row = banger.vms.require(opts.vm)
    if opts.forget then
      local n = banger.ssh.forget(row)
      banger.ui.info(string.format("forgot %d pinned name(s) for %s", n, row.name))
      return 0
    end
    local argv = banger.ssh.ssh_argv(row, opts.command, { tty = #opts.command == 0 and banger.ui.is_tty(0) })
    if opts.print then
      local quoted = {}
      for i, a in ipairs(argv) do
        quoted[i] = banger.ssh.quote(a)
      end
      banger.ui.print(table.concat(quoted, " "))
      return 0
    end
    local child = banger.proc.spawn(argv)
    local st = child:wait()
    if #opts.command == 0 then
      -- after a shell, not after a command (that is the scripted form, like vm exec)
      banger.vm.remind_running(row.name)
    end
    return st.code
  end,
}
