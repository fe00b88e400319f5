-- Shared set-up for end-to-end specs: a home with Debian's cloud kernel
-- imported and a tiny busybox + agent image registered, ready for
-- `banger vm create --image tiny`. Real kernel, real QEMU (TCG here).
local e2e = {}
t.requires_root("end-to-end specs share the kernel cache in /var/cache/banger-test and set up namespaces, helpers and other uids as root")

function e2e.agent_bin()
  return assert(os.getenv("BANGER_BUILD_DIR"), "BANGER_BUILD_DIR") .. "/cli/banger-agent/banger-agent"
end

function e2e.kernel_deb()
  local r = banger.proc.run({ t.source_dir() .. "/tests/fixtures/kernel-deb.sh", timeout_ms = 300000 })
  t.eq(r.code, 0, "kernel-deb.sh: " .. r.stderr)
  return (r.stdout:gsub("%s+$", ""))
end

--- Adds image "tiny" (busybox and the agent, booting kernel "debian-cloud") to `home`.
local function tiny_image(home)
  local img = home .. "/tiny.ext4"
  local r = t.banger({ "run", t.source_dir() .. "/tests/lua/fixtures/make_rootfs.lua", img, e2e.agent_bin() },
    { home = home })
  t.eq(r.code, 0, r.stderr)
  local reg = t.banger({ "image", "register", "--rootfs", img, "--name", "tiny", "--kernel", "debian-cloud" },
    { home = home })
  t.eq(reg.code, 0, reg.stderr)
end

