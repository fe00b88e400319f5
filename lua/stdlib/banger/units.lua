--- banger.units: sizes and modes as users write them.
local native = require("banger.native.units")

local M = {}

--- The largest size accepted anywhere, in bytes (16 TiB).
M.max_size = native.max_size

--- A size -> bytes; nil and the reason for anything else (never nil alone).
-- One rule everywhere, config, flags and natives alike (engine/core/size.hpp):
-- an integer is bytes; a string needs a binary unit: "4096B", "64KiB",
-- "512MiB" or "512M", "1.5GiB", "2TiB"; at most 16 TiB.
function M.parse_size(v)
  local bytes, why = native.parse_size(v)
  if not bytes then
    return nil, why or "is not a valid size"
  end
  return bytes
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
