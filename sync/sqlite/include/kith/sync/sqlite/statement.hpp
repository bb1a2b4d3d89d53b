// A prepared SQLite statement that finalizes itself, and a scoped handle that resets a reused
// statement when done so that it never holds a read snapshot between calls (kith_sqlite, see
// database.hpp). Not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "kith/crypto/bytes.hpp"

struct sqlite3_stmt;

namespace kith::sync::sqlite {

class Database;

class Statement {
 public:
  // Throws Error when `sql` does not compile (or the file is not a database).
  Statement(Database& db, std::string_view sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Parameters are 1-based. Values are copied, so a temporary argument is safe. An empty blob
  // or string binds a zero-length value, never NULL.
  void bind(int index, std::int64_t value);
  void bind(int index, crypto::ByteView value);
  void bind(int index, std::string_view value);
  // Not copied: `value` must stay alive and unchanged until reset() (a ScopedStatement's end).
  // For large values bound in a hot loop, such as the server's op bodies.
  void bind_borrowed(int index, crypto::ByteView value);

  // Runs to the next row: true when a row is ready, false when the statement is done.
  bool step();
  // Runs a statement that returns no rows to completion.
  void run();
  // Ready to run again with no parameters bound. Never throws (an earlier step's error was
  // already reported by step()).
  void reset() noexcept;

  // Columns are 0-based and read the current row.
  bool is_null(int column) const noexcept;
  std::int64_t column_int(int column) const noexcept;
  // Valid until the next step() or reset().
  crypto::ByteView column_view(int column) const noexcept;
  crypto::Bytes column_bytes(int column) const;
  std::string column_text(int column) const;

 private:
  void bind_blob(int index, crypto::ByteView value, bool borrowed);
  Database* db_;
  sqlite3_stmt* stmt_ = nullptr;
  std::string sql_;
};

// A cached statement borrowed for one use; resets it (and clears its bindings) on destruction.
class ScopedStatement {
 public:
  explicit ScopedStatement(Statement& statement) noexcept : statement_(&statement) {}
  ~ScopedStatement() { statement_->reset(); }
  ScopedStatement(const ScopedStatement&) = delete;
  ScopedStatement& operator=(const ScopedStatement&) = delete;

  Statement* operator->() const noexcept { return statement_; }
  Statement& operator*() const noexcept { return *statement_; }

 private:
  Statement* statement_;
};

}  // namespace kith::sync::sqlite
