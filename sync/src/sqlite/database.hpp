// A thin RAII layer over the SQLite C API, private to kith_sync (public headers never include
// <sqlite3.h>): a connection that closes itself, statements that finalize themselves and are
// reset after each use, and transactions that roll back unless committed (transaction.hpp).
//
// Every failure is a sqlite::Error: a SyncError with code kStore whose message starts with a
// sentence a person can act on ("The local store is damaged ...") and ends with the file, what
// was being done and SQLite's own message. Not thread-safe: one thread at a time per Database
// (the connection is opened in SQLite's multi-thread mode, without its own mutex).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "kith/sync/error.hpp"
#include "statement.hpp"

struct sqlite3;

namespace kith::sync::sqlite {

class Error : public SyncError {
 public:
  Error(int result_code, const std::string& message)
      : SyncError(SyncErrorCode::kStore, message), result_code_(result_code) {}
  // SQLite's extended result code, e.g. SQLITE_CONSTRAINT_FOREIGNKEY.
  int result_code() const noexcept { return result_code_; }
  // The primary result code (the low byte), e.g. SQLITE_CONSTRAINT.
  int primary_code() const noexcept { return result_code_ & 0xff; }

 private:
  int result_code_;
};

// The sentence that explains a result code to a person, e.g. "the disk is full".
std::string_view describe(int result_code) noexcept;

// One connection to one database file, opened read-write and created when missing.
class Database {
 public:
  // Throws Error (e.g. the folder does not exist). Opening never reads the file: a file that is
  // not a database is only detected by the first statement.
  explicit Database(const std::filesystem::path& path);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs one or more statements that return no rows.
  void exec(const char* sql);
  // A prepared statement for `sql`, prepared once per connection and reused; it is reset and
  // its bindings cleared when the returned handle goes out of scope.
  ScopedStatement query(const std::string& sql);
  // The integer value of a pragma that returns one, e.g. "user_version".
  std::int64_t pragma_int(std::string_view name);

  // True between BEGIN and COMMIT/ROLLBACK (also after SQLite rolled back on its own, false).
  bool in_transaction() const noexcept;
  // Rows changed by the most recent INSERT, UPDATE or DELETE.
  std::int64_t changes() const noexcept;

  sqlite3* handle() const noexcept { return db_; }
  const std::string& path() const noexcept { return path_; }

  // Throws Error for `result_code`, explaining it and naming what was being `doing`.
  [[noreturn]] void fail(int result_code, std::string_view doing) const;

 private:
  sqlite3* db_ = nullptr;
  std::string path_;
  std::unordered_map<std::string, std::unique_ptr<Statement>> cache_;
};

}  // namespace kith::sync::sqlite
