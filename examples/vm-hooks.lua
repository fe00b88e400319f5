-- banger run examples/vm-hooks.lua [IMAGE]
-- Hooks change one step of one call: this VM gets a note on its work disk
-- before it boots and says when it is up; the next VM you create gets
-- neither.
local image = arg[1]

local vm = banger.vm.create({ image = image, memory = "256MiB" }, {
  on_stage = banger.ui.stages(),
  hooks = {
    -- provision_disks(row): the disks exist, the VM has not booted yet
    provision_disks = function(row)
      local disk <close> = banger.ext4.open(banger.vms.dir(row) .. "/work.ext4", { write = true })
      disk:write("/note.txt", "written by a hook before " .. row.name .. " booted\n", { mode = tonumber("644", 8) })
    end,
    -- after_boot(row, h): the guest agent answers
    after_boot = function(row)
      banger.ui.info(row.name .. " is up")
    end,
  },
})
local r = banger.guest.exec(vm, { "cat", "/root/note.txt" })  -- its output streams here
banger.vm.delete(vm.name, true)
return r.code
