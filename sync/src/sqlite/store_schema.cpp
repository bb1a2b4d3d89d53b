#include "store_schema.hpp"

#include <sqlite3.h>

#include <string>

#include "kith/sync/sqlite/transaction.hpp"

namespace kith::sync::sqlite {
namespace {

// Version 1: the first release. Columns named *_sealed hold kith::crypto::seal output under the
// storage key; everything else is an id, a counter or bytes the server also holds. Foreign keys
// tie every row to its plan, so removing a plan removes all of it.
constexpr const char* kSchema1 = R"sql(
CREATE TABLE meta (
  name  TEXT PRIMARY KEY NOT NULL,
  value BLOB NOT NULL
);
CREATE TABLE plans (
  plan_id      BLOB PRIMARY KEY NOT NULL CHECK (length(plan_id) = 16),
  title_sealed BLOB NOT NULL
);
CREATE TABLE ops (
  local_index INTEGER PRIMARY KEY AUTOINCREMENT,
  plan_id     BLOB NOT NULL REFERENCES plans (plan_id) ON DELETE CASCADE,
  op_id       BLOB NOT NULL CHECK (length(op_id) = 16),
  section     TEXT NOT NULL,
  author      BLOB NOT NULL CHECK (length(author) = 32),
  author_seq  INTEGER NOT NULL CHECK (author_seq >= 0),
  server_seq  INTEGER NOT NULL DEFAULT 0 CHECK (server_seq >= 0),
  header      BLOB NOT NULL,
  body        BLOB NOT NULL,
  UNIQUE (plan_id, op_id)
);
CREATE INDEX ops_by_plan ON ops (plan_id, local_index);
CREATE TABLE outbox (
  plan_id BLOB NOT NULL,
  op_id   BLOB NOT NULL,
  PRIMARY KEY (plan_id, op_id),
  FOREIGN KEY (plan_id, op_id) REFERENCES ops (plan_id, op_id) ON DELETE CASCADE
);
CREATE TABLE membership (
  plan_id BLOB NOT NULL REFERENCES plans (plan_id) ON DELETE CASCADE,
  idx     INTEGER NOT NULL CHECK (idx >= 0),
  entry   BLOB NOT NULL,
  PRIMARY KEY (plan_id, idx)
) WITHOUT ROWID;
CREATE TABLE section_keys (
  plan_id    BLOB NOT NULL REFERENCES plans (plan_id) ON DELETE CASCADE,
  section    TEXT NOT NULL,
  epoch      INTEGER NOT NULL CHECK (epoch >= 0),
  key_sealed BLOB NOT NULL,
  PRIMARY KEY (plan_id, section, epoch)
) WITHOUT ROWID;
CREATE TABLE cursors (
  plan_id    BLOB PRIMARY KEY NOT NULL REFERENCES plans (plan_id) ON DELETE CASCADE,
  server_seq INTEGER NOT NULL CHECK (server_seq >= 0)
);
CREATE TABLE plan_states (
  plan_id      BLOB PRIMARY KEY NOT NULL REFERENCES plans (plan_id) ON DELETE CASCADE,
  state_sealed BLOB NOT NULL
);
)sql";

// Version 2: envelopes are kept (version 1 fetched them again on every start), and the outbox
// records its authoring order explicitly. Version 1 took the order of the op rows, which breaks
// as soon as an authored op's row is stored after another one's (a restore, a re-encryption that
// rewrites rows); the author's hash chain needs ops uploaded exactly in authoring order. The
// rebuild keeps every queued op in the order version 1 would have returned it.
constexpr const char* kSchema2 = R"sql(
CREATE TABLE envelopes (
  plan_id  BLOB NOT NULL REFERENCES plans (plan_id) ON DELETE CASCADE,
  section  TEXT NOT NULL,
  epoch    INTEGER NOT NULL CHECK (epoch >= 0),
  envelope BLOB NOT NULL,
  PRIMARY KEY (plan_id, section, epoch)
) WITHOUT ROWID;
ALTER TABLE outbox RENAME TO outbox_v1;
CREATE TABLE outbox (
  plan_id  BLOB NOT NULL,
  op_id    BLOB NOT NULL,
  position INTEGER NOT NULL,
  PRIMARY KEY (plan_id, op_id),
  UNIQUE (plan_id, position),
  FOREIGN KEY (plan_id, op_id) REFERENCES ops (plan_id, op_id) ON DELETE CASCADE
);
INSERT INTO outbox (plan_id, op_id, position)
  SELECT o.plan_id, o.op_id, ops.local_index
  FROM outbox_v1 AS o JOIN ops ON ops.plan_id = o.plan_id AND ops.op_id = o.op_id;
DROP TABLE outbox_v1;
)sql";

