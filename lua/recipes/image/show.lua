-- banger image show NAME
return {
  summary = "show one image",
  json = true,
  args = { { "name", required = true, complete = "image", help = "image name" } },
  run = function(opts)
    local row = banger.images.require(opts.name)
    banger.ui.emit(opts, row, function(r)
      for _, k in ipairs({ "name", "source_ref", "digest", "size_bytes", "rootfs_path", "kernel", "is_default", "init",
        "created_at" }) do
        local v = r[k]
        if k == "is_default" then
          v = v == 1 or v == true
        end
        banger.ui.print(string.format("%-12s %s", k, banger.ui.text(v)))
      end
    end, "image")
  end,
}
