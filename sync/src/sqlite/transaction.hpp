// Transactions over a sqlite::Database, after SQLiteCpp's Transaction: the constructor begins,
// commit() commits, and the destructor rolls back whatever was not committed without throwing.
// Private to kith_sync. Not thread-safe.
#pragma once

#include "database.hpp"

namespace kith::sync::sqlite {

// BEGIN IMMEDIATE ... COMMIT. IMMEDIATE takes the write lock up front, so a transaction that
// reads and then writes cannot fail half-way because another connection wrote in between.
class Transaction {
 public:
  // Throws Error, e.g. when a transaction is already open or another process holds the lock.
  explicit Transaction(Database& db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  // Throws Error when COMMIT fails or SQLite already rolled the transaction back after an
  // error; the destructor then rolls back what is left.
  void commit();

 private:
  Database* db_;
  bool open_ = true;
};

// One multi-statement write that is all-or-nothing: a SAVEPOINT when the caller has a
// transaction open (so the write joins it, and a failure undoes only this write), or its own
// IMMEDIATE transaction when none is open.
class WriteScope {
 public:
  explicit WriteScope(Database& db);
  ~WriteScope();
  WriteScope(const WriteScope&) = delete;
  WriteScope& operator=(const WriteScope&) = delete;

  void commit();

 private:
  Database* db_;
  bool nested_;
  bool open_ = true;
};

}  // namespace kith::sync::sqlite
