// banger.native.oci: OCI registry client and blob cache (engine/image/).
//   oci.parse_ref(s) -> {registry=, repository=, tag=, digest=, api_host=, ref=}
//   oci.resolve(ref, {cache=dir, platform="linux/amd64", docker_config=dir})
//       -> {ref=, digest=, index_digest=, media_type=, config={digest=,size=,media_type=,path=},
//           layers={{digest=,size=,media_type=}...}}
//       With cache=, the manifest and the config blob are stored there (verified).
//   oci.fetch(ref_or_resolved, {cache=dir, parallel=4, platform=, docker_config=, on_progress=function(done, total)})
//       -> {path, ...} of the layers in order (plus downloaded=, downloaded_bytes=)
//   oci.cache_prune(dir, {dry_run=bool}) -> {bytes=, blobs=}
//   oci.pull(ref_or_resolved, {cache=dir, parallel=4, platform=, docker_config=}) -> pull
//       Starts the layer downloads and returns at once; the layers are
//       consumed while they arrive:
//   pull:open(i) -> stream of layer i (1-based) for fs:apply_layer; it ends
//       only once the blob is verified, and fails if it is not
//   pull:progress() -> done, total (bytes, now)
//   pull:wait() -> {path, ...; downloaded=, downloaded_bytes=} once every blob
//       is verified and in the cache (the first failure otherwise)
//   pull:close() stops the downloads and removes their temporaries
//   oci.build_layer(rootfs, out, {on_progress=function(entries, tar_bytes)})
//       -> {digest=, diff_id=, size=, tar_bytes=, entries=, skipped={path...}}
//       One gzip layer of an ext4 image's whole tree, written to the new
//       file `out` (engine/image/layer_writer.hpp).
//   oci.push(ref, {layer={path=,digest=,size=}, config=json_text, docker_config=,
//                  on_progress=function(sent, total)})
//       -> {digest=, config_digest=, ref=, layer_uploaded=, config_uploaded=, uploaded_bytes=}
#include "engine/ext4/filesystem.hpp"
#include "engine/image/cache.hpp"
#include "engine/image/layer_writer.hpp"
#include "engine/image/push.hpp"
#include "engine/image/reference.hpp"
#include "engine/image/registry.hpp"
#include "engine/lua/binding.hpp"
#include "engine/lua/callback.hpp"
#include "engine/lua/stream.hpp"

