// The WAL-buffering VFS (sqlite_wal_buffer.hpp): a transaction's frames reach the file in a few
// writes, and nothing a synchronous = FULL connection commits is hidden from another connection,
// lost by a process killed after the commit, or unreadable by the writing transaction itself.
#include "sqlite_wal_buffer.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "kith/sync/sqlite/database.hpp"
#include "support/temp_dir.hpp"

namespace kith::server {
namespace {

namespace sqlite = sync::sqlite;
using crypto::Bytes;

// A blob of `size` bytes that depends on `n`, so that a row read back can be told from another.
Bytes blob(std::int64_t n, std::size_t size) {
  Bytes out(size);
  std::uint64_t x = static_cast<std::uint64_t>(n) * 0x9E3779B97F4A7C15ull + 1;
  for (auto& b : out) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = static_cast<std::uint8_t>(x);
  }
  return out;
}

// A connection through the buffering VFS, in WAL mode with synchronous = FULL.
std::unique_ptr<sqlite::Database> open_buffered(const std::filesystem::path& file) {
  auto db = std::make_unique<sqlite::Database>(file, sqlite::Wording{}, buffered_wal_vfs());
  db->exec("PRAGMA journal_mode = WAL");
  db->exec("PRAGMA synchronous = FULL");
  db->exec("PRAGMA wal_autocheckpoint = 0");
  return db;
}

void insert(sqlite::Database& db, std::int64_t id, std::size_t size) {
  sqlite::ScopedStatement q = db.query("INSERT INTO t (id, data) VALUES (?1, ?2)");
  q->bind(1, id);
  q->bind(2, crypto::ByteView(blob(id, size)));
  q->run();
}

std::int64_t count(sqlite::Database& db) {
  sqlite::ScopedStatement q = db.query("SELECT count(*) FROM t");
  EXPECT_TRUE(q->step());
  return q->column_int(0);
}

// Every row has the data insert() gave it; the ids are returned.
std::set<std::int64_t> check_rows(sqlite::Database& db, std::size_t size) {
  std::set<std::int64_t> ids;
  sqlite::ScopedStatement q = db.query("SELECT id, data FROM t ORDER BY id");
  while (q->step()) {
    const std::int64_t id = q->column_int(0);
    EXPECT_EQ(q->column_bytes(1), blob(id, size)) << "row " << id;
    ids.insert(id);
  }
  return ids;
}

std::string integrity(sqlite::Database& db) {
  sqlite::ScopedStatement q = db.query("PRAGMA integrity_check");
  return q->step() ? q->column_text(0) : "no answer";
}

TEST(WalBuffer, ATransactionsFramesReachTheFileInAFewWrites) {
  test::TempDir dir;
  auto db = open_buffered(dir / "t.db");
  db->exec("CREATE TABLE t (id INTEGER PRIMARY KEY, data BLOB NOT NULL)");
  const WalBufferCounts before = wal_buffer_counts();
  db->exec("BEGIN");
  for (std::int64_t i = 0; i < 400; ++i) insert(*db, i, 3000);  // a page or more a row
  db->exec("COMMIT");
  const WalBufferCounts after = wal_buffer_counts();
  // Two writes a frame asked for (header, page), at least one frame a row.
  EXPECT_GE(after.asked - before.asked, 800u);
  // ~400 frames of ~4 KiB (~1.6 MiB) in writes of up to 124 KiB.
  EXPECT_LE(after.written - before.written, (after.asked - before.asked) / 20);
  EXPECT_LE(after.written - before.written, 20u);

  sqlite::Database other(dir / "t.db");  // the default VFS
  EXPECT_EQ(check_rows(other, 3000).size(), 400u);
  EXPECT_EQ(integrity(other), "ok");
}

TEST(WalBuffer, EveryCommitIsSeenByAnotherConnectionAsSoonAsItReturns) {
  test::TempDir dir;
  auto db = open_buffered(dir / "t.db");
  db->exec("CREATE TABLE t (id INTEGER PRIMARY KEY, data BLOB NOT NULL)");
  sqlite::Database other(dir / "t.db");
  for (std::int64_t i = 0; i < 100; ++i) {
    insert(*db, i, 100 + 97 * static_cast<std::size_t>(i));  // from part of a page to a few
    ASSERT_EQ(count(other), i + 1);
  }
  for (std::int64_t i = 0; i < 100; ++i) {
    sqlite::ScopedStatement q = other.query("SELECT data FROM t WHERE id = ?1");
    q->bind(1, i);
    ASSERT_TRUE(q->step());
    EXPECT_EQ(q->column_bytes(0), blob(i, 100 + 97 * static_cast<std::size_t>(i)));
  }
}

TEST(WalBuffer, ATransactionReadsBackThePagesItSpilledToTheLog) {
  test::TempDir dir;
  auto db = open_buffered(dir / "t.db");
  db->exec("PRAGMA cache_size = 10");  // pages: the transaction spills to the WAL
  db->exec("CREATE TABLE t (id INTEGER PRIMARY KEY, data BLOB NOT NULL)");
  db->exec("BEGIN");
  for (std::int64_t i = 0; i < 600; ++i) insert(*db, i, 1500);
  EXPECT_EQ(check_rows(*db, 1500).size(), 600u);  // read back inside the transaction
  db->exec("COMMIT");
  sqlite::Database other(dir / "t.db");
  EXPECT_EQ(check_rows(other, 1500).size(), 600u);
  EXPECT_EQ(integrity(other), "ok");
}

TEST(WalBuffer, CheckpointsThatRestartTheLogLoseNothing) {
  test::TempDir dir;
  auto db = open_buffered(dir / "t.db");
  db->exec("PRAGMA journal_size_limit = 0");  // the restarted WAL is truncated too
  db->exec("CREATE TABLE t (id INTEGER PRIMARY KEY, data BLOB NOT NULL)");
  sqlite::Database checkpointer(dir / "t.db");
  std::int64_t id = 0;
  for (int round = 0; round < 20; ++round) {
    db->exec("BEGIN");
    for (int i = 0; i < 30; ++i) insert(*db, id++, 2000);
    db->exec("COMMIT");
    insert(*db, id++, 700);
    checkpointer.exec(round % 2 == 0 ? "PRAGMA wal_checkpoint(TRUNCATE)"
                                     : "PRAGMA wal_checkpoint(RESTART)");
  }
  db.reset();  // closing checkpoints what is left
  sqlite::Database reopened(dir / "t.db");
  std::set<std::int64_t> ids;
  sqlite::ScopedStatement q = reopened.query("SELECT id, length(data) FROM t ORDER BY id");
  while (q->step()) {
    ids.insert(q->column_int(0));
    EXPECT_EQ(q->column_int(1), q->column_int(0) % 31 == 30 ? 700 : 2000);
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(id));
  EXPECT_EQ(integrity(reopened), "ok");
}

// kill -9 right after commits: every commit that returned is in the file.
TEST(WalBuffer, AProcessKilledMidStreamKeepsEveryCommitThatReturned) {
  test::TempDir dir;
  {
    auto db = open_buffered(dir / "t.db");
    db->exec("CREATE TABLE t (id INTEGER PRIMARY KEY, data BLOB NOT NULL)");
  }
  int acks[2];
  ASSERT_EQ(::pipe(acks), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(acks[0]);
    try {
      auto db = open_buffered(dir / "t.db");
      for (std::int64_t i = 0;; ++i) {
        db->exec("BEGIN");
        insert(*db, 2 * i, 5000);
        insert(*db, 2 * i + 1, 300);
        db->exec("COMMIT");
        if (::write(acks[1], &i, sizeof i) != sizeof i) ::_exit(3);
      }
    } catch (...) {
      ::_exit(2);
    }
  }
  ::close(acks[1]);
  std::int64_t acked = -1;
  std::int64_t n = 0;
  while (acked < 150 && ::read(acks[0], &n, sizeof n) == sizeof n) acked = n;
  ::kill(child, SIGKILL);
  while (::read(acks[0], &n, sizeof n) == sizeof n) acked = n;  // sent before it died
  ::close(acks[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the writer ended on its own, status " << status;
  ASSERT_GE(acked, 150);

  sqlite::Database db(dir / "t.db");  // recovers the WAL
  sqlite::ScopedStatement q = db.query("SELECT id, data FROM t ORDER BY id");
  std::int64_t expected = 0;
  while (q->step()) {
    const std::int64_t id = q->column_int(0);
    ASSERT_EQ(id, expected) << "a row is missing";
    EXPECT_EQ(q->column_bytes(1), blob(id, id % 2 == 0 ? 5000 : 300)) << "row " << id;
    ++expected;
  }
  // Every acknowledged commit, and at most the one in progress beyond it, both rows or neither.
  EXPECT_GE(expected, 2 * (acked + 1));
  EXPECT_LE(expected, 2 * (acked + 2));
  EXPECT_EQ(expected % 2, 0);
  EXPECT_EQ(integrity(db), "ok");
}

}  // namespace
}  // namespace kith::server
