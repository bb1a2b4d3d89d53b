// Transactions over a sqlite::Database, after SQLiteCpp's Transaction: the constructor begins,
// commit() commits, and the destructor rolls back whatever was not committed without throwing.
// A ReadTransaction gives several queries one consistent snapshot. Part of kith_sqlite (see
// database.hpp). Not thread-safe.
#pragma once

#include "kith/sync/sqlite/database.hpp"

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

// BEGIN (deferred) ... ROLLBACK: the queries run inside see one snapshot of the file, taken at
// the first read; in WAL mode a writer on another connection neither blocks them nor shows
// them half a transaction. Ending with ROLLBACK rather than COMMIT makes a read-only intent
// explicit: anything written inside is discarded.
class ReadTransaction {
 public:
  // Throws Error, e.g. when a transaction is already open on this connection.
  explicit ReadTransaction(Database& db);
  ~ReadTransaction();
  ReadTransaction(const ReadTransaction&) = delete;
  ReadTransaction& operator=(const ReadTransaction&) = delete;

 private:
  Database* db_;
};

}  // namespace kith::sync::sqlite
