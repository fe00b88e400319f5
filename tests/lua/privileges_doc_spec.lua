-- docs/privileges.md lists exactly the helper's operations, each with the
-- gate the code reports for it.
describe("docs/privileges.md", function()
  it("documents every privileged operation with its gate, and no other", function()
    local doc = t.read(t.source_dir() .. "/docs/privileges.md")
    local section = doc:match("## Operations and their gates(.-)\n## ")
    t.truthy(section, "operations section")
    local documented = {}
    for name in section:gmatch("\n| `([%w_]+)` |") do
      documented[name] = true
    end
    local r = banger.proc.run({ os.getenv("BANGER_BUILD_DIR") .. "/banger-helper", "--operations" })
    t.eq(r.code, 0, r.stderr)
    local ops = banger.json.decode(r.stdout)
    for _, op in ipairs(ops) do
      t.contains(section, "| `" .. op.name .. "` | " .. op.gate .. " |")
      documented[op.name] = nil
    end
    t.eq(next(documented), nil, "documented operations the helper does not have")
    t.eq(#ops, #banger.priv.operations(), "the helper and in-process banger share one table")
  end)
end)