// Version 3: envelopes this device makes for other devices (a key rotation, a device added) are
// kept until the server has stored them; version 2 held them in memory, so a restart lost them.
// AUTOINCREMENT: an id acknowledged late must never name a newer envelope.
constexpr const char* kSchema3 = R"sql(
CREATE TABLE outgoing_envelopes (
  id       INTEGER PRIMARY KEY AUTOINCREMENT,
  plan_id  BLOB NOT NULL REFERENCES plans (plan_id) ON DELETE CASCADE,
  envelope BLOB NOT NULL
);
CREATE INDEX outgoing_envelopes_by_plan ON outgoing_envelopes (plan_id, id);
)sql";

// Version 4: per section, the checksum of the ops received from the server (docs/PROTOCOL.md,
// "Section checksums"), written with the cursor, and the server sequence it is at. A plan of an
// older file starts at digest_seq 0: the sync engine computes its digests from the stored ops
// when it loads the plan (the store does not hash ops).
constexpr const char* kSchema4 = R"sql(
ALTER TABLE cursors ADD COLUMN digest_seq INTEGER NOT NULL DEFAULT 0 CHECK (digest_seq >= 0);
CREATE TABLE section_digests (
  plan_id  BLOB NOT NULL REFERENCES plans (plan_id) ON DELETE CASCADE,
  section  TEXT NOT NULL,
  op_count INTEGER NOT NULL CHECK (op_count >= 0),
  digest   BLOB NOT NULL CHECK (length(digest) = 32),
  PRIMARY KEY (plan_id, section)
) WITHOUT ROWID;
)sql";

// Version 5: an outgoing envelope may be an invitation's (sealed to the key an invite code
// stands for, pushed with PushEnvelopes.invite_id); NULL for a member device's. And the people
// whose safety number this device's owner compared and marked verified (an account id is its
// identity key, so a changed key is a different, unverified account).
constexpr const char* kSchema5 = R"sql(
ALTER TABLE outgoing_envelopes ADD COLUMN invite_id BLOB CHECK (invite_id IS NULL OR length(invite_id) = 16);
CREATE TABLE verified_accounts (
  account     BLOB PRIMARY KEY CHECK (length(account) = 32),
  verified_at INTEGER NOT NULL CHECK (verified_at >= 0)
) WITHOUT ROWID;
)sql";

// Version 6: recovery envelopes (docs/PROTOCOL.md, "Recovery envelopes"). An outgoing envelope
// may be sealed to the account's recovery box key (pushed with PushEnvelopes.recovery_proof), and
// the keys already sealed so are remembered, so each (section, epoch) is sealed once per device.
constexpr const char* kSchema6 = R"sql(
ALTER TABLE outgoing_envelopes ADD COLUMN recovery INTEGER NOT NULL DEFAULT 0 CHECK (recovery IN (0, 1));
CREATE TABLE recovery_sealed (
  plan_id BLOB NOT NULL REFERENCES plans (plan_id) ON DELETE CASCADE,
  section TEXT NOT NULL,
  epoch   INTEGER NOT NULL CHECK (epoch >= 1),
  PRIMARY KEY (plan_id, section, epoch)
) WITHOUT ROWID;
)sql";

// Version 7: names this device's person gave the members of a plan ("Nia" for an account), or
// an invitation until someone accepts it. Sealed under the storage key; never sent anywhere.
constexpr const char* kSchema7 = R"sql(
CREATE TABLE names (
  plan_id     BLOB NOT NULL REFERENCES plans (plan_id) ON DELETE CASCADE,
  subject     BLOB NOT NULL CHECK (length(subject) IN (16, 32)),
  name_sealed BLOB NOT NULL,
  PRIMARY KEY (plan_id, subject)
) WITHOUT ROWID;
)sql";

