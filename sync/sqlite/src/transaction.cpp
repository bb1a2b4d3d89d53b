#include "kith/sync/sqlite/transaction.hpp"

#include <sqlite3.h>

namespace kith::sync::sqlite {
namespace {

// For destructors: a failure here cannot be reported, and a rollback that fails leaves the
// transaction to be rolled back by SQLite when the connection closes (or the process dies).
void exec_quietly(Database& db, const char* sql) noexcept {
  sqlite3_exec(db.handle(), sql, nullptr, nullptr, nullptr);
}

}  // namespace

Transaction::Transaction(Database& db) : db_(&db) { db.exec("BEGIN IMMEDIATE"); }

Transaction::~Transaction() {
  // SQLite may already have rolled back on its own (disk full, I/O error): then there is
  // nothing left to undo, and ROLLBACK would only fail.
  if (open_ && db_->in_transaction()) exec_quietly(*db_, "ROLLBACK");
}

void Transaction::commit() {
  if (!db_->in_transaction()) {
    open_ = false;
    db_->fail(SQLITE_ABORT, "committing a transaction that an earlier error rolled back");
  }
  db_->exec("COMMIT");
  open_ = false;
}

WriteScope::WriteScope(Database& db) : db_(&db), nested_(db.in_transaction()) {
  db.exec(nested_ ? "SAVEPOINT kith_write" : "BEGIN IMMEDIATE");
}

WriteScope::~WriteScope() {
  if (!open_ || !db_->in_transaction()) return;
  if (nested_) {
    // ROLLBACK TO keeps the savepoint (and the caller's transaction) open; RELEASE ends it.
    exec_quietly(*db_, "ROLLBACK TO kith_write");
    exec_quietly(*db_, "RELEASE kith_write");
  } else {
    exec_quietly(*db_, "ROLLBACK");
  }
}

void WriteScope::commit() {
  if (!db_->in_transaction()) {
    open_ = false;
    db_->fail(SQLITE_ABORT, "finishing a write that an earlier error rolled back");
  }
  db_->exec(nested_ ? "RELEASE kith_write" : "COMMIT");
  open_ = false;
}

ReadTransaction::ReadTransaction(Database& db) : db_(&db) { db.exec("BEGIN DEFERRED"); }

ReadTransaction::~ReadTransaction() {
  if (db_->in_transaction()) exec_quietly(*db_, "ROLLBACK");
}

}  // namespace kith::sync::sqlite
