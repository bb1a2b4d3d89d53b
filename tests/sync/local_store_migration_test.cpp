// LocalStore and files it did not write at this version: older ones are migrated step by step
// and keep every row; newer ones, damaged ones and other applications' files are refused
// untouched. The fixture files are written with raw SQL: the schemas below are frozen copies of
// what versions 1, 2 and 3 wrote.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "kith/crypto/aead.hpp"
#include "kith/crypto/bytes.hpp"
#include "kith/sync/error.hpp"
#include "kith/sync/local_store.hpp"
#include "kith/sync/op.hpp"
#include "kith/sync/section_digest.hpp"
#include "local_store_fixtures.hpp"

namespace kith::sync::store_test {
namespace {

// What schema version 1 wrote (frozen: never edit this to follow the code).
constexpr const char* kVersion1Schema = R"sql(
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

// A version-1 file: the schema, the key check, and (when `plan` is given) no rows yet.
void create_version1_file(const fs::path& path, const crypto::SectionKey& key) {
  RawDb db(path);
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("BEGIN");
  db.exec("PRAGMA application_id = " + std::to_string(kApplicationId));
  db.exec("PRAGMA user_version = 1");
  db.exec(kVersion1Schema);
  db.rows("INSERT INTO meta (name, value) VALUES ('key_check', ?1)",
          {crypto::seal(key, crypto::as_bytes("kith/v1/local-store/key-check"),
                        documented_ad("meta", PlanId(), crypto::as_bytes("key_check")))});
  db.exec("COMMIT");
}

// What the step to version 2 ran (frozen: never edit this to follow the code).
constexpr const char* kVersion2Step = R"sql(
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

// A version-2 file: version 1 and the step to 2, with no rows yet.
void create_version2_file(const fs::path& path, const crypto::SectionKey& key) {
  create_version1_file(path, key);
  RawDb db(path);
  db.exec("BEGIN");
  db.exec(kVersion2Step);
  db.exec("PRAGMA user_version = 2");
  db.exec("COMMIT");
}

// What the step to version 3 ran (frozen: never edit this to follow the code).
constexpr const char* kVersion3Step = R"sql(
CREATE TABLE outgoing_envelopes (
  id       INTEGER PRIMARY KEY AUTOINCREMENT,
  plan_id  BLOB NOT NULL REFERENCES plans (plan_id) ON DELETE CASCADE,
  envelope BLOB NOT NULL
);
CREATE INDEX outgoing_envelopes_by_plan ON outgoing_envelopes (plan_id, id);
)sql";

// A version-3 file: version 2 and the step to 3, with no rows yet.
void create_version3_file(const fs::path& path, const crypto::SectionKey& key) {
  create_version2_file(path, key);
  RawDb db(path);
  db.exec("BEGIN");
  db.exec(kVersion3Step);
  db.exec("PRAGMA user_version = 3");
  db.exec("COMMIT");
}

// Everything about a schema that SQLite reports structurally: tables (and WITHOUT ROWID),
// columns, foreign keys and indexes.
std::vector<std::string> describe_schema(const fs::path& path) {
  RawDb db(path);
  std::vector<std::string> out;
  auto add = [&](const std::string& sql) {
    auto r = db.rows(sql);
    out.insert(out.end(), r.begin(), r.end());
  };
  add("SELECT type, name, tbl_name FROM sqlite_master ORDER BY name");
  add("SELECT name, type, ncol, wr FROM pragma_table_list WHERE schema = 'main' ORDER BY name");
  add("SELECT m.name, p.cid, p.name, p.type, p.\"notnull\", coalesce(p.dflt_value, ''), p.pk "
      "FROM sqlite_master AS m, pragma_table_xinfo(m.name) AS p WHERE m.type = 'table' "
      "ORDER BY m.name, p.cid");
  add("SELECT m.name, f.id, f.seq, f.\"table\", f.\"from\", f.\"to\", f.on_delete "
      "FROM sqlite_master AS m, pragma_foreign_key_list(m.name) AS f WHERE m.type = 'table' "
      "ORDER BY 1, 2, 3");
  add("SELECT m.name, il.name, il.\"unique\", il.origin, ii.seqno, ii.name "
      "FROM sqlite_master AS m, pragma_index_list(m.name) AS il, pragma_index_info(il.name) AS ii "
      "WHERE m.type = 'table' ORDER BY 1, 2, 5");
  add("PRAGMA application_id");
  add("PRAGMA user_version");
  return out;
}

// ---------------------------------------------------------------------------------------------
// (3) Migration and files that are not ours

TEST(LocalStoreMigration, Version1FileIsMigratedAndKeepsEveryRow) {
  TempDir dir;
  const fs::path path = dir / "kith.db";
  const auto storage_key = crypto::SectionKey::generate();
  const PlanId plan = PlanId::random();
  const auto health_key = crypto::SectionKey::generate();
  const StoredOp op1 = make_op(plan, 1);
  const StoredOp op2 = make_op(plan, 2);
  const StoredOp op3 = make_op(plan, 3);

  create_version1_file(path, storage_key);
  {
    RawDb raw(path);
    const Bytes plan_bytes(plan.bytes().begin(), plan.bytes().end());
    raw.rows("INSERT INTO plans (plan_id, title_sealed) VALUES (?1, ?2)",
             {plan_bytes, crypto::seal(storage_key, crypto::as_bytes("Care plan of Mr Okafor"),
                                       documented_ad("plans", plan, {}))});
    for (const StoredOp* op : {&op1, &op2, &op3}) {
      raw.rows(
          "INSERT INTO ops (plan_id, op_id, section, author, author_seq, server_seq, header, "
          "body) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7)",
          {plan_bytes, Bytes(op->op_id.bytes().begin(), op->op_id.bytes().end()), op->section,
           Bytes(op->author.bytes().begin(), op->author.bytes().end()),
           static_cast<std::int64_t>(op->author_seq), op->header, op->body});
    }
    // Version 1's outbox order was the op rows' order, whatever order they were queued in.
    for (const StoredOp* op : {&op3, &op1}) {
      raw.rows("INSERT INTO outbox (plan_id, op_id) VALUES (?1, ?2)",
               {plan_bytes, Bytes(op->op_id.bytes().begin(), op->op_id.bytes().end())});
    }
    raw.rows("INSERT INTO membership (plan_id, idx, entry) VALUES (?1, 0, ?2), (?1, 1, ?3)",
             {plan_bytes, bytes_of("entry 0"), bytes_of("entry 1")});
    raw.rows(
        "INSERT INTO section_keys (plan_id, section, epoch, key_sealed) VALUES (?1, 'health', 4, "
        "?2)",
        {plan_bytes, crypto::seal(storage_key, health_key.secret().view(),
                                  documented_ad("section_keys", plan,
                                                documented_section_row_key("health", 4)))});
    raw.rows("INSERT INTO cursors (plan_id, server_seq) VALUES (?1, 42)", {plan_bytes});
    raw.rows("INSERT INTO plan_states (plan_id, state_sealed) VALUES (?1, ?2)",
             {plan_bytes, crypto::seal(storage_key, crypto::as_bytes("materialised v1"),
                                       documented_ad("plan_states", plan, {}))});
  }
  ASSERT_EQ(RawDb(path).scalar("PRAGMA user_version"), "1");

  {
    LocalStore store(path, storage_key);
    EXPECT_EQ(store.schema_version(), 7);
    EXPECT_EQ(store.schema_version(), LocalStore::kSchemaVersion);
    ASSERT_EQ(store.plans().size(), 1u);
    EXPECT_EQ(store.plans()[0].second, "Care plan of Mr Okafor");
    const auto ops = store.ops(plan);
    ASSERT_EQ(ops.size(), 3u);
    expect_same_op(ops[0], op1);
    expect_same_op(ops[1], op2);
    expect_same_op(ops[2], op3);
    EXPECT_EQ(store.outbox(plan), (std::vector<OpId>{op1.op_id, op3.op_id}));
    EXPECT_EQ(store.membership(plan),
              (std::vector<Bytes>{bytes_of("entry 0"), bytes_of("entry 1")}));
    auto key = store.section_key(plan, "health", 4);
    ASSERT_TRUE(key);
    EXPECT_TRUE(*key == health_key);
    EXPECT_EQ(store.cursor(plan), 42u);
    auto state = store.load_plan_state(plan);
    ASSERT_TRUE(state);
    EXPECT_EQ(std::string(state->view().begin(), state->view().end()), "materialised v1");

    // What version 2 adds works on the migrated file.
    store.outbox_add(plan, op2.op_id);
    EXPECT_EQ(store.outbox(plan), (std::vector<OpId>{op1.op_id, op3.op_id, op2.op_id}));
    store.put_envelope(plan, "health", 4, bytes_of("envelope"));
    EXPECT_EQ(store.envelope(plan, "health", 4), bytes_of("envelope"));
  }
  RawDb raw(path);
  EXPECT_EQ(raw.scalar("PRAGMA user_version"), "7");
  EXPECT_EQ(raw.scalar("SELECT count(*) FROM sqlite_master WHERE name = 'outbox_v1'"), "0");
}

TEST(LocalStoreMigration, Version2FileIsMigratedAndKeepsEveryRow) {
  TempDir dir;
  const fs::path path = dir / "kith.db";
  const auto storage_key = crypto::SectionKey::generate();
  const PlanId plan = PlanId::random();
  const StoredOp op1 = make_op(plan, 1);
  const StoredOp op2 = make_op(plan, 2);

  create_version2_file(path, storage_key);
  {
    RawDb raw(path);
    const Bytes plan_bytes(plan.bytes().begin(), plan.bytes().end());
    raw.rows("INSERT INTO plans (plan_id, title_sealed) VALUES (?1, ?2)",
             {plan_bytes, crypto::seal(storage_key, crypto::as_bytes("Care plan of Mrs Adeyemi"),
                                       documented_ad("plans", plan, {}))});
    for (const StoredOp* op : {&op1, &op2}) {
      raw.rows(
          "INSERT INTO ops (plan_id, op_id, section, author, author_seq, server_seq, header, "
          "body) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7)",
          {plan_bytes, Bytes(op->op_id.bytes().begin(), op->op_id.bytes().end()), op->section,
           Bytes(op->author.bytes().begin(), op->author.bytes().end()),
           static_cast<std::int64_t>(op->author_seq), op->header, op->body});
    }
    raw.rows("INSERT INTO outbox (plan_id, op_id, position) VALUES (?1, ?2, 1)",
             {plan_bytes, Bytes(op2.op_id.bytes().begin(), op2.op_id.bytes().end())});
    raw.rows("INSERT INTO membership (plan_id, idx, entry) VALUES (?1, 0, ?2)",
             {plan_bytes, bytes_of("entry 0")});
    raw.rows(
        "INSERT INTO envelopes (plan_id, section, epoch, envelope) VALUES (?1, 'health', 2, ?2)",
        {plan_bytes, bytes_of("envelope for me")});
    raw.rows("INSERT INTO cursors (plan_id, server_seq) VALUES (?1, 7)", {plan_bytes});
  }
  ASSERT_EQ(RawDb(path).scalar("PRAGMA user_version"), "2");

  {
    LocalStore store(path, storage_key);
    EXPECT_EQ(store.schema_version(), 7);
    ASSERT_EQ(store.plans().size(), 1u);
    EXPECT_EQ(store.plans()[0].second, "Care plan of Mrs Adeyemi");
    const auto ops = store.ops(plan);
    ASSERT_EQ(ops.size(), 2u);
    expect_same_op(ops[0], op1);
    expect_same_op(ops[1], op2);
    EXPECT_EQ(store.outbox(plan), std::vector<OpId>{op2.op_id});
    EXPECT_EQ(store.membership(plan), std::vector<Bytes>{bytes_of("entry 0")});
    EXPECT_EQ(store.envelope(plan, "health", 2), bytes_of("envelope for me"));
    EXPECT_EQ(store.cursor(plan), 7u);
    EXPECT_TRUE(store.outgoing_envelopes(plan).empty());

    // What version 3 adds works on the migrated file.
    const std::uint64_t id = store.add_outgoing_envelope(plan, bytes_of("for the new phone"));
    EXPECT_EQ(store.outgoing_envelopes(plan),
              (std::vector<OutgoingEnvelope>{{id, bytes_of("for the new phone"), std::nullopt}}));
  }
  EXPECT_EQ(RawDb(path).scalar("PRAGMA user_version"), "7");
}

TEST(LocalStoreMigration, Version3FileIsMigratedAndKeepsEveryRow) {
  TempDir dir;
  const fs::path path = dir / "kith.db";
  const auto storage_key = crypto::SectionKey::generate();
  const PlanId plan = PlanId::random();
  const PlanId other = PlanId::random();
  StoredOp op1 = make_op(plan, 1);
  op1.server_seq = 5;

  create_version3_file(path, storage_key);
  {
    RawDb raw(path);
    for (const PlanId& p : {plan, other}) {
      raw.rows("INSERT INTO plans (plan_id, title_sealed) VALUES (?1, ?2)",
               {Bytes(p.bytes().begin(), p.bytes().end()),
                crypto::seal(storage_key, crypto::as_bytes("Care plan of Mr Haddad"),
                             documented_ad("plans", p, {}))});
    }
    const Bytes plan_bytes(plan.bytes().begin(), plan.bytes().end());
    raw.rows(
        "INSERT INTO ops (plan_id, op_id, section, author, author_seq, server_seq, header, "
        "body) VALUES (?1, ?2, ?3, ?4, ?5, 5, ?6, ?7)",
        {plan_bytes, Bytes(op1.op_id.bytes().begin(), op1.op_id.bytes().end()), op1.section,
         Bytes(op1.author.bytes().begin(), op1.author.bytes().end()),
         static_cast<std::int64_t>(op1.author_seq), op1.header, op1.body});
    raw.rows("INSERT INTO outgoing_envelopes (plan_id, envelope) VALUES (?1, ?2)",
             {plan_bytes, bytes_of("for the tablet")});
    raw.rows("INSERT INTO cursors (plan_id, server_seq) VALUES (?1, 9)", {plan_bytes});
  }
  ASSERT_EQ(RawDb(path).scalar("PRAGMA user_version"), "3");

  {
    LocalStore store(path, storage_key);
    EXPECT_EQ(store.schema_version(), 7);
    ASSERT_EQ(store.plans().size(), 2u);
    const auto ops = store.ops(plan);
    ASSERT_EQ(ops.size(), 1u);
    expect_same_op(ops[0], op1);
    EXPECT_EQ(store.outgoing_envelopes(plan).size(), 1u);
    // The cursor is kept; no digests yet: the sync engine computes them from the ops.
    EXPECT_EQ(store.cursor(plan), 9u);
    EXPECT_EQ(store.digest_seq(plan), 0u);
    EXPECT_TRUE(store.section_digests(plan).empty());

    // What version 4 adds works on the migrated file, with the cursor row there or not.
    SectionDigest d;
    d.add(op_hash(op1.header, op1.body));
    store.put_section_digests(plan, 9, {{"notes", d}});
    EXPECT_EQ(store.cursor(plan), 9u);
    EXPECT_EQ(store.digest_seq(plan), 9u);
    EXPECT_EQ(store.section_digests(plan), (std::vector<StoredSectionDigest>{{"notes", d}}));
    store.put_section_digests(other, 3, {{"health", d}});
    EXPECT_EQ(store.cursor(other), 0u);
    EXPECT_EQ(store.digest_seq(other), 3u);
  }
  EXPECT_EQ(RawDb(path).scalar("PRAGMA user_version"), "7");
}

TEST(LocalStoreMigration, MigratedFileHasTheSameSchemaAsANewOne) {
  TempDir dir;
  const auto storage_key = crypto::SectionKey::generate();
  { LocalStore fresh(dir / "fresh.db", storage_key); }
  create_version1_file(dir / "v1.db", storage_key);
  { LocalStore migrated(dir / "v1.db", storage_key); }
  create_version2_file(dir / "v2.db", storage_key);
  { LocalStore migrated(dir / "v2.db", storage_key); }
  create_version3_file(dir / "v3.db", storage_key);
  { LocalStore migrated(dir / "v3.db", storage_key); }
  // If this fails, either a released step changed (never change one: add a step) or a frozen
  // fixture above was edited.
  EXPECT_EQ(describe_schema(dir / "v1.db"), describe_schema(dir / "fresh.db"));
  EXPECT_EQ(describe_schema(dir / "v2.db"), describe_schema(dir / "fresh.db"));
  EXPECT_EQ(describe_schema(dir / "v3.db"), describe_schema(dir / "fresh.db"));
}

TEST(LocalStoreMigration, NewerSchemaIsRefusedAndTheFileIsUntouched) {
  TempDir dir;
  const fs::path path = dir / "kith.db";
  const auto storage_key = crypto::SectionKey::generate();
  {
    LocalStore store(path, storage_key);
    store.put_plan(PlanId::random(), "plan");
  }
  RawDb(path).exec("PRAGMA user_version = 99");
  const Bytes before = read_file(path);
  const auto files_before = files_in(dir.path());

  auto e =
      expect_sync_error([&] { LocalStore store(path, storage_key); }, SyncErrorCode::kSchemaTooNew);
  EXPECT_NE(std::string(e.what()).find("newer version of Kith"), std::string::npos) << e.what();
  EXPECT_EQ(read_file(path), before);
  EXPECT_EQ(files_in(dir.path()), files_before);
  EXPECT_EQ(RawDb(path).scalar("PRAGMA user_version"), "99");
}

TEST(LocalStoreMigration, FileThatIsNotSqliteIsRefusedAndUntouched) {
  TempDir dir;
  const fs::path path = dir / "kith.db";
  Bytes noise(8192);
  crypto::random_fill(noise.data(), noise.size());
  write_file(path, noise);

  auto e = expect_sync_error([&] { LocalStore store(path, crypto::SectionKey::generate()); },
                             SyncErrorCode::kStore);
  EXPECT_NE(std::string(e.what()).find("not a Kith store"), std::string::npos) << e.what();
  EXPECT_EQ(read_file(path), noise);
  EXPECT_EQ(files_in(dir.path()), std::set<std::string>{"kith.db"});
}

TEST(LocalStoreMigration, AnotherApplicationsDatabaseIsRefusedAndUntouched) {
  TempDir dir;
  const fs::path path = dir / "other.db";
  RawDb(path).exec("CREATE TABLE songs (title TEXT); INSERT INTO songs VALUES ('x')");
  const Bytes before = read_file(path);

  auto e = expect_sync_error([&] { LocalStore store(path, crypto::SectionKey::generate()); },
                             SyncErrorCode::kStore);
  EXPECT_NE(std::string(e.what()).find("not a Kith store"), std::string::npos) << e.what();
  EXPECT_EQ(read_file(path), before);
}

TEST(LocalStoreMigration, DamagedFileIsRefusedWithAClearError) {
  TempDir dir;
  const fs::path path = dir / "kith.db";
  const auto storage_key = crypto::SectionKey::generate();
  { LocalStore(path, storage_key).put_plan(PlanId::random(), "plan"); }
  // Keep SQLite's 100-byte header (so it is still "an SQLite file") and wreck the rest of page 1,
  // which holds the schema.
  Bytes bytes = read_file(path);
  ASSERT_GE(bytes.size(), 4096u);
  crypto::random_fill(bytes.data() + 100, 4096 - 100);
  write_file(path, bytes);

  auto e = expect_sync_error([&] { LocalStore store(path, storage_key); }, SyncErrorCode::kStore);
  EXPECT_NE(std::string(e.what()).find("damaged"), std::string::npos) << e.what();
  EXPECT_EQ(read_file(path), bytes);
}

TEST(LocalStoreMigration, MissingFolderGivesAClearError) {
  TempDir dir;
  auto e = expect_sync_error(
      [&] { LocalStore store(dir / "no-such-folder" / "kith.db", crypto::SectionKey::generate()); },
      SyncErrorCode::kStore);
  EXPECT_NE(std::string(e.what()).find("folder exists"), std::string::npos) << e.what();
}

TEST(LocalStoreMigration, Version4OutgoingEnvelopesKeepAndInvitationsAreMarked) {
  TempDir dir;
  const fs::path path = dir / "kith.db";
  const auto storage_key = crypto::SectionKey::generate();
  const PlanId plan = PlanId::random();
  {
    LocalStore store(path, storage_key);
    store.put_plan(plan, "plan");
    store.add_outgoing_envelope(plan, bytes_of("envelope for a device"));
  }
  {
    // Back to version 4 as it was: no invite_id column.
    RawDb raw(path);
    raw.exec("DROP TABLE names");
    raw.exec("ALTER TABLE outgoing_envelopes DROP COLUMN recovery");
    raw.exec("DROP TABLE recovery_sealed");
    raw.exec("ALTER TABLE outgoing_envelopes DROP COLUMN invite_id");
    raw.exec("DROP TABLE verified_accounts");
    raw.exec("PRAGMA user_version = 4");
  }
  LocalStore store(path, storage_key);
  EXPECT_EQ(store.schema_version(), 7);
  const OpId invite = OpId::random();
  store.add_outgoing_envelope(plan, bytes_of("envelope for an invitation"), invite);
  const auto out = store.outgoing_envelopes(plan);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].envelope, bytes_of("envelope for a device"));
  EXPECT_FALSE(out[0].invite.has_value());
  EXPECT_EQ(out[1].envelope, bytes_of("envelope for an invitation"));
  EXPECT_EQ(out[1].invite, invite);
  // And a person can be marked verified.
  const AccountId person = AccountId::random();
  EXPECT_FALSE(store.verified_at(person).has_value());
  store.set_verified(person, 1234);
  EXPECT_EQ(store.verified_at(person), 1234u);
}

