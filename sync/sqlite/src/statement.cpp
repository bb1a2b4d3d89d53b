#include "kith/sync/sqlite/statement.hpp"

#include <sqlite3.h>

#include "kith/sync/sqlite/database.hpp"

namespace kith::sync::sqlite {

Statement::Statement(Database& db, std::string_view sql) : db_(&db), sql_(sql) {
  const int rc = sqlite3_prepare_v3(db.handle(), sql_.data(), static_cast<int>(sql_.size()),
                                    SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt_);
    stmt_ = nullptr;
    db.fail(rc, "preparing '" + sql_.substr(0, 40) + "...'");
  }
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

void Statement::bind(int index, std::int64_t value) {
  const int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK) db_->fail(rc, "binding a parameter");
}

void Statement::bind(int index, crypto::ByteView value) {
  bind_blob(index, value, /*borrowed=*/false);
}

void Statement::bind_borrowed(int index, crypto::ByteView value) {
  bind_blob(index, value, /*borrowed=*/true);
}

void Statement::bind_blob(int index, crypto::ByteView value, bool borrowed) {
  // A null data pointer would bind NULL, which a NOT NULL column refuses: an empty op body is
  // still a value.
  const int rc = value.empty() ? sqlite3_bind_zeroblob(stmt_, index, 0)
                               : sqlite3_bind_blob64(stmt_, index, value.data(), value.size(),
                                                     borrowed ? SQLITE_STATIC : SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) db_->fail(rc, "binding a parameter");
}

void Statement::bind(int index, std::string_view value) {
  const char* data = value.empty() ? "" : value.data();
  const int rc =
      sqlite3_bind_text64(stmt_, index, data, value.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK) db_->fail(rc, "binding a parameter");
}

bool Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  // The statement's SQL says what was being done; keep the message short.
  db_->fail(rc, "running '" + sql_.substr(0, 40) + "...'");
}

void Statement::run() {
  while (step()) {
  }
}

void Statement::reset() noexcept {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

bool Statement::is_null(int column) const noexcept {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

std::int64_t Statement::column_int(int column) const noexcept {
  return sqlite3_column_int64(stmt_, column);
}

crypto::ByteView Statement::column_view(int column) const noexcept {
  // Ask for the pointer first, then the size (SQLite's documented order).
  const void* data = sqlite3_column_blob(stmt_, column);
  const int size = sqlite3_column_bytes(stmt_, column);
  if (!data || size <= 0) return {};
  return {static_cast<const std::uint8_t*>(data), static_cast<std::size_t>(size)};
}

crypto::Bytes Statement::column_bytes(int column) const {
  crypto::ByteView view = column_view(column);
  return crypto::Bytes(view.begin(), view.end());
}

std::string Statement::column_text(int column) const {
  const unsigned char* data = sqlite3_column_text(stmt_, column);
  const int size = sqlite3_column_bytes(stmt_, column);
  if (!data || size <= 0) return {};
  return std::string(reinterpret_cast<const char*>(data), static_cast<std::size_t>(size));
}

}  // namespace kith::sync::sqlite
