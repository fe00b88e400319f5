// The state schema and its migrations. A migration is appended, never
// edited: a file written by an older banger is upgraded step by step.
//
// What a VM *is* lives in `vms`; what is *currently true* of a running VM
// (pid, tap, sockets) lives in the VM's handles.json, with the teardown
// identity mirrored into the row's `handle_*` columns so a VM can be cleaned
// up after a crash even if the scratch file is lost (docs/architecture.md).
#include <array>

#include "engine/core/error.hpp"
#include "engine/store/db.hpp"

namespace banger::store {
namespace {

struct Migration {
  int version;
  const char* sql;
};

constexpr std::array migrations{
    Migration{1, R"sql(
CREATE TABLE vms (
  id            TEXT PRIMARY KEY,
  name          TEXT NOT NULL UNIQUE,
  image         TEXT NOT NULL,
  kernel        TEXT NOT NULL,
  driver        TEXT NOT NULL,
  vcpus         INTEGER NOT NULL CHECK (vcpus > 0),
  memory_mib    INTEGER NOT NULL CHECK (memory_mib > 0),
  disk_mib      INTEGER NOT NULL CHECK (disk_mib > 0),
  work_disk_mib INTEGER NOT NULL CHECK (work_disk_mib > 0),
  nat           INTEGER NOT NULL DEFAULT 0,
  ip            TEXT UNIQUE,
  mac           TEXT,
  state         TEXT NOT NULL CHECK (state IN ('creating','created','starting','running','stopping','stopped','error')),
  last_error    TEXT,
  vm_dir        TEXT NOT NULL,
  handle_pid        INTEGER,
  handle_cmdline    TEXT,
  handle_tap        TEXT,
  handle_api_socket TEXT,
  handle_agent_socket TEXT,
  created_at    TEXT NOT NULL,
  updated_at    TEXT NOT NULL,
  started_at    TEXT
);
CREATE TABLE images (
  name         TEXT PRIMARY KEY,
  source_ref   TEXT,
  digest       TEXT,
  size_bytes   INTEGER NOT NULL DEFAULT 0,
  rootfs_path  TEXT NOT NULL,
  kernel       TEXT,
  is_default   INTEGER NOT NULL DEFAULT 0,
  created_at   TEXT NOT NULL
);
CREATE UNIQUE INDEX images_one_default ON images(is_default) WHERE is_default = 1;
CREATE TABLE kernels (
  name         TEXT PRIMARY KEY,
  distro       TEXT,
  arch         TEXT NOT NULL,
  version      TEXT NOT NULL,
  sha256       TEXT NOT NULL,
  source       TEXT,
  path         TEXT NOT NULL,
  imported_at  TEXT NOT NULL
);
)sql"},
    // Two VMs never share a guest address, whatever a racing writer or a
    // hand-edited database does (allocation already runs in a write
    // transaction; this makes a collision an error instead of a silent clash).
    Migration{2, R"sql(
CREATE UNIQUE INDEX vms_unique_ip ON vms(ip) WHERE ip IS NOT NULL;
)sql"},
    // What banger's initramfs executes in the image's root (banger.init=):
    // NULL for the image's own /sbin/init, banger-init for images without one.
    Migration{3, R"sql(
ALTER TABLE images ADD COLUMN init TEXT;
)sql"},
    // The host objects a VM may own right now, as a JSON object: each is
    // recorded *before* it is made and forgotten only once it is gone, so a
    // banger killed at any instant leaves a record the next command finishes
    // (lua/stdlib/banger/host_objects.lua). Rows of VMs that may be running
    // while this runs get what the older code derived from the row: the tap
    // (bgtap + the first 10 characters of the id) and its NAT rules.
    Migration{4, R"sql(
ALTER TABLE vms ADD COLUMN host_objects TEXT NOT NULL DEFAULT '{}';
UPDATE vms SET host_objects = CASE WHEN nat = 1
    THEN json_object('tap', 'bgtap' || substr(id, 1, 10), 'nat', 'bgtap' || substr(id, 1, 10))
    ELSE json_object('tap', 'bgtap' || substr(id, 1, 10)) END
  WHERE ip IS NOT NULL AND state IN ('creating', 'starting', 'running', 'stopping');
)sql"},
    // Snapshots of VMs (lua/stdlib/banger/snapshots.lua). `restore` is a
    // JSON object with what a restore needs and checks (the machine's
    // command line, the RAM mode, the disk layers, the identities of the
    // kernel and image files, banger's version). A snapshot in state
    // 'creating' whose writer is gone is undone by reconcile. snapshot_users
    // says who depends on a snapshot's files: a VM restored from it or whose
    // disks continue above its layers, or a later snapshot whose layers do.
    Migration{5, R"sql(
CREATE TABLE snapshots (
  id            TEXT PRIMARY KEY,
  name          TEXT NOT NULL UNIQUE,
  kind          TEXT NOT NULL CHECK (kind IN ('user', 'fork', 'warm')),
  state         TEXT NOT NULL CHECK (state IN ('creating', 'ready')),
  source_vm     TEXT NOT NULL,
  source_name   TEXT NOT NULL,
  driver        TEXT NOT NULL,
  image         TEXT NOT NULL,
  kernel        TEXT NOT NULL,
  vcpus         INTEGER NOT NULL,
  memory_mib    INTEGER NOT NULL,
  disk_mib      INTEGER NOT NULL,
  work_disk_mib INTEGER NOT NULL,
  nat           INTEGER NOT NULL DEFAULT 0,
  restore       TEXT NOT NULL DEFAULT '{}',
  warm_key      TEXT,
  size_bytes    INTEGER NOT NULL DEFAULT 0,
  created_at    TEXT NOT NULL,
  last_used_at  TEXT
);
CREATE UNIQUE INDEX snapshots_one_warm ON snapshots(warm_key) WHERE warm_key IS NOT NULL;
CREATE TABLE snapshot_users (
  snapshot_id TEXT NOT NULL,
  user_kind   TEXT NOT NULL CHECK (user_kind IN ('vm', 'snapshot')),
  user_id     TEXT NOT NULL,
  PRIMARY KEY (snapshot_id, user_kind, user_id)
);
)sql"},
    // Host ports forwarded to a VM's ports (banger.forwards): part of the
    // VM, removed with it. One host address and port per protocol is one
    // VM's, so a second forward of it fails naming the VM that has it.
    Migration{6, R"sql(
CREATE TABLE forwards (
  vm_id        TEXT NOT NULL,
  proto        TEXT NOT NULL CHECK (proto IN ('tcp', 'udp')),
  host_address TEXT NOT NULL,
  host_port    INTEGER NOT NULL CHECK (host_port BETWEEN 1 AND 65535),
  guest_port   INTEGER NOT NULL CHECK (guest_port BETWEEN 1 AND 65535),
  created_at   TEXT NOT NULL,
  UNIQUE (proto, host_address, host_port)
);
CREATE INDEX forwards_by_vm ON forwards(vm_id);
)sql"},
    // Who a VM belongs to (banger.sandbox): 'api:<uid>' for sandboxes made
    // through 'banger serve', 'session:<pid>:<starttime>' for those that die
    // with a process (reaped once it is gone). NULL for the CLI's own VMs.
    // Written in the insert, before any file of the VM exists.
    Migration{7, R"sql(
ALTER TABLE vms ADD COLUMN owner TEXT;
CREATE INDEX vms_by_owner ON vms(owner);
)sql"},
    // Egress allow-lists (banger.egress): the names a VM may resolve and
    // reach, a JSON array of patterns; '[]' is no list (today's networking).
    // A snapshot keeps its VM's, so a restore or a fork is no way out of it.
    Migration{8, R"sql(
ALTER TABLE vms ADD COLUMN allow_hosts TEXT NOT NULL DEFAULT '[]';
ALTER TABLE snapshots ADD COLUMN allow_hosts TEXT NOT NULL DEFAULT '[]';
)sql"},
};

}  // namespace

int latest_schema_version() { return migrations.back().version; }

namespace {
void refuse_newer(Db& db, int version) {
  if (version > latest_schema_version()) {
    throw Error("ENOTSUP", "the state database " + db.path() + " has schema version " + std::to_string(version) +
                               ", newer than this banger understands (" + std::to_string(latest_schema_version()) +
                               ")");
  }
}
}  // namespace

void migrate(Db& db) {
  int version = db.schema_version();
  refuse_newer(db, version);
  if (version == latest_schema_version()) return;
  // BEGIN IMMEDIATE takes the write lock first, so two processes opening a
  // fresh file do not both run the same migration; the version is re-read
  // under the lock.
  db.exec_script("BEGIN IMMEDIATE");
  try {
    int current = db.schema_version();
    refuse_newer(db, current);
    for (const Migration& m : migrations) {
      if (m.version <= current) continue;
      db.exec_script(m.sql);
      db.exec_script("PRAGMA user_version = " + std::to_string(m.version));
    }
    db.exec_script("COMMIT");
  } catch (...) {
    try {
      db.exec_script("ROLLBACK");
    } catch (...) {
      // The original error is the one worth reporting.
    }
    throw;
  }
}

}  // namespace banger::store