namespace banger::lua {

// A pull with the cache it writes into (the Pull refers to it).
struct PullHandle {
  std::unique_ptr<image::BlobCache> cache;
  std::unique_ptr<image::Pull> pull;
  size_t layers = 0;
};

template <>
struct HandleTraits<PullHandle> {
  static constexpr const char* name = "banger.oci.pull";
  static std::string describe(const PullHandle& p) { return p.cache->dir(); }
};

namespace {

using namespace banger::image;

void push_ref(lua_State* L, const Reference& r) {
  lua_createtable(L, 0, 6);
  set_field(L, "registry", r.registry);
  set_field(L, "repository", r.repository);
  if (!r.tag.empty()) set_field(L, "tag", r.tag);
  if (!r.digest.empty()) set_field(L, "digest", r.digest);
  set_field(L, "api_host", r.api_host());
  set_field(L, "ref", r.str());
}

void push_descriptor(lua_State* L, const Descriptor& d) {
  lua_createtable(L, 0, 3);
  set_field(L, "digest", d.digest);
  set_field(L, "size", static_cast<lua_Integer>(d.size));
  if (!d.media_type.empty()) set_field(L, "media_type", d.media_type);
}

ClientOptions client_options(lua_State* L, int opts) {
  ClientOptions o;
  o.docker_config_dir = field_string(L, opts, "docker_config").value_or("");
  return o;
}

Platform platform_option(lua_State* L, int opts) {
  auto p = field_string(L, opts, "platform");
  return p ? parse_platform(*p) : Platform{};
}

int l_parse_ref(lua_State* L) {
  push_ref(L, parse_reference(check_string(L, 1)));
  return 1;
}

Resolved do_resolve(lua_State* L, int opts, const std::optional<BlobCache>& cache, Client& client) {
  Resolved r = client.resolve(platform_option(L, opts));
  if (cache) cache->put(r.digest, r.manifest);
  return r;
}

void push_resolved(lua_State* L, const Resolved& r, const std::optional<BlobCache>& cache) {
  lua_createtable(L, 0, 6);
  set_field(L, "ref", r.ref.str());
  set_field(L, "digest", r.digest);
  if (!r.index_digest.empty()) set_field(L, "index_digest", r.index_digest);
  set_field(L, "media_type", r.media_type);
  push_descriptor(L, r.config);
  if (cache) set_field(L, "path", cache->path(r.config.digest));
  lua_setfield(L, -2, "config");
  lua_createtable(L, static_cast<int>(r.layers.size()), 0);
  for (size_t i = 0; i < r.layers.size(); ++i) {
    push_descriptor(L, r.layers[i]);
    lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
  }
  lua_setfield(L, -2, "layers");
}

std::optional<BlobCache> cache_option(lua_State* L, int opts, bool required) {
  std::optional<std::string> dir;
  dir = field_string(L, opts, "cache");
  if (!dir) {
    if (required) throw Raise("oci: cache= is required");
    return std::nullopt;
  }
  return BlobCache(*dir);
}

int l_resolve(lua_State* L) {
  std::string text = check_string(L, 1);
  if (!lua_isnoneornil(L, 2)) check_table(L, 2);
  auto cache = cache_option(L, 2, false);
  Client client(parse_reference(text), client_options(L, 2));
  Resolved r = do_resolve(L, 2, cache, client);
  if (cache) fetch_blobs(*cache, {client.blob_request(r.config)});  // small: the importer needs it anyway
  push_resolved(L, r, cache);
  return 1;
}

// A descriptor from a Lua table {digest=, size=}.
Descriptor check_descriptor(lua_State* L, int idx, const char* what) {
  if (!lua_istable(L, idx)) throw Raise(std::string("oci.fetch: ") + what + " must be a table");
  Descriptor d;
  d.digest = field_string(L, idx, "digest").value_or("");
  auto size = field_int<std::uint64_t>(L, idx, "size");
  if (d.digest.empty() || !size) throw Raise(std::string("oci.fetch: ") + what + " needs digest= and size=");
  d.size = *size;
  d.media_type = field_string(L, idx, "media_type").value_or("");
  check_digest(d.digest, what);
  return d;
}

// The blob requests for the layers of arg 1 (a reference string, resolved
// here, or a resolved table), authenticated with the registry.
std::vector<BlobRequest> layer_requests(lua_State* L, const std::optional<BlobCache>& cache) {
  std::vector<Descriptor> layers;
  std::string text;
  if (lua_type(L, 1) == LUA_TSTRING) {
    text = check_string(L, 1);
  } else if (lua_istable(L, 1)) {
    text = field_string(L, 1, "ref").value_or("");
    if (text.empty()) throw Raise("oci.fetch: a resolved table needs ref=");
    if (!push_table_field(L, 1, "layers")) throw Raise("oci.fetch: a resolved table needs layers=");
    int li = lua_gettop(L);
    lua_Integer n = static_cast<lua_Integer>(lua_rawlen(L, li));
    for (lua_Integer i = 1; i <= n; ++i) {
      lua_rawgeti(L, li, i);
      layers.push_back(check_descriptor(L, lua_gettop(L), "layer"));
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  } else {
    raise_arg(L, 1, "string or table");
  }
  Client client(parse_reference(text), client_options(L, 2));
  if (layers.empty() && lua_type(L, 1) == LUA_TSTRING) {
    Resolved r = do_resolve(L, 2, cache, client);
    layers = r.layers;
  } else {
    client.prepare();
  }
  std::vector<BlobRequest> reqs;
  for (auto& d : layers) reqs.push_back(client.blob_request(d));
  return reqs;
}

FetchOptions fetch_options(lua_State* L) {
  FetchOptions fo;
  fo.parallel = field_int<int>(L, 2, "parallel", 1, 32).value_or(4);
  return fo;
}

int l_fetch(lua_State* L) {
  check_table(L, 2);
  auto cache = cache_option(L, 2, true);
  FetchOptions fo = fetch_options(L);
  std::vector<BlobRequest> reqs = layer_requests(L, cache);

  lua_settop(L, 2);
  ProgressFn progress;
  push_function_field(L, 2, "on_progress");  // 3
  if (Callback fn{L, 3}) {
    // Pull::wait calls this on our thread; an error in it ends the wait
    // (the pull's destructor stops the downloads) and reaches our caller.
    progress = [fn](const FetchProgress& p) {
      fn([&](lua_State* S) {
        lua_pushinteger(S, static_cast<lua_Integer>(p.done));
        lua_pushinteger(S, static_cast<lua_Integer>(p.total));
        return 2;
      });
    };
  }
  FetchResult r = fetch_blobs(*cache, reqs, fo, progress);
  lua_createtable(L, static_cast<int>(r.paths.size()), 2);
  for (size_t i = 0; i < r.paths.size(); ++i) {
    push_string(L, r.paths[i]);
    lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
  }
  set_field(L, "downloaded", static_cast<lua_Integer>(r.downloaded_blobs));
  set_field(L, "downloaded_bytes", static_cast<lua_Integer>(r.downloaded_bytes));
  return 1;
}

int l_pull(lua_State* L) {
  check_table(L, 2);
  auto cache = cache_option(L, 2, true);
  FetchOptions fo = fetch_options(L);
  std::vector<BlobRequest> reqs = layer_requests(L, cache);
  auto h = std::make_unique<PullHandle>();
  h->cache = std::make_unique<BlobCache>(std::move(*cache));
  h->layers = reqs.size();
  h->pull = std::make_unique<Pull>(*h->cache, std::move(reqs), fo);
  push_handle(L, std::move(h));
  return 1;
}

int l_pull_open(lua_State* L) {
  auto& h = check_handle<PullHandle>(L, 1);
  lua_Integer i = check_integer(L, 2);
  if (i < 1 || static_cast<size_t>(i) > h.layers) throw Raise("pull:open: no layer #" + std::to_string(i));
  push_handle(L, h.pull->open(static_cast<size_t>(i - 1)));
  return 1;
}

int l_pull_progress(lua_State* L) {
  FetchProgress p = check_handle<PullHandle>(L, 1).pull->progress();
  lua_pushinteger(L, static_cast<lua_Integer>(p.done));
  lua_pushinteger(L, static_cast<lua_Integer>(p.total));
  return 2;
}

int l_pull_wait(lua_State* L) {
  FetchResult r = check_handle<PullHandle>(L, 1).pull->wait();
  lua_createtable(L, static_cast<int>(r.paths.size()), 2);
  for (size_t i = 0; i < r.paths.size(); ++i) {
    push_string(L, r.paths[i]);
    lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
  }
  set_field(L, "downloaded", static_cast<lua_Integer>(r.downloaded_blobs));
  set_field(L, "downloaded_bytes", static_cast<lua_Integer>(r.downloaded_bytes));
  return 1;
}

int l_cache_prune(lua_State* L) {
  std::string dir = check_string(L, 1);
  bool dry = false;
  if (!lua_isnoneornil(L, 2)) {
    check_table(L, 2);
    dry = field_boolean(L, 2, "dry_run").value_or(false);
  }
  PruneResult r = prune(dir, dry);
  lua_createtable(L, 0, 2);
  set_field(L, "bytes", static_cast<lua_Integer>(r.bytes));
  set_field(L, "blobs", static_cast<lua_Integer>(r.blobs));
  return 1;
}

int l_build_layer(lua_State* L) {
  std::string rootfs = check_string(L, 1);
  std::string out = check_string(L, 2);
  if (!lua_isnoneornil(L, 3)) check_table(L, 3);
  lua_settop(L, 3);
  push_function_field(L, 3, "on_progress");  // 4
  std::function<void(const LayerWriteProgress&)> progress;
  if (Callback fn{L, 4}) {
    progress = [fn](const LayerWriteProgress& p) {
      fn([&](lua_State* S) {
        lua_pushinteger(S, static_cast<lua_Integer>(p.entries));
        lua_pushinteger(S, static_cast<lua_Integer>(p.tar_bytes));
        return 2;
      });
    };
  }
  auto fs = ext4::Filesystem::open(rootfs, false);
  LayerResult r = write_layer(*fs, out, progress);
  fs->close();
  lua_createtable(L, 0, 6);
  set_field(L, "digest", r.digest);
  set_field(L, "diff_id", r.diff_id);
  set_field(L, "size", static_cast<lua_Integer>(r.size));
  set_field(L, "tar_bytes", static_cast<lua_Integer>(r.tar_bytes));
  set_field(L, "entries", static_cast<lua_Integer>(r.entries));
  lua_createtable(L, static_cast<int>(r.skipped.size()), 0);
  for (size_t i = 0; i < r.skipped.size(); ++i) {
    push_string(L, r.skipped[i]);
    lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
  }
  lua_setfield(L, -2, "skipped");
  return 1;
}

int l_push(lua_State* L) {
  std::string text = check_string(L, 1);
  check_table(L, 2);
  std::string config = field_string(L, 2, "config").value_or("");
  if (config.empty()) throw Raise("oci.push: config= (the image config's JSON) is required");
  if (!push_table_field(L, 2, "layer")) throw Raise("oci.push: layer= is required");
  int li = lua_gettop(L);
  PushLayer layer;
  layer.path = field_string(L, li, "path").value_or("");
  layer.digest = field_string(L, li, "digest").value_or("");
  auto size = field_int<std::uint64_t>(L, li, "size");
  if (layer.path.empty() || layer.digest.empty() || !size) throw Raise("oci.push: layer needs path=, digest= and size=");
  layer.size = *size;
  lua_settop(L, 2);
  push_function_field(L, 2, "on_progress");  // 3
  PushProgressFn progress;
  if (Callback fn{L, 3}) {
    progress = [fn](std::uint64_t sent, std::uint64_t total) {
      fn([&](lua_State* S) {
        lua_pushinteger(S, static_cast<lua_Integer>(sent));
        lua_pushinteger(S, static_cast<lua_Integer>(total));
        return 2;
      });
    };
  }
  Client client(parse_reference(text), client_options(L, 2));
  PushResult r = push_image(client, layer, config, progress);
  lua_createtable(L, 0, 6);
  set_field(L, "ref", client.reference().str());
  set_field(L, "digest", r.digest);
  set_field(L, "config_digest", r.config_digest);
  set_field_bool(L, "layer_uploaded", r.layer_uploaded);
  set_field_bool(L, "config_uploaded", r.config_uploaded);
  set_field(L, "uploaded_bytes", static_cast<lua_Integer>(r.uploaded_bytes));
  return 1;
}

int open_oci(lua_State* L) {
  static const luaL_Reg pull_methods[] = {{"open", protect<l_pull_open>},
                                         {"progress", protect<l_pull_progress>},
                                         {"wait", protect<l_pull_wait>},
                                         {nullptr, nullptr}};
  define_handle<PullHandle>(L, pull_methods);
  define_handle<ByteSource>(L, nullptr);
  static const luaL_Reg fns[] = {{"parse_ref", protect<l_parse_ref>},
                                 {"resolve", protect<l_resolve>},
                                 {"fetch", protect<l_fetch>},
                                 {"pull", protect<l_pull>},
                                 {"cache_prune", protect<l_cache_prune>},
                                 {"build_layer", protect<l_build_layer>},
                                 {"push", protect<l_push>},
                                 {nullptr, nullptr}};
  luaL_newlib(L, fns);
  return 1;
}

}  // namespace
BANGER_LUA_MODULE(oci, open_oci);
}  // namespace banger::lua
