-- banger image list
return {
  summary = "list images",
  json = true,
  run = function(opts)
    local rows = banger.images.list()
    banger.ui.emit(opts, rows, function(list)
      if #list == 0 then
        banger.ui.info("no images (pull one with 'banger image pull', or 'banger image register')")
        return
      end
      banger.ui.table(list, {
        { "NAME", "name" },
        { "DEFAULT", function(r) return r.is_default == 1 and "*" or "" end },
        { "SIZE", function(r) return banger.units.format_bytes(r.size_bytes) end },
        { "KERNEL", "kernel" },
        { "SOURCE", "source_ref" },
      })
    end, "array of image")
  end,
}
