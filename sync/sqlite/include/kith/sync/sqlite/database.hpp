// A thin RAII layer over the SQLite C API (library kith_sqlite), shared by the device's local
// store (kith_sync) and kithd's database (kith_server): a connection that closes itself,
// statements that finalize themselves and are reset after each use (statement.hpp), and
// transactions that roll back unless committed (transaction.hpp). No header here includes
// <sqlite3.h>; code that needs the raw handle includes it in its own .cpp.
//
// Every failure is a sqlite::Error: a SyncError with code kStore whose message starts with a
// sentence a person can act on ("The local store is damaged ...") and ends with the file, what
// was being done and SQLite's own message. How that sentence names the database is the
// connection's Wording, so that the server's errors speak of the server database.
//
// Not thread-safe: one thread at a time per Database (the connection is opened in SQLite's
// multi-thread mode, without its own mutex); separate Databases may be used concurrently.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "kith/sync/error.hpp"
#include "kith/sync/sqlite/statement.hpp"

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

// How error messages name the database and its host, written to sit mid-sentence (the first
// letter is capitalised where a sentence starts with it). The defaults are the device's local
// store, the first user; kith_sync's tests check those sentences word for word.
struct Wording {
  std::string name = "the local store";  // "The local store is damaged; ..."
  std::string kind = "a Kith store";     // "The file is not a Kith store ..."
  // What a person does about a damaged file: "The local store is damaged; <if_damaged>".
  std::string if_damaged = "remove it and sync again to rebuild it from the server";
  std::string host = "the device";  // "The device ran out of memory while using ..."
};

// The sentence that explains a result code to a person, e.g. "The disk is full; ...".
std::string describe(int result_code, const Wording& wording = {});

// One connection to one database file, opened read-write and created when missing.
class Database {
 public:
  // Throws Error (e.g. the folder does not exist). Opening never reads the file: a file that is
  // not a database is only detected by the first statement.
  // `vfs`: the name of a registered SQLite VFS (sqlite3_vfs_register), or null for the default.
  explicit Database(const std::filesystem::path& path, Wording wording = {},
                    const char* vfs = nullptr);
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
  const Wording& wording() const noexcept { return wording_; }

  // Throws Error for `result_code`, explaining it and naming what was being `doing`.
  [[noreturn]] void fail(int result_code, std::string_view doing) const;

 private:
  sqlite3* db_ = nullptr;
  std::string path_;
  Wording wording_;
  std::unordered_map<std::string, std::unique_ptr<Statement>> cache_;
};

// Creates a missing database file readable by its owner only (SQLite gives the -wal and -shm
// files the database file's mode; left to SQLite, the umask decides, usually 0644). Does nothing
// when the file exists; any other failure (a missing folder) is left for SQLite to report.
void create_owner_only(const std::filesystem::path& path);

}  // namespace kith::sync::sqlite