TEST(LocalStoreMigration, Version5OutgoingEnvelopesKeepAndRecoveryOnesAreMarked) {
  TempDir dir;
  const fs::path path = dir / "kith.db";
  const auto storage_key = crypto::SectionKey::generate();
  const PlanId plan = PlanId::random();
  const OpId invite = OpId::random();
  {
    LocalStore store(path, storage_key);
    store.put_plan(plan, "plan");
    store.add_outgoing_envelope(plan, bytes_of("envelope for an invitation"), invite);
  }
  {
    // Back to version 5 as it was: no recovery column or table.
    RawDb raw(path);
    raw.exec("DROP TABLE names");
    raw.exec("ALTER TABLE outgoing_envelopes DROP COLUMN recovery");
    raw.exec("DROP TABLE recovery_sealed");
    raw.exec("PRAGMA user_version = 5");
  }
  LocalStore store(path, storage_key);
  EXPECT_EQ(store.schema_version(), 7);
  store.add_outgoing_envelope(plan, bytes_of("recovery envelope"), std::nullopt, true);
  const auto out = store.outgoing_envelopes(plan);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].invite, invite);
  EXPECT_FALSE(out[0].recovery);
  EXPECT_EQ(out[1].envelope, bytes_of("recovery envelope"));
  EXPECT_FALSE(out[1].invite.has_value());
  EXPECT_TRUE(out[1].recovery);
  EXPECT_TRUE(store.recovery_sealed(plan).empty());
  store.mark_recovery_sealed(plan, "health", 2);
  store.mark_recovery_sealed(plan, "health", 2);  // once is enough; twice is no error
  EXPECT_EQ(store.recovery_sealed(plan),
            (std::set<std::pair<std::string, std::uint64_t>>{{"health", 2}}));
}

