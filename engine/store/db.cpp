#include "engine/store/db.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>

#include "engine/core/error.hpp"
#include "engine/core/unique_fd.hpp"

namespace banger::store {
namespace {

std::string code_for(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return "EBUSY";
    case SQLITE_CONSTRAINT: return "EEXIST";
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return "ECORRUPT";
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY: return "EACCES";
    case SQLITE_FULL: return "ENOSPC";
    default: return "EIO";
  }
}

class Statement {
 public:
  Statement(sqlite3* db, std::string_view sql, const char** tail = nullptr) {
    rc_ = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &st_, tail);
  }
  ~Statement() { sqlite3_finalize(st_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  sqlite3_stmt* get() const { return st_; }
  int rc() const { return rc_; }

 private:
  sqlite3_stmt* st_ = nullptr;
  int rc_;
};

// One SQLite connection to `name` (a path or a file: URI) with `flags`,
// waiting up to busy_timeout_ms for locks and reporting extended codes;
// errors name `path`.
sqlite3* connect(const std::string& name, int flags, const std::string& path, int busy_timeout_ms) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(name.c_str(), &raw, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = raw ? sqlite3_errmsg(raw) : "out of memory";
    sqlite3_close(raw);
    throw Error(code_for(rc), "open database: " + msg + " (" + path + ")");
  }
  sqlite3_busy_timeout(raw, busy_timeout_ms);
  sqlite3_extended_result_codes(raw, 1);
  return raw;
}

}  // namespace

void Db::fail(std::string_view what, int rc) {
  throw Error(code_for(rc), std::string(what) + ": " + sqlite3_errmsg(db_) + " (" + path_ + ")");
}

std::unique_ptr<Db> Db::open(const std::string& path, int busy_timeout_ms) {
  // Create the file ourselves so it is 0600 from birth, whatever the umask.
  if (!UniqueFd(::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600)))
    throw Error::last("open database", path);

  std::unique_ptr<Db> db(new Db(
      connect(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_FULLMUTEX, path, busy_timeout_ms), path));
  // Switching a fresh file to WAL needs a moment of exclusive access, and
  // SQLite answers a concurrent switch with SQLITE_BUSY without consulting
  // the busy handler: retry it, as many processes may open a new database
  // at once.
  for (int attempt = 0;; ++attempt) {
    try {
      db->exec_script("PRAGMA journal_mode=WAL");
      break;
    } catch (const Error& e) {
      if (e.code() != "EBUSY" || attempt >= 200) throw;
      ::usleep(10000 + 1000 * (attempt % 10));
    }
  }
  db->exec_script("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;");
  migrate(*db);
  return db;
}

namespace {

// SQLite's URI form of a path: everything but unreserved characters and
// '/' percent-encoded, so '?', '#' and '%' in a path stay part of it.
std::string file_uri(const std::string& path) {
  static const char* hex = "0123456789ABCDEF";
  std::string out = "file:";
  for (unsigned char c : path) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace

std::unique_ptr<Db> Db::open_readonly(const std::string& path, int busy_timeout_ms) {
  // With no -wal file, every committed change is in the main file; reading
  // it as immutable then needs no -wal/-shm, so none is created. A writer
  // that starts meanwhile can only make this read fail (SQLITE_CORRUPT or
  // BUSY), never change the file. With a -wal, the normal read-only open
  // (its -shm exists too) sees the latest commits.
  struct stat st{};
  bool has_wal = ::lstat((path + "-wal").c_str(), &st) == 0;
  std::string name = has_wal ? path : file_uri(path) + "?immutable=1";
  int flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_FULLMUTEX | (has_wal ? 0 : SQLITE_OPEN_URI);
  if (::lstat(path.c_str(), &st) != 0) throw Error::last("open database", path);
  return std::unique_ptr<Db>(new Db(connect(name, flags, path, busy_timeout_ms), path));
}

Db::~Db() { sqlite3_close_v2(db_); }

void Db::exec_script(std::string_view sql) {
  std::string s(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    throw Error(code_for(rc), "sql: " + msg + " (" + path_ + ")");
  }
}

Result Db::query(std::string_view sql, const std::vector<Value>& params) {
  Statement st(db_, sql);
  if (st.rc() != SQLITE_OK) fail("prepare", st.rc());
  if (!st.get()) return {};
  int expected = sqlite3_bind_parameter_count(st.get());
  if (expected != static_cast<int>(params.size())) {
    throw Error("EINVAL", "sql: statement takes " + std::to_string(expected) + " parameters, got " +
                              std::to_string(params.size()));
  }
  for (size_t i = 0; i < params.size(); ++i) {
    int idx = static_cast<int>(i + 1);
    int brc = std::visit(
        [&](const auto& v) -> int {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::monostate>) return sqlite3_bind_null(st.get(), idx);
          if constexpr (std::is_same_v<T, std::int64_t>) return sqlite3_bind_int64(st.get(), idx, v);
          if constexpr (std::is_same_v<T, double>) return sqlite3_bind_double(st.get(), idx, v);
          if constexpr (std::is_same_v<T, std::string>)
            return sqlite3_bind_text64(st.get(), idx, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
        },
        params[i]);
    if (brc != SQLITE_OK) fail("bind", brc);
  }
  Result res;
  int ncol = sqlite3_column_count(st.get());
  for (int c = 0; c < ncol; ++c) res.columns.emplace_back(sqlite3_column_name(st.get(), c));
  for (;;) {
    int rc = sqlite3_step(st.get());
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) fail("step", rc);
    std::vector<Value> row;
    row.reserve(static_cast<size_t>(ncol));
    for (int c = 0; c < ncol; ++c) {
      switch (sqlite3_column_type(st.get(), c)) {
        case SQLITE_INTEGER: row.emplace_back(static_cast<std::int64_t>(sqlite3_column_int64(st.get(), c))); break;
        case SQLITE_FLOAT: row.emplace_back(sqlite3_column_double(st.get(), c)); break;
        case SQLITE_NULL: row.emplace_back(std::monostate{}); break;
        default: {
          const auto* p = reinterpret_cast<const char*>(sqlite3_column_blob(st.get(), c));
          row.emplace_back(std::string(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(st.get(), c))));
        }
      }
    }
    res.rows.push_back(std::move(row));
  }
  res.changes = sqlite3_changes64(db_);
  res.last_insert_id = sqlite3_last_insert_rowid(db_);
  return res;
}

int Db::schema_version() {
  Result r = query("PRAGMA user_version");
  return static_cast<int>(std::get<std::int64_t>(r.rows.at(0).at(0)));
}

}  // namespace banger::store
