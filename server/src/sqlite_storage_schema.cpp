#include "sqlite_storage_schema.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <iterator>
#include <set>
#include <vector>

#include "kith/sync/error.hpp"
#include "kith/sync/membership.hpp"
#include "kith/sync/sqlite/database.hpp"
#include "kith/sync/sqlite/transaction.hpp"
#include "plan_index.hpp"

namespace kith::server::storage_schema {
namespace {

namespace sqlite = sync::sqlite;
using sqlite::Database;
using sqlite::ScopedStatement;

// Version 1: the first release. Ops are clustered by (plan, seq), so a catch-up reads one
// contiguous range; ops_by_section finds each section's checksum at any seq, and ops_by_chain
// each author's chain tip, without reading op bodies.
constexpr const char* kSchema1 = R"sql(
CREATE TABLE ops (
  plan_id        BLOB NOT NULL CHECK (length(plan_id) = 16),
  seq            INTEGER NOT NULL CHECK (seq >= 1),
  op_id          BLOB NOT NULL CHECK (length(op_id) = 16),
  section        TEXT NOT NULL,
  author         BLOB NOT NULL CHECK (length(author) = 32),
  author_seq     INTEGER NOT NULL CHECK (author_seq >= 0),
  epoch          INTEGER NOT NULL CHECK (epoch >= 0),
  hash           BLOB NOT NULL CHECK (length(hash) = 32),
  section_count  INTEGER NOT NULL CHECK (section_count >= 0),
  section_digest BLOB NOT NULL CHECK (length(section_digest) = 32),
  header         BLOB NOT NULL,
  body           BLOB NOT NULL,
  PRIMARY KEY (plan_id, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX ops_by_op_id ON ops (plan_id, op_id);
CREATE INDEX ops_by_section ON ops (plan_id, section, seq);
CREATE INDEX ops_by_chain ON ops (plan_id, author, section, author_seq);
CREATE TABLE heads (
  plan_id   BLOB NOT NULL CHECK (length(plan_id) = 16),
  author    BLOB NOT NULL CHECK (length(author) = 32),
  section   TEXT NOT NULL,
  seq       INTEGER NOT NULL CHECK (seq >= 0),
  head      BLOB NOT NULL,
  signature BLOB NOT NULL CHECK (length(signature) = 64),
  PRIMARY KEY (plan_id, author, section, seq)
) WITHOUT ROWID;
CREATE TABLE membership (
  plan_id BLOB NOT NULL CHECK (length(plan_id) = 16),
  idx     INTEGER NOT NULL CHECK (idx >= 0),
  entry   BLOB NOT NULL,
  PRIMARY KEY (plan_id, idx)
) WITHOUT ROWID;
CREATE TABLE envelopes (
  id        INTEGER PRIMARY KEY,
  plan_id   BLOB NOT NULL CHECK (length(plan_id) = 16),
  recipient BLOB NOT NULL CHECK (length(recipient) = 32),
  section   TEXT NOT NULL,
  epoch     INTEGER NOT NULL CHECK (epoch >= 0),
  envelope  BLOB NOT NULL
);
CREATE UNIQUE INDEX envelopes_by_recipient ON envelopes (plan_id, recipient, section, epoch, envelope);
CREATE TABLE fetch_log (
  id        INTEGER PRIMARY KEY AUTOINCREMENT,
  plan_id   BLOB NOT NULL CHECK (length(plan_id) = 16),
  account   BLOB NOT NULL CHECK (length(account) = 32),
  device    BLOB NOT NULL CHECK (length(device) = 32),
  section   TEXT NOT NULL,
  up_to_seq INTEGER NOT NULL CHECK (up_to_seq >= 0),
  at_ms     INTEGER NOT NULL CHECK (at_ms >= 0),
  live      INTEGER NOT NULL CHECK (live IN (0, 1))
);
CREATE INDEX fetch_log_by_plan ON fetch_log (plan_id, id);
CREATE TABLE devices (
  device_id    BLOB PRIMARY KEY NOT NULL CHECK (length(device_id) = 32),
  account      BLOB NOT NULL CHECK (length(account) = 32),
  certificate  BLOB NOT NULL,
  last_seen_ms INTEGER NOT NULL CHECK (last_seen_ms >= 0)
) WITHOUT ROWID;
)sql";

// Version 2: ops and heads become rowid tables, still keyed (plan, seq) and (plan, chain, seq)
// by their primary-key index. A WITHOUT ROWID table is the b-tree of its key: with many plans
// writing at once, each group commit inserted into the middle of it at one place per plan, and
// every leaf split there rebalanced three pages. A rowid table appends every new row at its
// end, whichever plan it belongs to, and only the small key entries go to one place per plan.
// Replaying kithd's inserts (64 plans, one op and one head per push, 300 ops per commit, after
// 45,000 ops) wrote 4.2 WAL pages per op before, 3.2 after; with 16 plans and 100-op pushes
// (4,000 per commit), 0.68 and 0.65. ops_by_chain now carries seq, which the chain-tip query
// of load_plan reads, so that query still reads no op rows.
constexpr const char* kSchema2 = R"sql(
ALTER TABLE ops RENAME TO ops_v1;
DROP INDEX ops_by_op_id;
DROP INDEX ops_by_section;
DROP INDEX ops_by_chain;
CREATE TABLE ops (
  plan_id        BLOB NOT NULL CHECK (length(plan_id) = 16),
  seq            INTEGER NOT NULL CHECK (seq >= 1),
  op_id          BLOB NOT NULL CHECK (length(op_id) = 16),
  section        TEXT NOT NULL,
  author         BLOB NOT NULL CHECK (length(author) = 32),
  author_seq     INTEGER NOT NULL CHECK (author_seq >= 0),
  epoch          INTEGER NOT NULL CHECK (epoch >= 0),
  hash           BLOB NOT NULL CHECK (length(hash) = 32),
  section_count  INTEGER NOT NULL CHECK (section_count >= 0),
  section_digest BLOB NOT NULL CHECK (length(section_digest) = 32),
  header         BLOB NOT NULL,
  body           BLOB NOT NULL,
  PRIMARY KEY (plan_id, seq)
);
INSERT INTO ops (plan_id, seq, op_id, section, author, author_seq, epoch, hash, section_count,
                 section_digest, header, body)
  SELECT plan_id, seq, op_id, section, author, author_seq, epoch, hash, section_count,
         section_digest, header, body FROM ops_v1 ORDER BY plan_id, seq;
DROP TABLE ops_v1;
CREATE UNIQUE INDEX ops_by_op_id ON ops (plan_id, op_id);
CREATE INDEX ops_by_section ON ops (plan_id, section, seq);
CREATE INDEX ops_by_chain ON ops (plan_id, author, section, author_seq, seq);
ALTER TABLE heads RENAME TO heads_v1;
CREATE TABLE heads (
  plan_id   BLOB NOT NULL CHECK (length(plan_id) = 16),
  author    BLOB NOT NULL CHECK (length(author) = 32),
  section   TEXT NOT NULL,
  seq       INTEGER NOT NULL CHECK (seq >= 0),
  head      BLOB NOT NULL,
  signature BLOB NOT NULL CHECK (length(signature) = 64),
  PRIMARY KEY (plan_id, author, section, seq)
);
INSERT INTO heads (plan_id, author, section, seq, head, signature)
  SELECT plan_id, author, section, seq, head, signature FROM heads_v1
  ORDER BY plan_id, author, section, seq;
DROP TABLE heads_v1;
)sql";

// Version 3: the account -> plans index that answers ListPlans (plan_index.hpp): one row per
// account and plan it is a current member of, keyed so that one account's plans are one range
// in plan-id order (the order ListPlans pages in). Rows are few and change only with membership
// entries, so a WITHOUT ROWID table (the row is its key's b-tree entry) costs nothing in writes.
// The rows of plans stored before this version are built by backfill_plan_index in the same
// transaction: SQL cannot replay a membership log.
constexpr const char* kSchema3 = R"sql(
CREATE TABLE account_plans (
  account       BLOB NOT NULL CHECK (length(account) = 32),
  plan_id       BLOB NOT NULL CHECK (length(plan_id) = 16),
  owner         INTEGER NOT NULL CHECK (owner IN (0, 1)),
  owner_account BLOB NOT NULL CHECK (length(owner_account) = 32),
  created_at_ms INTEGER NOT NULL CHECK (created_at_ms >= 0),
  expires_at_ms INTEGER NOT NULL CHECK (expires_at_ms >= 0),
  PRIMARY KEY (account, plan_id)
) WITHOUT ROWID;
)sql";

// Replays every stored plan's log and writes its index rows. Signatures are checked as kithd
// checks them on load (about 50 us per entry). A plan whose log stops verifying at some entry
// is indexed as its verified prefix says: kithd refuses that plan on use with its own error
// ("the database is damaged"), and the migration must not turn that into a server that no
// longer starts.
void backfill_plan_index(Database& db) {
  std::vector<PlanId> plans;
  {
    ScopedStatement q = db.query("SELECT DISTINCT plan_id FROM membership ORDER BY plan_id");
    while (q->step()) {
      if (q->column_view(0).size() == PlanId::kSize) {
        plans.push_back(PlanId::from_bytes(q->column_view(0)));
      }
    }
  }
  for (const PlanId& plan : plans) {
    sync::MembershipLog log(plan);
    std::uint64_t created_at_ms = 0;
    {
      ScopedStatement q = db.query("SELECT entry FROM membership WHERE plan_id = ?1 ORDER BY idx");
      q->bind(1, plan.bytes());
      try {
        while (q->step()) {
          const sync::MembershipEntry e = sync::MembershipEntry::parse(q->column_view(0));
          log.append(e);
          if (e.index == 0) created_at_ms = e.at_ms;
        }
      } catch (const sync::SyncError&) {
        // The verified prefix stands (see above).
      }
    }
    for (const AccountPlan& row : plan_index_rows(log, created_at_ms)) {
      ScopedStatement q = db.query(
          "INSERT INTO account_plans (account, plan_id, owner, owner_account, created_at_ms, "
          "expires_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
      q->bind(1, row.account.bytes());
      q->bind(2, row.plan.bytes());
      q->bind(3, std::int64_t{row.owner ? 1 : 0});
      q->bind(4, row.owner_account.bytes());
      q->bind(5, index_time(row.created_at_ms));
      q->bind(6, index_time(row.expires_at_ms));
      q->run();
    }
  }
}

// Version 4: op ids leave the ops table's (plan, op_id) index for two tables of their own.
// Client-chosen op ids are random, so that index took each new op at a random place: once a
// plan's index outgrew one group commit's inserts, nearly every op dirtied a page of it of its
// own, written to the WAL and again at the checkpoint. Now a commit appends each op id to
// recent_op_ids, keyed (plan, seq) so that a plan's recent ids lie together at the end of its
// range; once enough have gathered, the writer moves them into op_ids a plan at a time, each
// plan's in one sorted pass (SqliteStorage::Options::merge_op_ids_at), which touches each page
// of op_ids once per merge instead of once per op. An op id is in exactly one of the two tables;
// the writer keeps the ids of recent_op_ids in memory, so that a commit still refuses an op id the
// plan already holds.
constexpr const char* kSchema4 = R"sql(
CREATE TABLE op_ids (
  plan_id BLOB NOT NULL CHECK (length(plan_id) = 16),
  op_id   BLOB NOT NULL CHECK (length(op_id) = 16),
  seq     INTEGER NOT NULL CHECK (seq >= 1),
  PRIMARY KEY (plan_id, op_id)
) WITHOUT ROWID;
INSERT INTO op_ids (plan_id, op_id, seq) SELECT plan_id, op_id, seq FROM ops ORDER BY plan_id, op_id;
DROP INDEX ops_by_op_id;
CREATE TABLE recent_op_ids (
  plan_id BLOB NOT NULL CHECK (length(plan_id) = 16),
  seq     INTEGER NOT NULL CHECK (seq >= 1),
  op_id   BLOB NOT NULL CHECK (length(op_id) = 16),
  PRIMARY KEY (plan_id, seq)
) WITHOUT ROWID;
)sql";

// Version 5: each chain's tip leaves the ops table's (plan, author, section, author_seq, seq)
// index for a table of its own. That index took an entry of ~90 bytes for every op, though only
// load_plan read it, for each chain's last op; chain_tips holds that one row per chain, written
// once per chain in each batch (SqliteStorage::write_ops). The rows are built from the index
// before it is dropped.
constexpr const char* kSchema5 = R"sql(
CREATE TABLE chain_tips (
  plan_id    BLOB NOT NULL CHECK (length(plan_id) = 16),
  author     BLOB NOT NULL CHECK (length(author) = 32),
  section    TEXT NOT NULL,
  author_seq INTEGER NOT NULL CHECK (author_seq >= 0),
  seq        INTEGER NOT NULL CHECK (seq >= 1),
  PRIMARY KEY (plan_id, author, section)
) WITHOUT ROWID;
INSERT INTO chain_tips (plan_id, author, section, author_seq, seq)
  SELECT plan_id, author, section, max(author_seq), seq FROM ops GROUP BY plan_id, author, section;
DROP INDEX ops_by_chain;
)sql";

