--- banger.api: the routes of `banger serve` (docs/api.md) and the two halves
-- that serve them.
--
-- The server process runs one event loop (banger.native.httpd). For each
-- request M.route answers at once what needs no VM (health, errors, limits,
-- killing an exec) and hands everything else to a worker: a child
-- `banger api worker` process that runs the route's handler (M.run_worker).
-- banger's VM operations block for seconds, and the Lua state is
-- single-threaded, so a process per request is what lets a 3 s streamed
-- exec run while other requests are answered; the loop relays the worker's
-- stdout to the client and SIGTERMs it when the client goes away.
--
-- Handlers are Lua files found in $XDG_CONFIG_HOME/banger/api/ (the user's,
-- when no one else can write them) and then in the bundled lua/api/; never
-- in a project directory.
local config = require("banger.config")
local errors = require("banger.errors")
local fs = require("banger.native.fs")
local json = require("banger.native.json")
local paths = require("banger.native.paths")
local sys = require("banger.native.sys")

local M = {}

--- Every route: method, path pattern ({name} is one path segment), the
-- handler that serves it, and whether the loop itself answers it. The
-- OpenAPI document (docs/openapi.json) lists exactly these
-- (tests/lua/api_spec.lua).
M.routes = {
  { method = "GET", path = "/v1/health", handler = "health", loop = true },
  { method = "GET", path = "/v1/sandboxes", handler = "sandboxes/list" },
  { method = "POST", path = "/v1/sandboxes", handler = "sandboxes/create", body = "create" },
  { method = "GET", path = "/v1/sandboxes/{id}", handler = "sandboxes/get" },
  { method = "DELETE", path = "/v1/sandboxes/{id}", handler = "sandboxes/delete" },
  { method = "POST", path = "/v1/sandboxes/{id}/exec", handler = "sandboxes/exec", body = "json", exec = true },
  { method = "POST", path = "/v1/sandboxes/{id}/execs/{exec_id}/kill", handler = "kill", loop = true },
  { method = "GET", path = "/v1/sandboxes/{id}/files", handler = "files/read" },
  { method = "PUT", path = "/v1/sandboxes/{id}/files", handler = "files/write", body = "file" },
  { method = "DELETE", path = "/v1/sandboxes/{id}/files", handler = "files/delete" },
  { method = "GET", path = "/v1/sandboxes/{id}/files/list", handler = "files/list" },
  { method = "POST", path = "/v1/sandboxes/{id}/fork", handler = "sandboxes/fork", body = "json" },
  { method = "POST", path = "/v1/sandboxes/{id}/snapshot", handler = "sandboxes/snapshot", body = "json" },
  { method = "GET", path = "/v1/events", handler = "events" },
}

--- Maps banger's error codes to HTTP statuses.
M.status_of_code = {
  ENOENT = 404, EINVAL = 400, EUSAGE = 400, EISDIR = 400, ENOTDIR = 400, EBUSY = 409, EEXIST = 409,
  ESRCH = 409, ENOTEMPTY = 409, EFBIG = 413, ETIMEDOUT = 504, ENOTSUP = 501, EACCES = 403, EPERM = 403,
  ELIMIT = 429,
}

function M.status_of(code)
  return M.status_of_code[code] or 500
end

function M.error_body(code, message)
  return json.encode({ error = { code = code, message = message } }) .. "\n"
end

local function split_path(p)
  local segs = {}
  for s in p:gmatch("[^/]+") do
    segs[#segs + 1] = s
  end
  return segs
end

local function unescape(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h)
    return string.char(tonumber(h, 16))
  end))
end

--- The query string's parameters (the last of repeated names wins).
function M.parse_query(q)
  local out = {}
  for pair in (q or ""):gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    out[unescape(k)] = unescape(v)
  end
  return out
end

--- The route for method and path: route, params; or nil, status (404 when
-- no path matches, 405 when only the method differs).
function M.match(method, path)
  local want = split_path(path)
  local path_found = false
  for _, r in ipairs(M.routes) do
    local segs = split_path(r.path)
    if #segs == #want then
      local params, ok = {}, true
      for i, s in ipairs(segs) do
        local name = s:match("^{(.+)}$")
        if name then
          params[name] = unescape(want[i])
        elseif s ~= want[i] then
          ok = false
          break
        end
      end
      if ok then
        path_found = true
        if r.method == method then
          return r, params
        end
      end
    end
  end
  return nil, path_found and 405 or 404
