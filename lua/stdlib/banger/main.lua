-- placeholder, replaced by the dispatcher
local M = {}
function M.run(argv)
  if argv[1] == "run" and argv[2] then
    local chunk = assert(loadfile(argv[2]))
    arg = { [0] = argv[2], table.unpack(argv, 3) }
    chunk(table.unpack(argv, 3))
    return 0
  end
  io.stderr:write("banger: unknown command\n")
  return 2
end
return M
