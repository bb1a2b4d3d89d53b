#include "kith/sync/sqlite/database.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <utility>

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <unistd.h>
#endif

namespace kith::sync::sqlite {

namespace {

// "the local store" -> "The local store": the wording is written to sit mid-sentence.
std::string sentence(std::string_view words) {
  std::string out(words);
  if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}

}  // namespace

std::string describe(int result_code, const Wording& wording) {
  const std::string& name = wording.name;
  switch (result_code & 0xff) {
    case SQLITE_NOTADB:
      return "The file is not " + wording.kind + " (it is not an SQLite database)";
    case SQLITE_CORRUPT:
      return sentence(name) + " is damaged; " + wording.if_damaged;
    case SQLITE_FULL:
      return "The disk is full; free some space and try again";
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return "Another process is using " + name + "; close it and try again";
    case SQLITE_READONLY:
      return sentence(name) + " or its folder is read-only";
    case SQLITE_CANTOPEN:
      return sentence(name) + " cannot be opened; check that its folder exists and is writable";
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return sentence(name) + " may not be accessed with the current permissions";
    case SQLITE_IOERR:
      return "Reading or writing " + name + " failed (a disk or file system error)";
    case SQLITE_NOMEM:
      return sentence(wording.host) + " ran out of memory while using " + name;
    case SQLITE_CONSTRAINT:
      return sentence(name) + " refused a write that would break its consistency";
    case SQLITE_TOOBIG:
      return "A value is too large for " + name;
    default:
      return sentence(name) + " failed";
  }
}

Database::Database(const std::filesystem::path& path, Wording wording, const char* vfs)
    : path_(path.string()), wording_(std::move(wording)) {
  // NOMUTEX: one thread at a time per connection (documented), so SQLite's own mutex is waste.
  // EXRESCODE: extended result codes, so a foreign-key failure can be told from another one.
  const int flags =
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  const int rc = sqlite3_open_v2(path_.c_str(), &db_, flags, vfs);
  if (rc != SQLITE_OK) {
    // Even on failure SQLite usually allocates a handle that carries the message.
    std::string detail = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw Error(rc, describe(rc, wording_) + " (" + path_ + ": opening: " + detail + ")");
  }
  sqlite3_extended_result_codes(db_, 1);
}

Database::~Database() {
  // Statements first: a connection with live statements cannot close.
  cache_.clear();
  // The last connection to close checkpoints the WAL into the database and deletes it.
  sqlite3_close_v2(db_);
}

void Database::exec(const char* sql) {
  char* message = nullptr;
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &message);
  if (rc != SQLITE_OK) {
    std::string detail = message ? message : sqlite3_errstr(rc);
    sqlite3_free(message);
    // The first words of the SQL say which step failed without flooding the message.
    std::string what(sql, std::min<std::size_t>(std::char_traits<char>::length(sql), 40));
    for (char& c : what) {
      if (std::isspace(static_cast<unsigned char>(c))) c = ' ';
    }
    throw Error(
        rc, describe(rc, wording_) + " (" + path_ + ": running '" + what + "...': " + detail + ")");
  }
}

ScopedStatement Database::query(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    it = cache_.emplace(sql, std::make_unique<Statement>(*this, sql)).first;
  }
  return ScopedStatement(*it->second);
}

std::int64_t Database::pragma_int(std::string_view name) {
  Statement statement(*this, "PRAGMA " + std::string(name));
  if (!statement.step()) fail(SQLITE_CORRUPT, "reading PRAGMA " + std::string(name));
  return statement.column_int(0);
}

bool Database::in_transaction() const noexcept { return sqlite3_get_autocommit(db_) == 0; }

std::int64_t Database::changes() const noexcept { return sqlite3_changes64(db_); }

void Database::fail(int result_code, std::string_view doing) const {
  // sqlite3_errmsg describes the most recent failure on this connection, which is this one
  // unless the caller passes a code of its own (then the generic text for that code is used).
  const bool current = sqlite3_extended_errcode(db_) == result_code;
  std::string detail = current ? sqlite3_errmsg(db_) : sqlite3_errstr(result_code);
  throw Error(result_code, describe(result_code, wording_) + " (" + path_ + ": " +
                               std::string(doing) + ": " + detail + ")");
}

void create_owner_only(const std::filesystem::path& path) {
#if defined(__unix__) || defined(__APPLE__)
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) ::close(fd);
#else
  (void)path;
#endif
}

}  // namespace kith::sync::sqlite
