-- banger vm logs NAME [-f]: the VM's serial console.
return {
  summary = "print a VM's console log (-f to follow)",
  args = { { "name", required = true, complete = "vm", help = "VM name" } },
  flags = { { "follow", short = "f", type = "boolean", help = "keep printing as the log grows" } },
  run = function(opts)
    local row = banger.vms.require(opts.name)
    local path = banger.vms.dir(row) .. "/console.log"
    local f = io.open(path, "rb")
    if not f then
      banger.ui.info(opts.name .. ": no console output yet")
      if not opts.follow then
        return
      end
    end
    while true do
      if f then
        local chunk = f:read(65536)
        if chunk then
          io.stdout:write(chunk)
          io.stdout:flush()
          goto continue
        end
      end
      if not opts.follow then
        break
      end
      -- Follow until the VM is gone and the log is drained.
      if not banger.vms.alive(banger.vms.require(opts.name)) and f then
        break
      end
      banger.sys.sleep_ms(200)
      f = f or io.open(path, "rb")
      ::continue::
    end
    if f then
      f:close()
    end
  end,
}
