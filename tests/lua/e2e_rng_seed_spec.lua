-- The guest's random pool is seeded from the host at a VM's first boot:
-- banger writes random bytes onto the work disk, the initramfs credits them
-- (banger-agent --seed-rng) before the real init starts, and wipes them.
-- Debian's 6.1 cloud kernel under QEMU, the tiny image.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()

-- Where `needle` occurs in the file at `path`, read in 1 MiB pieces that
-- overlap by the needle's length; nil when it does not.
local function find_in_file(path, needle)
  local f = assert(io.open(path, "rb"))
  local carry, base = "", 0
  while true do
    local piece = f:read(1 << 20)
    if not piece then
      break
    end
    local chunk = carry .. piece
    local at = chunk:find(needle, 1, true)
    if at then
      f:close()
      return base - #carry + at - 1
    end
    carry = chunk:sub(-(#needle - 1))
    base = base + #piece
  end
  f:close()
end

describe("the guest's random pool", function()
  it("is credited with the host's bytes before init at the first boot; the bytes are gone afterwards", function()
    local home = e2e.home()
    local c = t.banger({ "vm", "create", "r1", "--image", "tiny", "--memory", "256MiB", "--no-start" }, { home = home })
    t.eq(c.code, 0, c.stderr)
    local dir = e2e.vms(home).r1.dir
    local seed
    do
      local work <close> = banger.ext4.open(dir .. "/work.ext4")
      seed = work:read("/.banger-rng-seed")
    end
    t.eq(#seed, 64)
    t.truthy(find_in_file(dir .. "/work.ext4", seed), "the seed is on the disk before the boot")

    local s = t.banger({ "vm", "start", "r1" }, { home = home, timeout_ms = 240000 })
    t.eq(s.code, 0, s.stderr)
    local log = t.read(dir .. "/console.log")
    local seeded = log:find("banger-init: seeded the kernel's random pool with 64 bytes from the host", 1, true)
    t.truthy(seeded, log)
    -- Credited in full: the CRNG becomes ready there (it was not when the
    -- initramfs started), not seconds later when something blocks on it.
    local init = log:find("Run /init as init process", 1, true)
    local ready = log:find("random: crng init done", 1, true)
    t.truthy(init and ready and init < ready and ready < seeded, "crng ready at the seeding\n" .. log)
    local gone = t.banger({ "vm", "exec", "r1", "--", "sh", "-c", "test ! -e /root/.banger-rng-seed" }, { home = home })
    t.eq(gone.code, 0, "the seed file is removed by the boot that used it")
    t.eq(t.banger({ "vm", "stop", "r1" }, { home = home, timeout_ms = 60000 }).code, 0)

    -- The attack: read the bytes back from the stopped disk. They were
    -- overwritten before the file was removed.
    t.eq(find_in_file(dir .. "/work.ext4", seed), nil, "the seed's bytes are still on the work disk")

    -- A later boot has no seed to use (one boot only) and still comes up.
    local before = #t.read(dir .. "/console.log")
    local again = t.banger({ "vm", "start", "r1" }, { home = home, timeout_ms = 240000 })
    t.eq(again.code, 0, again.stderr)
    t.not_contains(t.read(dir .. "/console.log"):sub(before + 1), "seeded the kernel's random pool")
    t.eq(t.banger({ "vm", "delete", "-f", "r1" }, { home = home, timeout_ms = 60000 }).code, 0)
  end)
end)
