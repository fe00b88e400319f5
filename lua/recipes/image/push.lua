-- banger image push NAME REF [--dry-run]: an image's whole tree as a
-- one-layer OCI image in a registry (banger.image_push has the flow).
return {
  summary = "push an image to a registry as a one-layer OCI image",
  json = true,
  args = {
    { "name", required = true, complete = "image", help = "the image to push (see 'banger image list')" },
    { "ref", help = "where to push it: REGISTRY/REPOSITORY:TAG (not needed with --dry-run)" },
  },
  flags = {
    { "dry-run", type = "boolean", help = "only build the layer and print its size, digest and diff_id" },
  },
  examples = {
    "banger image push debian 127.0.0.1:5000/me/debian:12",
    "banger image push debian --dry-run",
  },
  run = function(opts)
    local r = banger.image_push.push({ name = opts.name, ref = opts.ref, dry_run = opts.dry_run })
    banger.ui.emit(opts, r, function(x)
      if x.dry_run then
        banger.ui.print(string.format("layer of image %s: %s, %d entries\n  digest  %s\n  diff_id %s", x.image,
          banger.units.format_bytes(x.size), x.entries, x.layer_digest, x.diff_id))
      else
        banger.ui.print(string.format("pushed image %s to %s (%s)", x.image, x.ref, x.manifest_digest))
      end
    end, "image_push")
  end,
}