-- Kernel "debian-cloud" as `kernel import` of Debian's package makes it,
-- imported once per build tree and inputs (the .deb, banger, the agent its
-- initramfs carries) and copied from there: the import costs seconds of CPU
-- (the package unpacked, the initramfs built) and specs need only its result.
-- The import itself is tested where it is the subject (kernel_catalog_spec,
-- e2e_debian_spec, e2e_reidentify_spec, the C++ kernel tests); a missing or
-- stale cache entry is made again here, so an empty cache works too.
local function imported_kernel()
  local deb = e2e.kernel_deb()
  local key = { (deb:match("[^/]+$")) }
  for _, f in ipairs({ deb, t.bin(), e2e.agent_bin() }) do
    local st = assert(banger.fs.stat(f))
    key[#key + 1] = string.format("%d-%d-%d", st.size, st.mtime, st.ino)
  end
  local cache = assert(os.getenv("BANGER_BUILD_DIR"), "BANGER_BUILD_DIR") .. "/test-cache/kernel"
  local dir = cache .. "/" .. table.concat(key, "_")
  if banger.fs.exists(dir .. "/manifest.json") then
    return dir
  end
  local home = t.tmpdir()
  local k = t.banger({ "kernel", "import", deb, "--name", "debian-cloud" }, { home = home })
  t.eq(k.code, 0, k.stderr)
  -- Copied beside the entry, then renamed into place: a spec running at
  -- the same time sees a whole entry or none.
  banger.fs.mkdir(cache, 493, true)
  local tmp = dir .. ".tmp-" .. banger.sys.getpid()
  local cp = banger.proc.run({ "cp", "-a", home .. "/.local/state/banger/kernels/debian-cloud", tmp })
  t.eq(cp.code, 0, cp.stderr)
  if not pcall(banger.fs.rename, tmp, dir) then
    banger.fs.remove_tree(tmp) -- another spec put the same entry in place first
  end
  t.truthy(banger.fs.exists(dir .. "/manifest.json"), dir)
  return dir
end

--- Puts kernel "debian-cloud" (Debian's cloud kernel package, imported) in
-- the catalog of the fresh `home`.
function e2e.add_kernel(home)
  local kernel = imported_kernel()
  -- the directories and modes banger makes for its state
  local state = home .. "/.local/state/banger"
  for _, d in ipairs({ home .. "/.local", home .. "/.local/state", state }) do
    banger.fs.mkdir(d, 448, true)
  end
  banger.fs.mkdir(state .. "/kernels", 493, true)
  local cp = banger.proc.run({ "cp", "-a", kernel, state .. "/kernels/debian-cloud" })
  t.eq(cp.code, 0, cp.stderr)
  local list = t.banger({ "kernel", "list", "--json" }, { home = home })
  t.eq(list.code, 0, list.stderr)
  t.eq(banger.json.decode(list.stdout)[1].name, "debian-cloud", "the copied kernel is in the catalog")
end

--- A fresh home with kernel "debian-cloud" and image "tiny".
function e2e.home()
  local home = t.tmpdir()
  e2e.add_kernel(home)
  tiny_image(home)
  return home
end

--- busybox httpd serving `dir` on a free 127.0.0.1 port; `probe` (default
-- catalog.json) is a file in `dir` whose answer tells it is up. Returns the
-- process and its base URL.
function e2e.serve(dir, probe)
  for _ = 1, 20 do
    local port = 20000 + math.random(0, 20000)
    local httpd = t.spawn({ "busybox", "httpd", "-f", "-p", "127.0.0.1:" .. port, "-h", dir, stderr = "null" })
    local ok = pcall(e2e.wait_for, function()
      return (pcall(banger.http.fetch, "http://127.0.0.1:" .. port .. "/" .. (probe or "catalog.json")))
    end, 3000, "httpd")
    if ok then
      return httpd, "http://127.0.0.1:" .. port
    end
    httpd:kill(9)
    httpd:wait()
  end
  error("no free port for httpd")
end

--- e2e.home(), but kernel "debian-cloud" came as a bundle: imported in
-- another home, written by `kernel export` into a catalog directory served
-- by busybox httpd, and `kernel pull`ed from there (docs/kernels.md).
-- Returns the home and the two commands' results (their --json output);
-- `{ image = false }` leaves image "tiny" out.
function e2e.home_from_bundle(opts)
  local src = t.tmpdir()
  e2e.add_kernel(src)
  local site = t.tmpdir()
  local export = t.banger({ "kernel", "export", "debian-cloud", "--output", site, "--level", "3", "--json" },
    { home = src, timeout_ms = 120000 })
  t.eq(export.code, 0, export.stderr)
  -- The merge docs/kernels.md shows.
  local merge = banger.proc.run({ "sh", "-c", "jq -s '{kernels: .}' *-*.json > catalog.json", cwd = site })
  t.eq(merge.code, 0, merge.stderr)
  local httpd, base = e2e.serve(site)
  local home = t.tmpdir()
  local pull = t.banger({ "kernel", "pull", "debian-cloud", "--catalog", base .. "/catalog.json", "--json" },
    { home = home, timeout_ms = 120000 })
  httpd:kill(9)
  httpd:wait()
  t.eq(pull.code, 0, pull.stderr)
  if not (opts and opts.image == false) then
    tiny_image(home)
  end
  return home, export, pull, { src = src, base = base }
end

--- Adds image "tiny-ssh" (tiny plus Debian's dropbear) to `home` and turns
-- VM networking on: for specs that reach a guest over SSH, in a namespace.
function e2e.ssh_image(home)
  local img = home .. "/tiny-ssh.ext4"
  local mk = t.banger({ "run", t.source_dir() .. "/tests/lua/fixtures/make_rootfs.lua", img, e2e.agent_bin(), "ssh" },
    { home = home })
  t.eq(mk.code, 0, mk.stderr)
  t.eq(t.banger({ "image", "register", "--rootfs", img, "--name", "tiny-ssh", "--kernel", "debian-cloud" },
    { home = home }).code, 0)
  t.write(home .. "/.config/banger/config.lua", 'return { network = { mode = "on" } }\n')
end

--- The VMs of a `vm list --json` result, by name.
function e2e.by_name(r)
  t.eq(r.code, 0, r.stderr)
  local by_name = {}
  for _, v in ipairs(banger.json.decode(r.stdout)) do
    by_name[v.name] = v
  end
  return by_name
end

function e2e.vms(home)
  return e2e.by_name(t.banger({ "vm", "list", "--json" }, { home = home }))
end

--- Hypervisor processes whose command line mentions `needle` (zombies have none).
function e2e.processes(needle)
  local r = banger.proc.run({ "pgrep", "-f", needle })
  return r.stdout
end

--- Entries of a directory; none when it does not exist.
function e2e.list(dir)
  return banger.fs.exists(dir) and banger.fs.list(dir) or {}
end

--- Waits until a VM of `home` has a handles.json (its hypervisor was
-- launched); returns that VM's id.
function e2e.wait_for_launch(home)
  local vms = home .. "/.local/state/banger/vms"
  local found
  e2e.wait_for(function()
    for _, id in ipairs(e2e.list(vms)) do
      if banger.fs.exists(vms .. "/" .. id .. "/handles.json") then
        found = id
        return true
      end
    end
  end, 60000, "the hypervisor to be launched")
  return found
end

-- The UDP echo peer built with the tests (tests/udp-echo): busybox nc has no UDP.
function e2e.udp_echo_bin()
  return assert(os.getenv("BANGER_BUILD_DIR"), "BANGER_BUILD_DIR") .. "/tests/udp-echo/udp-echo"
end

-- The port-forwarding specs' guest side, in VM `name` of `home` (banger run
-- in namespace `ns` of `netns`): busybox httpd serving `page` as
-- index.html on `httpd_addr` ("8000", "127.0.0.1:8000"), and the UDP echo
-- on 8001.
function e2e.forward_targets(netns, ns, home, name, page, httpd_addr)
  local banger_in = netns.banger(ns, home)
  local r = banger_in({ "vm", "exec", name, "--", "sh", "-c",
    "mkdir -p /tmp/www && echo '" .. page .. "' > /tmp/www/index.html && "
      .. "busybox httpd -p " .. httpd_addr .. " -h /tmp/www </dev/null >/dev/null 2>&1" })
  t.eq(r.code, 0, r.stderr)
  local copy = netns.run(ns, { t.bin(), "vm", "exec", "--stdin", name, "--", "sh", "-c",
    "cat > /tmp/udp-echo && busybox chmod 755 /tmp/udp-echo && (/tmp/udp-echo serve 8001 </dev/null >/dev/null 2>&1 &)" },
    { env = t.env(home), cwd = home, input = t.read(e2e.udp_echo_bin()), timeout_ms = 120000 })
  t.eq(copy.code, 0, copy.stderr)
end

-- The page at http://127.0.0.1:PORT/index.html inside `ns`, once it answers.
function e2e.forwarded_page(netns, ns, port)
  return t.wait_for(function()
    local got = netns.run(ns, { "curl", "-sf", "-m", "5", "http://127.0.0.1:" .. port .. "/index.html" })
    return got.code == 0 and got.stdout
  end, 60000, "the guest's page through 127.0.0.1:" .. port)
end

-- The echo of datagram `text` sent to 127.0.0.1:PORT/udp inside `ns`, once it comes back.
function e2e.forwarded_echo(netns, ns, port, text)
  return t.wait_for(function()
    local got = netns.run(ns, { e2e.udp_echo_bin(), "send", "127.0.0.1", tostring(port), text })
    return got.code == 0 and got.stdout
  end, 60000, "a datagram both ways through 127.0.0.1:" .. port .. "/udp")
end

e2e.wait_for = t.wait_for

return e2e