constexpr Migration kMigrations[] = {
    {1, "initial schema", kSchema1},
    {2, "envelopes table; explicit outbox order", kSchema2},
    {3, "outgoing envelopes table", kSchema3},
    {4, "section digests with the cursor", kSchema4},
    {5, "outgoing envelopes of invitations; verified accounts", kSchema5},
    {6, "recovery envelopes", kSchema6},
    {7, "names of members", kSchema7},
};

}  // namespace

std::span<const Migration> store_migrations() noexcept { return kMigrations; }

int newest_store_schema() noexcept { return kMigrations[std::size(kMigrations) - 1].version; }

void configure_connection(Database& db) {
  // Several stores on one file (a share extension, a second process) wait for each other's
  // writes instead of failing at once.
  sqlite3_busy_timeout(db.handle(), 5000);
  // A copied or tampered file must not be able to run SQL functions from its schema, nor let a
  // bug of ours write the schema table directly.
  sqlite3_db_config(db.handle(), SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
  sqlite3_db_config(db.handle(), SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  // FULL: in WAL mode, every commit fsyncs the WAL, so a committed write survives power loss.
  // temp_store: sorts and temporary indexes stay in memory, never in a stray file.
  db.exec("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY");
  if (db.pragma_int("foreign_keys") != 1) {
    db.fail(SQLITE_MISUSE, "enabling foreign keys (this SQLite was built without them)");
  }
}

int inspect_store(Database& db) {
  // The first read of the file: a file that is not an SQLite database fails here (NOTADB).
  const std::int64_t application_id = db.pragma_int("application_id");
  const std::int64_t version = db.pragma_int("user_version");
  const std::string where = " (" + db.path() + ")";
  if (application_id == kStoreApplicationId) {
    if (version > newest_store_schema()) {
      throw SyncError(SyncErrorCode::kSchemaTooNew,
                      "The local store was written by a newer version of Kith (schema " +
                          std::to_string(version) + "; this version reads up to " +
                          std::to_string(newest_store_schema()) + "); update Kith to open it" +
                          where);
    }
    if (version < 1) {
      throw SyncError(SyncErrorCode::kStore,
                      "The local store is damaged: it has no schema version; remove it and sync "
                      "again to rebuild it" +
                          where);
    }
    return static_cast<int>(version);
  }
  if (application_id == 0 && version == 0) {
    ScopedStatement count = db.query("SELECT count(*) FROM sqlite_master");
    if (count->step() && count->column_int(0) == 0) return 0;
  }
  throw SyncError(SyncErrorCode::kStore,
                  "The file is not a Kith store: it is an SQLite database of another "
                  "application; choose another file" +
                      where);
}

void enable_wal(Database& db) {
  Statement mode(db, "PRAGMA journal_mode = WAL");
  if (!mode.step() || mode.column_text(0) != "wal") {
    db.fail(SQLITE_CANTOPEN, "switching to WAL mode (the file system may not support it)");
  }
}

void migrate_store(Database& db, int from_version, const std::function<void(int)>& after_step) {
  for (const Migration& step : store_migrations()) {
    // An up-to-date store takes no write lock at all.
    if (step.version <= from_version) continue;
    Transaction transaction(db);
    const std::int64_t version = db.pragma_int("user_version");
    if (version > newest_store_schema()) {
      throw SyncError(SyncErrorCode::kSchemaTooNew,
                      "The local store was migrated by a newer version of Kith while opening it; "
                      "update Kith to open it (" +
                          db.path() + ")");
    }
    if (version >= step.version) continue;  // rolls back the empty transaction
    if (step.version == 1) {
      db.exec(("PRAGMA application_id = " + std::to_string(kStoreApplicationId)).c_str());
    }
    db.exec(step.sql);
    after_step(step.version);
    db.exec(("PRAGMA user_version = " + std::to_string(step.version)).c_str());
    // A step that left a dangling reference is a bug in the step: refuse to commit it.
    Statement check(db, "PRAGMA foreign_key_check");
    if (check.step()) {
      db.fail(SQLITE_CONSTRAINT_FOREIGNKEY,
              "migrating to schema " + std::to_string(step.version) + " (" + step.summary +
                  "): table " + check.column_text(0) + " would reference missing rows");
    }
    transaction.commit();
  }
}

}  // namespace kith::sync::sqlite
