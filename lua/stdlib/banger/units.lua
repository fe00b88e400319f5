--- banger.units: sizes and modes as users write them.
local M = {}

local factors = {
  [""] = 1024 * 1024, -- a bare number is MiB
  b = 1,
  k = 1024, kb = 1024, kib = 1024,
  m = 1024 ^ 2, mb = 1024 ^ 2, mib = 1024 ^ 2,
  g = 1024 ^ 3, gb = 1024 ^ 3, gib = 1024 ^ 3,
  t = 1024 ^ 4, tb = 1024 ^ 4, tib = 1024 ^ 4,
}

--- "512MiB", "2G", "1.5GiB", "1024" (MiB), or an integer (MiB) -> bytes.
-- Binary units throughout: memory and disks are sized in powers of two.
function M.parse_size(v)
  if math.type(v) == "integer" then
    if v <= 0 then
      return nil, "size must be positive"
    end
    return v * 1024 * 1024
  end
  if type(v) ~= "string" then
    return nil, "expected a size such as \"2GiB\""
  end
  local num, unit = v:lower():match("^%s*(%d+%.?%d*)%s*(%a*)%s*$")
  if not num or not factors[unit] then
    return nil, "'" .. v .. "' is not a size (use e.g. 512MiB, 2GiB)"
  end
  local bytes = math.floor(tonumber(num) * factors[unit])
  if bytes <= 0 then
    return nil, "size must be positive"
  end
  return math.tointeger(bytes)
end

function M.format_bytes(n)
  local units = { "B", "KiB", "MiB", "GiB", "TiB" }
  local i = 1
  while n >= 1024 and i < #units do
    n = n / 1024
    i = i + 1
  end
  if i == 1 then
    return string.format("%d B", n)
  end
  return string.format("%.1f %s", n, units[i])
end

--- "0600", "755" -> integer mode; nil, reason for anything else.
function M.parse_mode(s)
  if type(s) ~= "string" or not s:match("^[0-7][0-7][0-7][0-7]?$") then
    return nil, "mode must be an octal string such as \"0600\""
  end
  return tonumber(s, 8)
end

return M