end

--- Who is asking: `api:<uid>` on the Unix socket, `api:token` on TCP. It is
-- the owner recorded on the sandboxes the caller makes.
function M.caller(req)
  if req.transport == "unix" then
    return "api:" .. tostring(req.peer_uid)
  end
  return "api:token"
end

--- The id of the sandbox named or numbered `name_or_id`, nil when none:
-- limits and kills count per id, however the path names the sandbox.
function M.sandbox_id(name_or_id)
  local row = require("banger.state").db():query(
    "SELECT id FROM vms WHERE name = ? OR id = ? ORDER BY name = ? DESC", name_or_id, name_or_id, name_or_id)[1]
  return row and row.id
end

-- server side ------------------------------------------------------------------

local function answer(status, code, message)
  return { status = status, body = M.error_body(code, message) }
end

--- The loop's router (banger.native.httpd): answers or names a worker.
-- `server` is the httpd handle, `limits` the api.* config, `execs` the
-- table of running execs (exec id -> { sandbox, caller }).
function M.router(server, limits, execs)
  return function(req)
    local ok, res = pcall(function()
      local path, query = req.target:match("^([^?]*)%??(.*)$")
      local route, params = M.match(req.method, path)
      if not route then
        return answer(params, params == 404 and "ENOENT" or "EINVAL",
          params == 404 and ("no route " .. path) or (req.method .. " is not allowed on " .. path))
      end
      local caller = M.caller(req)
      if route.handler == "health" then
        return { status = 200, body = json.encode({ ok = true, version = sys.build().version }) .. "\n" }
      end
      if route.handler == "kill" then
        local id = tonumber(params.exec_id)
        local e = id and execs[id]
        if not (e and e.sandbox == M.sandbox_id(params.id) and (e.caller == caller or req.peer_uid == 0)) then
          return answer(404, "ENOENT", "no running exec " .. params.exec_id .. " in sandbox " .. params.id)
        end
        if not server:signal(id, "TERM") then
          execs[id] = nil
          return answer(404, "ENOENT", "exec " .. params.exec_id .. " has ended")
        end
        return { status = 200, body = json.encode({ killed = true, exec_id = id }) .. "\n" }
      end
      local max_body = 0
      if route.body == "json" or route.body == "create" then
        max_body = limits.max_body
      end
      if route.body == "file" then
        max_body = limits.max_file_bytes
      end
      local ctype = (req.headers["content-type"] or ""):match("^[^;]*")
      if route.body == "create" and ctype == "application/x-tar" then
        max_body = limits.max_file_bytes
      end
      local group = ""
      if route.exec then
        local sandbox = M.sandbox_id(params.id)
        if not sandbox then
          return answer(404, "ENOENT", "no sandbox '" .. params.id .. "'")
        end
        group = "exec:" .. sandbox
        if server:active(group) >= limits.max_execs_per_sandbox then
          return answer(429, "ELIMIT", "sandbox " .. params.id .. " already runs " .. limits.max_execs_per_sandbox ..
            " execs (api.max_execs_per_sandbox)")
        end
        for id in pairs(execs) do  -- forget ended ones
          if not server:signal(id, "0") then
            execs[id] = nil
          end
        end
        execs[req.id] = { sandbox = sandbox, caller = caller }
      elseif route.handler == "sandboxes/create" or route.handler == "sandboxes/fork" then
        group = "create:" .. caller
      end
      local head = {
        id = req.id, handler = route.handler, method = req.method, path = path, params = params,
        query = M.parse_query(query), headers = req.headers, caller = caller,
        limits = limits, creating = group == "create:" .. caller and server:active(group) or nil,
        content_length = req.content_length,
      }
      return { argv = { sys.exe(), "api", "worker" }, head = json.encode(head), max_body = max_body, group = group }
    end)
    if ok then
      return res
    end
    return answer(500, "EINTERNAL", errors.message(res))
  end
