#pragma once
// The state store: one SQLite file in WAL mode. Many banger processes open
// it at once; writers serialise through SQLite's own lock (BEGIN IMMEDIATE
// plus a busy timeout), never through a banger-wide lock. The schema is
// versioned with PRAGMA user_version and migrated on open (schema.cpp).
#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace banger::store {

using Value = std::variant<std::monostate, std::int64_t, double, std::string>;

struct Result {
  std::vector<std::string> columns;
  std::vector<std::vector<Value>> rows;
  std::int64_t changes = 0;
  std::int64_t last_insert_id = 0;
};

class Db {
 public:
  // Opens (creating it 0600 if needed) and migrates to the latest schema.
  static std::unique_ptr<Db> open(const std::string& path, int busy_timeout_ms = 15000);
  // Opens an existing file for reading only: never creates, migrates or
  // writes it (shell completion reads names without touching state).
  static std::unique_ptr<Db> open_readonly(const std::string& path, int busy_timeout_ms = 200);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  Result query(std::string_view sql, const std::vector<Value>& params = {});
  void exec_script(std::string_view sql);  // several statements, no parameters
  int schema_version();
  const std::string& path() const { return path_; }

 private:
  Db(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  [[noreturn]] void fail(std::string_view what, int rc);
  sqlite3* db_;
  std::string path_;
};

// Applies the migrations in schema.cpp that are newer than the file's version.
void migrate(Db& db);
int latest_schema_version();

}  // namespace banger::store