// Version 6: an op's id no longer waits for its merge in a table of its own. recent_op_ids held
// a second, narrow copy of each new op's (plan, seq, op_id), one more row and B-tree insert per
// op, then its delete at the merge; the ops table already holds the same, keyed the same way. Now
// op_id_marks says, per plan, up to which sequence number the ids are in op_ids: an op with a
// higher seq is unmerged, and found by the plan's range of ops above the mark. A merge moves
// those ids into op_ids and raises the mark, in one transaction. A plan with an unmerged op has
// a mark (0 before its first merge), so that the writer can list them when it opens the file.
// The migration merges whatever recent_op_ids held, then marks every plan at its last op.
constexpr const char* kSchema6 = R"sql(
CREATE TABLE op_id_marks (
  plan_id    BLOB NOT NULL PRIMARY KEY CHECK (length(plan_id) = 16),
  merged_seq INTEGER NOT NULL CHECK (merged_seq >= 0)
) WITHOUT ROWID;
INSERT INTO op_ids (plan_id, op_id, seq)
  SELECT plan_id, op_id, seq FROM recent_op_ids ORDER BY plan_id, op_id;
DROP TABLE recent_op_ids;
INSERT INTO op_id_marks (plan_id, merged_seq) SELECT plan_id, max(seq) FROM op_ids GROUP BY plan_id;
)sql";