end

--- The api.* limits from the configuration.
function M.limits()
  local c = config.get().api
  local units = require("banger.units")
  return {
    max_body = units.parse_size(c.max_body), max_file_bytes = units.parse_size(c.max_file_bytes),
    max_execs_per_sandbox = c.max_execs_per_sandbox, max_sandboxes_per_caller = c.max_sandboxes_per_caller,
  }
end

--- Where the TCP bearer token is kept: <config dir>/api-token, 0600.
function M.token_path()
  return paths.resolve().config .. "/api-token"
end

--- The TCP bearer token, made on first use (32 random bytes, hex).
function M.token()
  local path = M.token_path()
  local text = fs.read(path)
  if text and text:match("^%x+%s*$") then
    return (text:gsub("%s+$", ""))
  end
  local f = assert(io.open("/dev/urandom", "rb"))
  local bytes = f:read(32)
  f:close()
  local token = bytes:gsub(".", function(c)
    return string.format("%02x", c:byte())
  end)
  errors.check(fs.mkdir_private(paths.resolve().config))
  errors.check(fs.write_atomic(path, token .. "\n", tonumber("600", 8)))
  return token
end

--- ADDR:PORT split; raises EUSAGE for anything else. IPv6 as [addr]:port.
function M.parse_listen(text)
  local host, port = text:match("^%[([%x:]+)%]:(%d+)$")
  if not host then
    host, port = text:match("^([%d%.]+):(%d+)$")
  end
  port = tonumber(port)
  if not host or not port or port > 65535 then
    errors.usage("--listen wants ADDR:PORT with an IP address (e.g. 127.0.0.1:8080), got '" .. text .. "'", "serve")
  end
  return host, port
end

function M.is_loopback(host)
  return host:match("^127%.") ~= nil or host == "::1"
end

--- `banger serve`: binds the Unix socket (and TCP with opts.listen) and
-- serves until SIGINT or SIGTERM.
function M.serve(opts)
  local httpd = require("banger.native.httpd")
  local log = require("banger.log")
  local ui = require("banger.ui")
  local runtime = paths.resolve().runtime
  errors.check(fs.mkdir_private(runtime))
  local o = { socket = opts.socket or (runtime .. "/api.sock"), owner_uid = sys.geteuid() }
  if opts.listen then
    o.host, o.port = M.parse_listen(opts.listen)
    if not M.is_loopback(o.host) and not opts.allow_remote then
      errors.usage("--listen " .. opts.listen .. " is not a loopback address: add --allow-remote to serve other hosts",
        "serve")
    end
    o.token = M.token()
  end
  local server = errors.check(httpd.open(o))
  local limits, execs = M.limits(), {}
  local where = o.socket .. (o.host and (" and " .. o.host .. ":" .. server:port()) or "")
  log.info("api", "serving", { socket = o.socket, tcp = o.host and (o.host .. ":" .. server:port()) or nil })
  ui.info("serving the API on " .. where .. (o.host and (" (token in " .. M.token_path() .. ")") or ""))
  local ok, why, code = server:run(M.router(server, limits, execs))
  server:close()
  if not ok and code ~= "ECANCELED" then
    errors.raise(code or "EIO", why)
  end
  if not ok then
    errors.interrupted()
  end
end

-- worker side ------------------------------------------------------------------

--- Where a handler's file is: the user's api/ directory first (when safe),
-- then the bundled one.
function M.handler_path(name)
  if not name:match("^[%w_/-]+$") or name:find("..", 1, true) then
    errors.raise("EINVAL", "bad handler name " .. name)
  end
  local cfg = paths.resolve().config
  local user = cfg .. "/api/" .. name .. ".lua"
  local st = fs.stat(user)
  if st and st.type == "file" then
    local top = cfg:match("^(.*)/[^/]+$") or cfg
    local why = require("banger.trust").unsafe_path(top, user)
    if not why then
      return user
    end
    require("banger.log").warn("api", "your API handler " .. user .. " is ignored: " .. why)
  end
  return sys.lua_dir() .. "/api/" .. name .. ".lua"
end

