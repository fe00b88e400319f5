-- banger.vm's hooks end to end (docs/scripting.md, "Hooks"): passed to one
-- call, called with their documented arguments, seen by no other call.
-- A real kernel under QEMU (TCG), the tiny image.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()

describe("per-call hooks", function()
  it("are called with their documented arguments and only for their own call", function()
    local home = e2e.home()
    t.write(home .. "/synced.txt", "synced for a\n")
    local r = t.banger({ "run", t.source_dir() .. "/tests/lua/fixtures/hooks_probe.lua", home .. "/synced.txt" },
      { home = home, timeout_ms = 300000 })
    t.eq(r.code, 0, r.stderr)
    local out = banger.json.decode(r.stdout)
    t.eq(out.unknown.code, "EINVAL")
    t.contains(out.unknown.message, "unknown hook 'after_bot'")
    t.contains(out.not_function.message, "hooks.after_boot: expected a function, got number")
    t.eq(out.bad_call.code, "EINVAL")

    local dir_a, dir_b
    local by = {}
    for _, c in ipairs(out.calls) do
      by[c.call] = by[c.call] or {}
      by[c.call][#by[c.call] + 1] = c.hook
    end
    t.eq(by["create a"], { "allocate_ip", "create_work_disk", "provision_disks", "before_launch", "wait_ready",
      "after_boot" }, "a QEMU create calls these, in this order")
    t.eq(by["stop a"], { "before_stop" })
    t.eq(by["start a"], { "refresh_work_disk" }, "a start writes the work disk first; create does not (above)")
    t.eq(out.a_start, { code = "EPROBE", message = "stopped before the launch" })
    t.eq(by["create b"], { "allocate_ip", "clone_rootfs", "create_work_disk", "provision_disks" },
      "a create without start; clone_rootfs for firecracker's raw root disk")
    for _, c in ipairs(out.calls) do
      if c.hook == "create_work_disk" then
        local dir = c.args.path:match("^(.*)/work%.ext4$")
        if c.call == "create a" then dir_a = dir else dir_b = dir end
      end
    end
    t.truthy(dir_a and dir_b and dir_a ~= dir_b, "each create made its own work disk")
    for _, c in ipairs(out.calls) do
      local a = c.args
      t.eq(a.extra, 0, c.call .. " " .. c.hook .. ": no arguments beyond the documented ones")
      if c.hook == "allocate_ip" then
        t.eq(a.db, "function", "allocate_ip gets the open database")
      elseif c.hook == "create_work_disk" then
        t.eq(a.marker, c.call == "create a" and "settings-of-a" or "settings-of-b", "the call's own settings")
        t.eq(a.bytes, 4 * 1024 * 1024 * 1024, "vm.work_disk's default")
      elseif c.hook == "clone_rootfs" then
        t.eq(a.src, home .. "/.local/state/banger/images/tiny.ext4")
        t.eq(a.dst, dir_b .. "/root.img")
        t.eq(a.bytes, out.b_root_img)
      elseif c.hook == "provision_disks" then
        t.eq(a.vm, c.call == "create a" and "a" or "b")
        t.eq(a.state, "creating")
      elseif c.hook == "refresh_work_disk" then
        t.eq({ a.vm, a.state, a.path, a.format }, { "a", "stopped", dir_a .. "/work.ext4", "raw" })
      elseif c.hook == "before_launch" then
        t.eq({ a.vm, a.spec_name, a.disks }, { "a", "a", 2 })
      elseif c.hook == "wait_ready" then
        t.eq({ a.vm, a.pid, a.timeout_ms }, { "a", "integer", 120000 })
      elseif c.hook == "after_boot" or c.hook == "before_stop" then
        t.eq({ a.vm, a.pid }, { "a", "integer" })
      end
    end
    t.eq(out.a_guest, "synced for a\ncreate a\n", "the call's file_sync and provision_disks reached the guest")
    t.eq(out.a_stop, "stopped")
    t.eq(out.b_ip, "10.99.0.7", "b's allocate_ip chose its address")
    t.eq(out.calls_without_hooks, 0, "a create and a start without hooks call none of the earlier calls' hooks")
    t.eq({ out.c_mark, out.c_synced, out.c_keys }, { "absent", "absent", true },
      "c got the default work disk: none of a's file_sync or provision_disks")
    t.truthy(out.defaults_fresh)
    t.eq(e2e.vms(home), {}, "the probe deleted its VMs")
  end)
end)