// Step `version` takes a file at version - 1 to `version`. In order; never edit a released step,
// add one (a step may rebuild a table in SQL, as the local store's version 2 does).
// `then` (may be null) runs after `sql`, in the same transaction, for what SQL cannot do.
struct Migration {
  int version;
  const char* summary;
  const char* sql;
  void (*then)(Database&) = nullptr;
};
constexpr Migration kMigrations[] = {
    {1, "initial schema", kSchema1},
    {2, "ops and heads in rowid tables", kSchema2},
    {3, "account -> plans index", kSchema3, backfill_plan_index},
    {4, "op ids in op_ids and recent_op_ids, merged in sorted runs", kSchema4},
    {5, "chain tips in chain_tips", kSchema5},
    {6, "unmerged op ids read from ops above a per-plan mark", kSchema6},
};

// What the newest schema must contain; a file that lacks one was altered or damaged.
constexpr std::array<const char*, 13> kSchemaObjects = {
    "ops",          "ops_by_section",    "chain_tips",
    "op_ids",       "op_id_marks",       "heads",
    "membership",   "envelopes",         "envelopes_by_recipient",
    "fetch_log",    "fetch_log_by_plan", "devices",
    "account_plans"};

// PRAGMA application_id of a Kith device's local store (sync/src/sqlite/store_schema.hpp).
constexpr std::int64_t kLocalStoreApplicationId = 0x4B495448;

}  // namespace

