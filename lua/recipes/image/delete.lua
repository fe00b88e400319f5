-- banger image rm NAME: remove an image no VM uses.
return {
  summary = "remove an image",
  args = { { "name", required = true, complete = "image", help = "image name" } },
  run = function(opts)
    banger.images.remove(opts.name)
    banger.ui.info("removed image " .. opts.name)
  end,
}