--- Raises ELIMIT (429) when the caller owns api.max_sandboxes_per_caller
-- sandboxes, counting the creates it has in flight.
function M.check_sandbox_limit(req)
  local owned = #require("banger.sandbox").list({ owner = req.caller }) + (req.creating or 0)
  if owned >= req.limits.max_sandboxes_per_caller then
    errors.raise("ELIMIT", req.caller .. " already has " .. owned .. " sandboxes (api.max_sandboxes_per_caller is "
      .. req.limits.max_sandboxes_per_caller .. ")")
  end
end

--- An output chunk as a JSON field: text when it is valid UTF-8, else
-- base64 under `<stream>_b64` (a chunk may end inside a character).
function M.output_field(stream, chunk)
  if utf8.len(chunk) then
    return { [stream] = chunk }
  end
  return { [stream .. "_b64"] = require("banger.native.crypto").base64_encode(chunk) }
end

-- The response a handler writes: a head once, then body bytes.
local function new_response(out)
  local res = { sent = false }
  function res.head(status, headers)
    if res.sent then
      errors.raise("EINVAL", "the response head was already sent")
    end
    res.sent = true
    headers = headers or { ["Content-Type"] = "application/json" }
    res.content_type = headers["Content-Type"]
    out:write(json.encode({ status = status, headers = headers }), "\n")
    out:flush()
  end
  function res.write(data)
    if not res.sent then
      res.head(200)
    end
    out:write(data)
    out:flush()
  end
  function res.line(t)
    res.write(json.encode(t) .. "\n")
  end
  function res.json(status, t)
    res.head(status)
    res.write(json.encode(t) .. "\n")
  end
  return res
end

-- The request a handler reads: its head's fields, and the body from stdin.
local function new_request(head, input)
  local req = head
  local remaining = head.content_length
  --- The next piece of the body (at most n bytes), nil at its end.
  function req.read(n)
    if remaining and remaining <= 0 then
      return nil
    end
    local chunk = input:read(math.min(n or 65536, remaining or math.huge))
    if chunk and remaining then
      remaining = remaining - #chunk
    end
    return chunk
  end
  --- The whole body as a string (the loop already bounded its size).
  function req.body()
    local parts = {}
    for chunk in req.read do
      parts[#parts + 1] = chunk
    end
    return table.concat(parts)
  end
  --- The body decoded as a JSON object ({} when empty); EINVAL otherwise.
  function req.json()
    local text = req.body()
    if text == "" then
      return {}
    end
    local v, why = json.decode(text)
    if type(v) ~= "table" then
      errors.raise("EINVAL", "the request body is not a JSON object: " .. tostring(why or text:sub(1, 40)))
    end
    return v
  end
  return req
end

--- The worker: reads the head line, runs the handler, writes the response.
-- An error before the response head becomes a JSON error with its status;
-- after it, in a JSON-lines stream, one last line {"error": {...}}.
-- Returns whether the response is complete (the worker's exit status).
function M.run_worker(input, out)
  input, out = input or io.stdin, out or io.stdout
  local line = input:read("l")
  local head = line and json.decode(line)
  if type(head) ~= "table" then
    errors.raise("EINVAL", "the worker expects a request head on stdin")
  end
  local req, res = new_request(head, input), new_response(out)
  local ok, err = pcall(function()
    local chunk, why = loadfile(M.handler_path(head.handler))
    if not chunk then
      errors.raise("ENOENT", "cannot load handler " .. head.handler .. ": " .. tostring(why))
    end
    chunk()(req, res)
  end)
  if ok then
    if not res.sent then
      res.head(204)
    end
    return true
  end
  local code = type(err) == "table" and err.code or "EINTERNAL"
  local message = errors.message(err)
  if not res.sent then
    res.json(M.status_of(code), { error = { code = code, message = message } })
    return true
  end
  -- A stream of JSON lines ends with the error as its last line; a raw
  -- body (a download) cannot say so: the worker fails, and the server
  -- leaves the response incomplete.
  if res.content_type == "application/x-ndjson" then
    return (pcall(res.line, { error = { code = code, message = message } }))
  end
  return false
end

return M