std::int64_t index_time(std::uint64_t ms) noexcept {
  return static_cast<std::int64_t>(
      std::min<std::uint64_t>(ms, static_cast<std::uint64_t>(INT64_MAX)));
}

int newest() noexcept { return kMigrations[std::size(kMigrations) - 1].version; }

[[noreturn]] void damaged(const std::string& path, const std::string& what) {
  throw StorageError("The server database " + path + " is damaged (" + what +
                     "); stop kithd and restore the file from a backup");
}

int inspect(Database& db) {
  const std::string& path = db.path();
  std::int64_t application_id = 0;
  std::int64_t version = 0;
  try {
    // The first read of the file: a file that is not an SQLite database fails here.
    application_id = db.pragma_int("application_id");
    version = db.pragma_int("user_version");
  } catch (const sqlite::Error& e) {
    if (e.primary_code() == SQLITE_NOTADB) {
      throw StorageError("The file " + path +
                         " is not a kithd database (it is not an SQLite database at all); check "
                         "the database path kithd was given, or move the file aside so that "
                         "kithd creates a new database there");
    }
    if (e.primary_code() == SQLITE_CORRUPT) damaged(db.path(), "its header does not read");
    throw;
  }
  if (application_id == kApplicationId) {
    if (version > newest()) {
      throw StorageError("The database " + path + " was written by a newer kithd (schema " +
                         std::to_string(version) + "; this kithd reads up to schema " +
                         std::to_string(newest()) +
                         "); run that newer kithd, or restore a backup made by this version");
    }
    if (version < 1) damaged(db.path(), "it has no schema version");
    return static_cast<int>(version);
  }
  if (application_id == 0 && version == 0) {
    ScopedStatement count = db.query("SELECT count(*) FROM sqlite_schema");
    if (count->step() && count->column_int(0) == 0) return 0;  // new, or an empty file
  }
  const std::string what = application_id == kLocalStoreApplicationId
                               ? "a Kith device's local store"
                               : "an SQLite database of another application";
  throw StorageError("The file " + path + " is " + what +
                     ", not a kithd database; check the database path kithd was given");
}

void migrate(Database& db, int from_version, int to_version) {
  for (const Migration& step : kMigrations) {
    if (step.version <= from_version || step.version > to_version) continue;
    sqlite::Transaction transaction(db);
    // Another kithd on the same file may have migrated it meanwhile.
    const std::int64_t version = db.pragma_int("user_version");
    if (version > newest()) {
      throw StorageError("The database " + db.path() +
                         " was migrated by a newer kithd while this one opened it; run that "
                         "newer kithd");
    }
    if (version >= step.version) continue;  // rolls back the empty transaction
    if (step.version == 1) {
      db.exec(("PRAGMA application_id = " + std::to_string(kApplicationId)).c_str());
    }
    db.exec(step.sql);
    if (step.then) step.then(db);
    db.exec(("PRAGMA user_version = " + std::to_string(step.version)).c_str());
    transaction.commit();
  }
}

void check(Database& db) {
  std::set<std::string> present;
  ScopedStatement q = db.query("SELECT name FROM sqlite_schema");
  while (q->step()) present.insert(q->column_text(0));
  for (const char* name : kSchemaObjects) {
    if (!present.contains(name)) damaged(db.path(), std::string("'") + name + "' is missing");
  }
}

}  // namespace kith::server::storage_schema