TEST(LocalStoreMigration, Version6GainsSealedNamesOfMembers) {
  TempDir dir;
  const fs::path path = dir / "kith.db";
  const auto storage_key = crypto::SectionKey::generate();
  const PlanId plan = PlanId::random();
  {
    LocalStore store(path, storage_key);
    store.put_plan(plan, "plan");
  }
  {
    RawDb raw(path);
    raw.exec("DROP TABLE names");
    raw.exec("PRAGMA user_version = 6");
  }
  const AccountId nia = AccountId::random();
  const OpId invite = OpId::random();
  {
    LocalStore store(path, storage_key);
    EXPECT_EQ(store.schema_version(), 7);
    EXPECT_TRUE(store.names(plan).empty());
    store.set_name(plan, nia.bytes(), "Nia Okafor");
    store.set_name(plan, invite.bytes(), "Sam");
    store.set_name(plan, invite.bytes(), "Sam Reid");  // replaces
    const auto listed = store.names(plan);
    const std::map<Bytes, std::string> names(listed.begin(), listed.end());
    ASSERT_EQ(listed.size(), 2u);
    EXPECT_EQ(names.at(Bytes(nia.bytes().begin(), nia.bytes().end())), "Nia Okafor");
    EXPECT_EQ(names.at(Bytes(invite.bytes().begin(), invite.bytes().end())), "Sam Reid");
    store.set_name(plan, invite.bytes(), "");  // removes
    EXPECT_EQ(store.names(plan).size(), 1u);
  }
  // Sealed: the name is nowhere in the file.
  EXPECT_EQ(RawDb(path).scalar("SELECT count(*) FROM names WHERE instr(name_sealed, 'Nia') > 0"),
            "0");
}

TEST(LocalStoreMigration, NewStoreIsAtTheCurrentVersionInWalMode) {
  TempDir dir;
  const fs::path path = dir / "kith.db";
  { EXPECT_EQ(LocalStore(path, crypto::SectionKey::generate()).schema_version(), 7); }
  RawDb raw(path);
  EXPECT_EQ(raw.scalar("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.scalar("PRAGMA application_id"), std::to_string(kApplicationId));
}

}  // namespace
}  // namespace kith::sync::store_test
