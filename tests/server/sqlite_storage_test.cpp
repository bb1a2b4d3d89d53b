// SqliteStorage: every kind of row round-trips, the read queries filter and order as storage.hpp
// says, a conflicting commit leaves nothing behind, and files that are not ours are refused
// untouched.
#include "sqlite_storage.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "kith/sync/sqlite/database.hpp"
#include "sqlite_storage_schema.hpp"
#include "sqlite_wal_buffer.hpp"
#include "support/temp_dir.hpp"

namespace kith::server {
namespace {

using Options = SqliteStorage::Options;
using namespace std::chrono_literals;

Bytes bytes_of(const std::string& s) { return Bytes(s.begin(), s.end()); }

template <std::size_t N>
std::array<std::uint8_t, N> filled(std::uint8_t value) {
  std::array<std::uint8_t, N> out{};
  out.fill(value);
  return out;
}

DeviceId device(std::uint8_t n) { return DeviceId::from_bytes(Bytes(32, n)); }

// An op whose fields all derive from (seq, section, author, author_seq, section_count), so a
// test can tell every field of every op apart after the round trip.
StoredOp op(std::uint64_t seq, const char* section, std::uint8_t author, std::uint64_t author_seq,
            std::uint64_t section_count) {
  StoredOp o;
  o.seq = seq;
  o.op_id = OpId::random();
  o.section = Section::parse(section);
  o.author = device(author);
  o.author_seq = author_seq;
  o.epoch = seq % 3;
  o.hash = filled<32>(static_cast<std::uint8_t>(seq));
  o.section_count = section_count;
  o.section_digest = filled<32>(static_cast<std::uint8_t>(100 + seq));
  o.header = bytes_of("header " + std::to_string(seq));
  o.body = bytes_of("body " + std::to_string(seq));
  return o;
}

void expect_same(const StoredOp& a, const StoredOp& b) {
  EXPECT_EQ(a.seq, b.seq);
  EXPECT_EQ(a.op_id, b.op_id);
  EXPECT_EQ(a.section, b.section);
  EXPECT_EQ(a.author, b.author);
  EXPECT_EQ(a.author_seq, b.author_seq);
  EXPECT_EQ(a.epoch, b.epoch);
  EXPECT_EQ(a.hash, b.hash);
  EXPECT_EQ(a.section_count, b.section_count);
  EXPECT_EQ(a.section_digest, b.section_digest);
  EXPECT_EQ(a.header, b.header);
  EXPECT_EQ(a.body, b.body);
}

std::vector<std::uint64_t> seqs(const std::vector<StoredOp>& ops) {
  std::vector<std::uint64_t> out;
  for (const StoredOp& o : ops) out.push_back(o.seq);
  return out;
}

std::vector<Section> sections(std::initializer_list<const char*> names) {
  std::vector<Section> out;
  for (const char* n : names) out.push_back(Section::parse(n));
  return out;
}

std::string file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The message of the StorageError `f` throws; fails the test if it throws none.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const StorageError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no StorageError";
  return {};
}

// Writes a batch's membership entries and ops as a kithd of schema 1 or 2 stored them (the op id
// still a column of `ops`), into a file migrated only that far.
void insert_old_rows(sync::sqlite::Database& raw, const WriteBatch& b) {
  for (const auto& [index, entry] : b.membership) {
    auto q = raw.query("INSERT INTO membership VALUES (?1, ?2, ?3)");
    q->bind(1, b.plan.bytes());
    q->bind(2, static_cast<std::int64_t>(index));
    q->bind(3, crypto::ByteView(entry));
    q->run();
  }
  for (const StoredOp& o : b.ops) {
    auto q =
        raw.query("INSERT INTO ops VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
    q->bind(1, b.plan.bytes());
    q->bind(2, static_cast<std::int64_t>(o.seq));
    q->bind(3, o.op_id.bytes());
    q->bind(4, std::string_view(o.section.name()));
    q->bind(5, o.author.bytes());
    q->bind(6, static_cast<std::int64_t>(o.author_seq));
    q->bind(7, static_cast<std::int64_t>(o.epoch));
    q->bind(8, crypto::ByteView(o.hash));
    q->bind(9, static_cast<std::int64_t>(o.section_count));
    q->bind(10, crypto::ByteView(o.section_digest));
    q->bind(11, crypto::ByteView(o.header));
    q->bind(12, crypto::ByteView(o.body));
    q->run();
  }
}

class SqliteStorageTest : public ::testing::Test {
 protected:
  SqliteStorage& open(Options options = {.synchronous = Options::Sync::kNormal}) {
    storage_.reset();
    storage_ = std::make_unique<SqliteStorage>(file_, options);
    return *storage_;
  }
  SqliteStorage& storage() { return storage_ ? *storage_ : open(); }

  // Membership 0..1, and six ops over three sections by two authors:
  //   seq:     1        2       3        4       5        6
  //   section: profile  notes   profile  risk    notes    profile
  //   author:  1/1      1/1     2/1      1/1     2/1      1/2
  WriteBatch sample_batch() {
    WriteBatch b;
    b.plan = plan_;
    b.membership = {{0, bytes_of("genesis")}, {1, bytes_of("grant bob")}};
    b.ops = {op(1, "profile", 1, 1, 1), op(2, "notes", 1, 1, 1), op(3, "profile", 2, 1, 2),
             op(4, "risk", 1, 1, 1),    op(5, "notes", 2, 1, 2), op(6, "profile", 1, 2, 3)};
    return b;
  }

  // The plan's first membership entry, so that ops may follow.
  void commit_genesis(SqliteStorage& s) {
    WriteBatch genesis;
    genesis.plan = plan_;
    genesis.membership = {{0, bytes_of("genesis")}};
    s.commit({&genesis, 1});
  }
  // Op `seq` of author 1's notes chain, in a commit of its own.
  void commit_note(SqliteStorage& s, std::uint64_t seq) {
    WriteBatch b;
    b.plan = plan_;
    b.ops = {op(seq, "notes", 1, seq, seq)};
    s.commit({&b, 1});
  }

  kith::test::TempDir dir_{"kith-sqlite-storage"};
  std::filesystem::path file_ = dir_ / "kithd.db";
  PlanId plan_ = PlanId::random();
  std::unique_ptr<SqliteStorage> storage_;
};

TEST_F(SqliteStorageTest, RoundTripsEveryKindOfRow) {
  WriteBatch b = sample_batch();
  b.heads = {{device(1), Section::parse("profile"), 2, bytes_of("head p2"), filled<64>(7)}};
  const Bytes recipient(32, 9);
  b.envelopes = {{recipient, Section::parse("risk"), 4, bytes_of("sealed risk key")}};
  FetchRecord fetch{0,         AccountId::from_bytes(Bytes(32, 3)),
                    device(1), Section::parse("notes"),
                    5,         1'700'000'000'000,
                    true};
  b.fetches = {fetch};
  b.devices = {{device(1), AccountId::from_bytes(Bytes(32, 3)), bytes_of("certificate"), 42}};
  storage().commit({&b, 1});

  auto all = storage().ops_after(plan_, 0, 100, sections({"profile", "notes", "risk"}), 100);
  ASSERT_EQ(all.size(), b.ops.size());
  for (std::size_t i = 0; i < all.size(); ++i) expect_same(all[i], b.ops[i]);

  auto ref = storage().find_op(plan_, b.ops[2].op_id);
  ASSERT_TRUE(ref);
  EXPECT_EQ(ref->seq, 3u);
  EXPECT_EQ(ref->section.name(), "profile");
  EXPECT_EQ(ref->author, device(2));
  EXPECT_EQ(ref->author_seq, 1u);
  EXPECT_EQ(ref->hash, b.ops[2].hash);
  EXPECT_FALSE(storage().find_op(plan_, OpId::random()));
  EXPECT_FALSE(storage().find_op(PlanId::random(), b.ops[2].op_id));

  auto head = storage().head_at_or_below(plan_, {device(1), Section::parse("profile")}, 2);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->seq, 2u);
  EXPECT_EQ(head->head, bytes_of("head p2"));
  EXPECT_EQ(head->signature, filled<64>(7));

  EXPECT_EQ(storage().membership_from(plan_, 0, 10),
            (std::vector<Bytes>{bytes_of("genesis"), bytes_of("grant bob")}));
  EXPECT_EQ(storage().membership_from(plan_, 1, 10), (std::vector<Bytes>{bytes_of("grant bob")}));
  EXPECT_EQ(storage().membership_from(plan_, 0, 1).size(), 1u);

  auto envelopes = storage().envelopes_for(plan_, recipient);
  ASSERT_EQ(envelopes.size(), 1u);
  EXPECT_EQ(envelopes[0].recipient, recipient);
  EXPECT_EQ(envelopes[0].section.name(), "risk");
  EXPECT_EQ(envelopes[0].epoch, 4u);
  EXPECT_EQ(envelopes[0].envelope, bytes_of("sealed risk key"));
  EXPECT_TRUE(storage().envelopes_for(plan_, Bytes(32, 8)).empty());

  auto log = storage().fetch_log(plan_, 0, 10);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_GT(log[0].id, 0u);
  EXPECT_EQ(log[0].account, fetch.account);
  EXPECT_EQ(log[0].device, fetch.device);
  EXPECT_EQ(log[0].section, fetch.section);
  EXPECT_EQ(log[0].up_to_seq, 5u);
  EXPECT_EQ(log[0].at_ms, fetch.at_ms);
  EXPECT_TRUE(log[0].live);

  auto dev = storage().find_device(device(1));
  ASSERT_TRUE(dev);
  EXPECT_EQ(dev->account, AccountId::from_bytes(Bytes(32, 3)));
  EXPECT_EQ(dev->certificate, bytes_of("certificate"));
  EXPECT_EQ(dev->last_seen_ms, 42u);
  EXPECT_FALSE(storage().find_device(device(2)));

  auto snapshot = storage().load_plan(plan_);
  ASSERT_TRUE(snapshot);
  EXPECT_EQ(snapshot->membership.size(), 2u);
  EXPECT_EQ(snapshot->last_seq, 6u);
  const ChainKey p1{device(1), Section::parse("profile")};
  ASSERT_EQ(snapshot->chain_tips.size(),
            5u);  // (1,profile) (1,notes) (2,profile) (1,risk) (2,notes)
  EXPECT_EQ(snapshot->chain_tips.at(p1), std::make_pair(std::uint64_t{2}, b.ops[5].hash));
  EXPECT_EQ(snapshot->tip_headers.at(p1), b.ops[5].header);
  EXPECT_EQ(snapshot->sections.at(Section::parse("profile")).op_count, 3u);
  EXPECT_EQ(snapshot->sections.at(Section::parse("notes")).digest, b.ops[4].section_digest);
  std::set<OpId> ids(snapshot->op_ids.begin(), snapshot->op_ids.end());
  std::set<OpId> expected;
  for (const auto& op : b.ops) expected.insert(op.op_id);
  EXPECT_EQ(snapshot->op_ids.size(), b.ops.size());
  EXPECT_EQ(ids, expected);
  EXPECT_FALSE(storage().load_plan(PlanId::random()));
}

TEST_F(SqliteStorageTest, OpsAfterFiltersBySectionRangeAndLimitInSeqOrder) {
  WriteBatch b = sample_batch();
  storage().commit({&b, 1});
  auto& s = storage();
  EXPECT_EQ(seqs(s.ops_after(plan_, 0, 6, sections({"profile"}), 100)),
            (std::vector<std::uint64_t>{1, 3, 6}));
  EXPECT_EQ(seqs(s.ops_after(plan_, 0, 6, sections({"risk", "notes"}), 100)),
            (std::vector<std::uint64_t>{2, 4, 5}));
  // after is exclusive, up_to inclusive.
  EXPECT_EQ(seqs(s.ops_after(plan_, 1, 5, sections({"profile", "notes", "risk"}), 100)),
            (std::vector<std::uint64_t>{2, 3, 4, 5}));
  // The limit counts matching ops, the first ones in seq order.
  EXPECT_EQ(seqs(s.ops_after(plan_, 0, 6, sections({"profile", "notes"}), 3)),
            (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(seqs(s.ops_after(plan_, 3, UINT64_MAX, sections({"profile"}), 1)),
            (std::vector<std::uint64_t>{6}));
  EXPECT_TRUE(s.ops_after(plan_, 0, 6, sections({"budget"}), 100).empty());
  EXPECT_TRUE(s.ops_after(plan_, 0, 6, {}, 100).empty());
  EXPECT_TRUE(s.ops_after(plan_, 6, 100, sections({"profile"}), 100).empty());
  EXPECT_TRUE(s.ops_after(plan_, 0, 6, sections({"profile"}), 0).empty());
  EXPECT_TRUE(s.ops_after(PlanId::random(), 0, 6, sections({"profile"}), 100).empty());
}

TEST_F(SqliteStorageTest, HeadAtOrBelowTakesTheLatestHeadThatCoversTheSeq) {
  WriteBatch b;
  b.plan = plan_;
  const Section notes = Section::parse("notes");
  b.heads = {{device(1), notes, 2, bytes_of("h2"), filled<64>(2)},
             {device(1), notes, 5, bytes_of("h5"), filled<64>(5)},
             {device(2), notes, 3, bytes_of("other author"), filled<64>(3)},
             {device(1), Section::parse("risk"), 4, bytes_of("other section"), filled<64>(4)}};
  storage().commit({&b, 1});
  const ChainKey chain{device(1), notes};
  EXPECT_FALSE(storage().head_at_or_below(plan_, chain, 1));
  EXPECT_EQ(storage().head_at_or_below(plan_, chain, 2)->head, bytes_of("h2"));
  EXPECT_EQ(storage().head_at_or_below(plan_, chain, 4)->head, bytes_of("h2"));
  EXPECT_EQ(storage().head_at_or_below(plan_, chain, 5)->head, bytes_of("h5"));
  EXPECT_EQ(storage().head_at_or_below(plan_, chain, 1000)->seq, 5u);
  EXPECT_FALSE(storage().head_at_or_below(PlanId::random(), chain, 1000));

  // A head for an equal (author, section, seq) replaces the stored one.
  WriteBatch again;
  again.plan = plan_;
  again.heads = {{device(1), notes, 5, bytes_of("h5 again"), filled<64>(9)}};
  storage().commit({&again, 1});
  auto head = storage().head_at_or_below(plan_, chain, 5);
  EXPECT_EQ(head->head, bytes_of("h5 again"));
  EXPECT_EQ(head->signature, filled<64>(9));
}

TEST_F(SqliteStorageTest, ChecksumsAtGivesEachSectionsLastOpAtOrBelowTheSeq) {
  WriteBatch b = sample_batch();
  storage().commit({&b, 1});
  const Section profile = Section::parse("profile");
  const Section notes = Section::parse("notes");
  const Section risk = Section::parse("risk");
  EXPECT_TRUE(storage().checksums_at(plan_, 0).empty());

  auto at1 = storage().checksums_at(plan_, 1);
  ASSERT_EQ(at1.size(), 1u);
  EXPECT_EQ(at1.at(profile).op_count, 1u);
  EXPECT_EQ(at1.at(profile).digest, b.ops[0].section_digest);

  auto at4 = storage().checksums_at(plan_, 4);
  ASSERT_EQ(at4.size(), 3u);
  EXPECT_EQ(at4.at(profile).op_count, 2u);
  EXPECT_EQ(at4.at(profile).digest, b.ops[2].section_digest);
  EXPECT_EQ(at4.at(notes).digest, b.ops[1].section_digest);
  EXPECT_EQ(at4.at(risk).digest, b.ops[3].section_digest);

  auto at6 = storage().checksums_at(plan_, 6);
  EXPECT_EQ(at6.at(profile).op_count, 3u);
  EXPECT_EQ(at6.at(notes).op_count, 2u);
  EXPECT_EQ(at6.at(notes).digest, b.ops[4].section_digest);
  EXPECT_EQ(storage().checksums_at(plan_, 1000).at(profile).digest, b.ops[5].section_digest);
  EXPECT_TRUE(storage().checksums_at(PlanId::random(), 6).empty());
}

TEST_F(SqliteStorageTest, MembershipConflictFailsTheWholeCommitAndKeepsEarlierData) {
  WriteBatch first = sample_batch();
  storage().commit({&first, 1});

  // Two batches in one commit: the first is fine, the second rewrites entry 1.
  WriteBatch fine;
  fine.plan = plan_;
  fine.ops = {op(7, "notes", 1, 2, 3)};
  fine.membership = {{2, bytes_of("grant carol")}};
  fine.devices = {{device(5), AccountId::from_bytes(Bytes(32, 5)), bytes_of("cert"), 1}};
  WriteBatch conflicting;
  conflicting.plan = plan_;
  conflicting.membership = {{1, bytes_of("a different entry 1")}};
  const WriteBatch both[] = {fine, conflicting};
  const std::string message = error_of([&] { storage().commit(both); });
  EXPECT_NE(message.find("membership entry 1"), std::string::npos) << message;
  EXPECT_NE(message.find(plan_.hex()), std::string::npos) << message;

  EXPECT_EQ(storage().membership_from(plan_, 0, 10).size(), 2u);
  EXPECT_FALSE(storage().find_op(plan_, fine.ops[0].op_id));
  EXPECT_FALSE(storage().find_device(device(5)));
  EXPECT_EQ(storage().load_plan(plan_)->last_seq, 6u);
  EXPECT_EQ(storage().membership_from(plan_, 1, 1)[0], bytes_of("grant bob"));

  // Writing an entry again with the same bytes (a retried request) is not a conflict.
  WriteBatch retry;
  retry.plan = plan_;
  retry.membership = {{1, bytes_of("grant bob")}, {2, bytes_of("grant carol")}};
  storage().commit({&retry, 1});
  EXPECT_EQ(storage().membership_from(plan_, 0, 10).size(), 3u);
}

TEST_F(SqliteStorageTest, TakenOpIdOrSeqFailsTheCommit) {
  WriteBatch first = sample_batch();
  storage().commit({&first, 1});

  WriteBatch same_id;
  same_id.plan = plan_;
  same_id.ops = {op(7, "notes", 1, 2, 3)};
  same_id.ops[0].op_id = first.ops[0].op_id;
  std::string message = error_of([&] { storage().commit({&same_id, 1}); });
  EXPECT_NE(message.find(first.ops[0].op_id.hex()), std::string::npos) << message;

  WriteBatch same_seq;
  same_seq.plan = plan_;
  same_seq.ops = {op(7, "notes", 1, 2, 3), op(6, "notes", 1, 3, 4)};
  message = error_of([&] { storage().commit({&same_seq, 1}); });
  EXPECT_NE(message.find("sequence 6"), std::string::npos) << message;
  EXPECT_FALSE(storage().find_op(plan_, same_seq.ops[0].op_id));
  EXPECT_EQ(storage().load_plan(plan_)->last_seq, 6u);

  // The same op id in another plan is another op.
  same_id.plan = PlanId::random();
  same_id.membership = {{0, bytes_of("genesis")}};
  storage().commit({&same_id, 1});
  EXPECT_EQ(storage().find_op(same_id.plan, first.ops[0].op_id)->seq, 7u);
}

TEST_F(SqliteStorageTest, IdenticalEnvelopeIsStoredOnceAndFetchIdsIncrease) {
  WriteBatch b;
  b.plan = plan_;
  const Bytes recipient(32, 1);
  b.envelopes = {{recipient, Section::parse("notes"), 1, bytes_of("e1")},
                 {recipient, Section::parse("notes"), 1, bytes_of("e1")},
                 {recipient, Section::parse("notes"), 2, bytes_of("e2")}};
  FetchRecord fetch;
  fetch.up_to_seq = 1;
  b.fetches = {fetch, fetch, fetch};
  storage().commit({&b, 1});
  storage().commit({&b, 1});
  auto envelopes = storage().envelopes_for(plan_, recipient);
  ASSERT_EQ(envelopes.size(), 2u);
  EXPECT_EQ(envelopes[0].envelope, bytes_of("e1"));
  EXPECT_EQ(envelopes[1].envelope, bytes_of("e2"));

  auto log = storage().fetch_log(plan_, 0, 100);
  ASSERT_EQ(log.size(), 6u);
  for (std::size_t i = 1; i < log.size(); ++i) EXPECT_GT(log[i].id, log[i - 1].id);
  auto rest = storage().fetch_log(plan_, log[3].id, 2);
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(rest[0].id, log[4].id);
  EXPECT_TRUE(storage().fetch_log(PlanId::random(), 0, 100).empty());
}

TEST_F(SqliteStorageTest, DeviceUpsertUpdatesLastSeen) {
  WriteBatch b;
  b.plan = plan_;
  b.devices = {{device(1), AccountId::from_bytes(Bytes(32, 3)), bytes_of("cert"), 10}};
  storage().commit({&b, 1});
  b.devices[0].last_seen_ms = 20;
  storage().commit({&b, 1});
  EXPECT_EQ(storage().find_device(device(1))->last_seen_ms, 20u);
}

TEST_F(SqliteStorageTest, ReopenedFileReadsEverythingBack) {
  WriteBatch b = sample_batch();
  b.devices = {{device(1), AccountId::from_bytes(Bytes(32, 3)), bytes_of("cert"), 10}};
  open({.synchronous = Options::Sync::kFull, .read_connections = 1}).commit({&b, 1});
  storage_.reset();
  ASSERT_FALSE(std::filesystem::exists(file_.string() + "-wal"));  // checkpointed on close

  auto& s = open();
  auto all = s.ops_after(plan_, 0, 100, sections({"profile", "notes", "risk"}), 100);
  ASSERT_EQ(all.size(), 6u);
  for (std::size_t i = 0; i < all.size(); ++i) expect_same(all[i], b.ops[i]);
  EXPECT_EQ(s.load_plan(plan_)->membership.size(), 2u);
  EXPECT_EQ(s.find_device(device(1))->last_seen_ms, 10u);

  sync::sqlite::Database raw(file_);
  EXPECT_EQ(raw.pragma_int("application_id"), SqliteStorage::kApplicationId);
  EXPECT_EQ(raw.pragma_int("user_version"), SqliteStorage::newest_schema());
}

TEST_F(SqliteStorageTest, TheCheckpointThreadKeepsTheWalShortWhileCommitsGoOn) {
  // Small thresholds: every few commits cross them. Commits do not checkpoint themselves.
  Options options{.synchronous = Options::Sync::kFull, .read_connections = 1};
  options.checkpoint = {.passive_pages = 8, .restart_pages = 64};
  auto& s = open(options);
  commit_genesis(s);
  constexpr std::uint64_t kOps = 400;
  for (std::uint64_t seq = 1; seq <= kOps; ++seq) {
    commit_note(s, seq);
  }
  const auto t0 = std::chrono::steady_clock::now();
  while (s.wal_checkpoints() == 0 && std::chrono::steady_clock::now() - t0 < 5s) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_GT(s.wal_checkpoints(), 0u);
  // Each commit writes a few pages; without checkpoints the WAL would hold them all.
  const auto wal = std::filesystem::file_size(file_.string() + "-wal");
  EXPECT_LT(wal, kOps * 2 * 4096) << "the WAL was never started over";
  EXPECT_EQ(s.load_plan(plan_)->last_seq, kOps);

  storage_.reset();
  auto& again = open();
  auto all = again.ops_after(plan_, 0, kOps, sections({"notes"}), kOps);
  ASSERT_EQ(all.size(), kOps);
  EXPECT_EQ(all.back().seq, kOps);
}

// The writer's WAL frames are gathered (sqlite_wal_buffer.hpp) only under synchronous = FULL,
// where every commit syncs the WAL before other connections may read it; never under NORMAL.
TEST_F(SqliteStorageTest, OnlyAFullySyncedWriterGathersItsWalWrites) {
  for (const auto sync : {Options::Sync::kNormal, Options::Sync::kFull}) {
    storage_.reset();
    std::filesystem::remove(file_);
    auto& s = open({.synchronous = sync, .read_connections = 1});
    const WalBufferCounts before = wal_buffer_counts();
    WriteBatch b = sample_batch();
    s.commit({&b, 1});
    const WalBufferCounts after = wal_buffer_counts();
    if (sync == Options::Sync::kNormal) {
      EXPECT_EQ(after.asked, before.asked) << "NORMAL must not hold frames back";
    } else {
      EXPECT_GE(after.asked - before.asked, 2u);
      EXPECT_LT(after.written - before.written, after.asked - before.asked);
    }
    // What was committed is read at once through another connection.
    EXPECT_EQ(s.load_plan(plan_)->last_seq, 6u);
  }
}

// Commits append while each PASSIVE checkpoint copies (on the checkpointer's thread), so it alone
// never lets the WAL start over; the RESTART that follows each one does, long before restart_pages.
TEST_F(SqliteStorageTest, TheWalStartsOverUnderSteadyCommitsWithoutReachingTheRestartLimit) {
  Options options{.synchronous = Options::Sync::kNormal, .read_connections = 1};
  options.checkpoint = {.passive_pages = 16, .restart_pages = 1 << 30};
  auto& s = open(options);
  commit_genesis(s);
  constexpr std::uint64_t kOps = 3000;
  std::uintmax_t largest_wal = 0;
  for (std::uint64_t seq = 1; seq <= kOps; ++seq) {
    commit_note(s, seq);
    if (seq % 100 == 0) {
      largest_wal = std::max(largest_wal, std::filesystem::file_size(file_.string() + "-wal"));
    }
  }
  EXPECT_GT(s.wal_checkpoints(), 0u);
  // The file's size is its high-water mark. Without a restart the WAL holds every commit's
  // pages, ~24 KB an op here (73 MB when this was written); restarted, a few MB at most.
  EXPECT_LT(largest_wal, std::uintmax_t{kOps} * 4096) << "the WAL was never started over";
  EXPECT_EQ(s.load_plan(plan_)->last_seq, kOps);
}

// A read of older frames (a catch-up) stops a RESTART; the one after each PASSIVE checkpoint
// gives up at once rather than hold commits until the read ends or reader_wait_ms pass.
TEST_F(SqliteStorageTest, AReadInProgressDoesNotHoldCommitsWhileTheWalIsRestarted) {
  Options options{.synchronous = Options::Sync::kNormal, .read_connections = 1};
  options.checkpoint = {.passive_pages = 8, .restart_pages = 1 << 30, .reader_wait_ms = 3000};
  auto& s = open(options);
  commit_genesis(s);
  sync::sqlite::Database reader(file_);
  reader.exec("BEGIN");
  {
    auto q = reader.query("SELECT count(*) FROM membership");  // holds its snapshot
    ASSERT_TRUE(q->step());
  }
  std::chrono::steady_clock::duration slowest{};
  for (std::uint64_t seq = 1; seq <= 200; ++seq) {
    const auto start = std::chrono::steady_clock::now();
    commit_note(s, seq);
    slowest = std::max(slowest, std::chrono::steady_clock::now() - start);
  }
  reader.exec("COMMIT");
  EXPECT_GT(s.wal_checkpoints(), 0u);
  // A RESTART that waited for the reader would have held one commit for 3 s.
  EXPECT_LT(slowest, 1500ms);
  EXPECT_EQ(s.load_plan(plan_)->last_seq, 200u);
}

TEST_F(SqliteStorageTest, ThePlanIndexListsAnAccountsPlansInPlanIdOrder) {
  auto& s = open();
  const AccountId ada = AccountId::from_bytes(Bytes(32, 0xAD));
  const AccountId bo = AccountId::from_bytes(Bytes(32, 0xB0));
  std::vector<PlanId> plans = {PlanId::random(), PlanId::random(), PlanId::random()};
  std::sort(plans.begin(), plans.end());
  // Written in another order than they are read.
  for (std::size_t i : {2u, 0u, 1u}) {
    WriteBatch b;
    b.plan = plans[i];
    b.plan_index_put.push_back({ada, plans[i], i != 1, i == 1 ? bo : ada, 1000 + i, 0});
    if (i == 1) b.plan_index_put.push_back({bo, plans[i], true, bo, 1001, 0});
    s.commit({&b, 1});
  }
  auto all = s.plans_of(ada, std::nullopt, 10);
  ASSERT_EQ(all.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(all[i].plan, plans[i]);
    EXPECT_EQ(all[i].account, ada);
    EXPECT_EQ(all[i].owner, i != 1);
    EXPECT_EQ(all[i].created_at_ms, 1000 + i);
  }
  EXPECT_EQ(all[1].owner_account, bo);
  EXPECT_EQ(s.plans_of(ada, plans[0], 1), std::vector<AccountPlan>{all[1]});
  EXPECT_TRUE(s.plans_of(ada, plans[2], 10).empty());
  EXPECT_EQ(s.plans_of(bo, std::nullopt, 10).size(), 1u);

  // A put replaces the row (a new expiry); a drop removes it and nothing else.
  WriteBatch change;
  change.plan = plans[1];
  change.plan_index_put.push_back({ada, plans[1], false, bo, 1001, 5000});
  s.commit({&change, 1});
  EXPECT_EQ(s.plans_of(ada, plans[0], 1).at(0).expires_at_ms, 5000u);
  WriteBatch drop;
  drop.plan = plans[1];
  drop.plan_index_drop.push_back(ada);
  s.commit({&drop, 1});
  EXPECT_EQ(s.plans_of(ada, std::nullopt, 10), (std::vector<AccountPlan>{all[0], all[2]}));
  EXPECT_EQ(s.plans_of(bo, std::nullopt, 10).size(), 1u);

  // A row of another plan than its batch's is refused, and the commit with it.
  WriteBatch wrong;
  wrong.plan = plans[0];
  wrong.plan_index_put.push_back({bo, plans[2], false, ada, 1, 0});
  EXPECT_NE(error_of([&] { s.commit({&wrong, 1}); }).find("plan index row"), std::string::npos);
  EXPECT_EQ(s.plans_of(bo, std::nullopt, 10).size(), 1u);
}

TEST_F(SqliteStorageTest, ASchemaOneFileIsMigratedWithEverythingInIt) {
  // A file as a kithd of schema 1 left it: ops and heads in WITHOUT ROWID tables.
  const WriteBatch b = sample_batch();
  {
    sync::sqlite::Database raw(file_);
    storage_schema::migrate(raw, storage_schema::inspect(raw), 1);
    ASSERT_EQ(raw.pragma_int("user_version"), 1);
    insert_old_rows(raw, b);
    auto q = raw.query("INSERT INTO heads VALUES (?1, ?2, 'profile', 2, ?3, ?4)");
    q->bind(1, plan_.bytes());
    q->bind(2, device(1).bytes());
    q->bind(3, crypto::ByteView(bytes_of("head p2")));
    q->bind(4, crypto::ByteView(filled<64>(7)));
    q->run();
  }

  auto& s = open();
  auto all = s.ops_after(plan_, 0, 100, sections({"profile", "notes", "risk"}), 100);
  ASSERT_EQ(all.size(), 6u);
  for (std::size_t i = 0; i < all.size(); ++i) expect_same(all[i], b.ops[i]);
  EXPECT_EQ(s.find_op(plan_, b.ops[3].op_id)->seq, 4u);
  auto snap = s.load_plan(plan_);
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->last_seq, 6u);
  EXPECT_EQ(snap->membership.size(), 2u);
  EXPECT_EQ(snap->chain_tips.at(ChainKey{device(1), Section::parse("profile")}).first, 2u);
  EXPECT_EQ(snap->tip_headers.at(ChainKey{device(2), Section::parse("notes")}), b.ops[4].header);
  EXPECT_EQ(snap->sections.at(Section::parse("profile")).op_count, 3u);
  EXPECT_EQ(s.head_at_or_below(plan_, ChainKey{device(1), Section::parse("profile")}, 9)->head,
            bytes_of("head p2"));
  // The same rules as before: a taken seq or op id fails the commit.
  WriteBatch again;
  again.plan = plan_;
  again.ops = {op(6, "notes", 3, 1, 1)};
  EXPECT_NE(error_of([&] { s.commit({&again, 1}); }).find("sequence 6"), std::string::npos);
  again.ops = {op(7, "notes", 3, 1, 1)};
  again.ops[0].op_id = b.ops[0].op_id;
  EXPECT_NE(error_of([&] { s.commit({&again, 1}); }).find("already stored"), std::string::npos);

  sync::sqlite::Database raw(file_);
  EXPECT_EQ(raw.pragma_int("user_version"), SqliteStorage::newest_schema());
  auto q = raw.query("SELECT sql FROM sqlite_schema WHERE name IN ('ops', 'heads')");
  int tables = 0;
  while (q->step()) {
    ++tables;
    EXPECT_EQ(q->column_text(0).find("WITHOUT ROWID"), std::string::npos) << q->column_text(0);
  }
  EXPECT_EQ(tables, 2);
}

// Op ids wait unmerged (in ops, above the plan's mark) and are merged into op_ids once
// `merge_op_ids_at` of them wait: before and after a merge, and after reopening with ids merged
// and unmerged, every id is found with its op, load_plan lists each once, and a commit refuses
// a taken one.
TEST_F(SqliteStorageTest, OpIdsAreFoundAndRefusedBeforeAndAfterTheyAreMerged) {
  Options options{.synchronous = Options::Sync::kNormal, .read_connections = 1};
  options.merge_op_ids_at = 8;
  auto& s = open(options);
  WriteBatch first = sample_batch();  // 6 ids: below the threshold
  s.commit({&first, 1});
  EXPECT_EQ(s.unmerged_op_ids(), 6u);

  std::vector<StoredOp> all = first.ops;
  auto expect_all_found = [&](SqliteStorage& st) {
    std::vector<OpId> ids;
    for (const StoredOp& o : all) ids.push_back(o.op_id);
    ids.push_back(OpId::random());
    ids.push_back(all[0].op_id);  // asked twice
    const auto refs = st.find_ops(plan_, ids);
    ASSERT_EQ(refs.size(), ids.size());
    for (std::size_t i = 0; i < all.size(); ++i) {
      ASSERT_TRUE(refs[i]) << i;
      EXPECT_EQ(refs[i]->seq, all[i].seq);
      EXPECT_EQ(refs[i]->hash, all[i].hash);
      EXPECT_EQ(refs[i]->author_seq, all[i].author_seq);
      EXPECT_EQ(st.find_op(plan_, all[i].op_id)->seq, all[i].seq);
    }
    EXPECT_FALSE(refs[all.size()]);
    ASSERT_TRUE(refs[all.size() + 1]);
    EXPECT_EQ(refs[all.size() + 1]->seq, all[0].seq);
    EXPECT_FALSE(st.find_op(PlanId::random(), all[0].op_id));
    const auto snap = st.load_plan(plan_);
    std::multiset<OpId> listed(snap->op_ids.begin(), snap->op_ids.end());
    std::multiset<OpId> expected;
    for (const StoredOp& o : all) expected.insert(o.op_id);
    EXPECT_EQ(listed, expected);
  };
  auto expect_refused = [&](SqliteStorage& st, const OpId& taken) {
    WriteBatch again;
    again.plan = plan_;
    again.ops = {op(all.back().seq + 1, "notes", 3, 1, 1)};
    again.ops[0].op_id = taken;
    const std::string message = error_of([&] { st.commit({&again, 1}); });
    EXPECT_NE(message.find("already stored"), std::string::npos) << message;
    EXPECT_NE(message.find(taken.hex()), std::string::npos) << message;
  };
  expect_all_found(s);
  expect_refused(s, first.ops[2].op_id);

  WriteBatch second;  // 6 + 3 ids: reaches the threshold, so the commit merges all nine
  second.plan = plan_;
  second.ops = {op(7, "notes", 3, 1, 1), op(8, "notes", 3, 2, 2), op(9, "notes", 3, 3, 3)};
  s.commit({&second, 1});
  all.insert(all.end(), second.ops.begin(), second.ops.end());
  EXPECT_EQ(s.unmerged_op_ids(), 0u);
  expect_all_found(s);
  expect_refused(s, first.ops[4].op_id);
  expect_refused(s, second.ops[2].op_id);

  WriteBatch third;  // recent again, beside the merged ones
  third.plan = plan_;
  third.ops = {op(10, "risk", 2, 1, 1), op(11, "risk", 2, 2, 2)};
  s.commit({&third, 1});
  all.insert(all.end(), third.ops.begin(), third.ops.end());
  EXPECT_EQ(s.unmerged_op_ids(), 2u);
  expect_refused(s, third.ops[1].op_id);

  // As after kill -9: the writer's set of recent ids is read back from the file.
  auto& reopened = open(options);
  EXPECT_EQ(reopened.unmerged_op_ids(), 2u);
  expect_all_found(reopened);
  expect_refused(reopened, third.ops[0].op_id);
  expect_refused(reopened, first.ops[0].op_id);
  EXPECT_EQ(reopened.load_plan(plan_)->last_seq, 11u);
}

// A damaged file: a plan's mark row is gone, so all its ops count as unmerged again, ids that
// op_ids already holds included. The next merge skips those instead of failing at every commit,
// marks the plan at its last op again, and every id is then listed and found once.
TEST_F(SqliteStorageTest, AMergeMendsAPlanWhoseMarkWasLost) {
  Options options{.synchronous = Options::Sync::kNormal, .read_connections = 1};
  options.merge_op_ids_at = 8;
  std::vector<StoredOp> all;
  {
    auto& s = open(options);
    WriteBatch first = sample_batch();  // seqs 1-6
    WriteBatch second;                  // 7-9: nine waiting, so this commit merges them
    second.plan = plan_;
    second.ops = {op(7, "notes", 3, 1, 1), op(8, "notes", 3, 2, 2), op(9, "notes", 3, 3, 3)};
    const WriteBatch both[] = {first, second};
    s.commit(both);
    ASSERT_EQ(s.unmerged_op_ids(), 0u);
    all = first.ops;
    all.insert(all.end(), second.ops.begin(), second.ops.end());
  }
  storage_.reset();
  auto mark_of = [&]() -> std::optional<std::int64_t> {
    sync::sqlite::Database raw(file_);
    auto q = raw.query("SELECT merged_seq FROM op_id_marks WHERE plan_id = ?1");
    q->bind(1, plan_.bytes());
    if (!q->step()) return std::nullopt;
    return q->column_int(0);
  };
  ASSERT_EQ(mark_of(), 9);
  {
    sync::sqlite::Database raw(file_);
    auto lose = raw.query("DELETE FROM op_id_marks WHERE plan_id = ?1");
    lose->bind(1, plan_.bytes());
    lose->run();
  }

  auto& s = open(options);
  WriteBatch third;  // 10-12: the plan gets a mark of 0 and 3 ids wait
  third.plan = plan_;
  third.ops = {op(10, "risk", 2, 1, 1), op(11, "risk", 2, 2, 2), op(12, "risk", 2, 3, 3)};
  s.commit({&third, 1});
  EXPECT_EQ(s.unmerged_op_ids(), 3u);
  WriteBatch fourth;  // 13-17: eight wait, so this commit merges everything above 0
  fourth.plan = plan_;
  fourth.ops = {op(13, "risk", 2, 4, 4), op(14, "risk", 2, 5, 5), op(15, "risk", 2, 6, 6),
                op(16, "risk", 2, 7, 7), op(17, "risk", 2, 8, 8)};
  s.commit({&fourth, 1});
  EXPECT_EQ(s.unmerged_op_ids(), 0u);
  all.insert(all.end(), third.ops.begin(), third.ops.end());
  all.insert(all.end(), fourth.ops.begin(), fourth.ops.end());

  const auto snap = s.load_plan(plan_);
  std::multiset<OpId> listed(snap->op_ids.begin(), snap->op_ids.end());
  std::multiset<OpId> expected;
  for (const StoredOp& o : all) {
    expected.insert(o.op_id);
    auto ref = s.find_op(plan_, o.op_id);
    ASSERT_TRUE(ref) << o.seq;
    EXPECT_EQ(ref->seq, o.seq);
  }
  EXPECT_EQ(listed, expected);
  WriteBatch again;
  again.plan = plan_;
  again.ops = {op(18, "notes", 3, 4, 4)};
  again.ops[0].op_id = all[0].op_id;
  EXPECT_NE(error_of([&] { s.commit({&again, 1}); }).find("already stored"), std::string::npos);
  storage_.reset();
  EXPECT_EQ(mark_of(), 17);
}

TEST_F(SqliteStorageTest, AFailedCommitLeavesItsOpIdsFree) {
  WriteBatch first = sample_batch();
  storage().commit({&first, 1});
  // The first batch is fine, the second takes seq 6: neither is stored, so neither op id is.
  WriteBatch fine;
  fine.plan = plan_;
  fine.ops = {op(7, "notes", 3, 1, 1)};
  WriteBatch clash;
  clash.plan = plan_;
  clash.ops = {op(6, "notes", 3, 2, 2)};
  const WriteBatch both[] = {fine, clash};
  EXPECT_NE(error_of([&] { storage().commit(both); }).find("sequence 6"), std::string::npos);
  EXPECT_EQ(storage().unmerged_op_ids(), 6u);
  EXPECT_FALSE(storage().find_op(plan_, fine.ops[0].op_id));
  storage().commit({&fine, 1});
  EXPECT_EQ(storage().find_op(plan_, fine.ops[0].op_id)->seq, 7u);

  // Two ops with one id in one commit: the second is refused, and the first with it.
  WriteBatch twice;
  twice.plan = plan_;
  twice.ops = {op(8, "notes", 3, 2, 2), op(9, "notes", 3, 3, 3)};
  twice.ops[1].op_id = twice.ops[0].op_id;
  EXPECT_NE(error_of([&] {
              storage().commit({&twice, 1});
            }).find("already stored"),
            std::string::npos);
  EXPECT_FALSE(storage().find_op(plan_, twice.ops[0].op_id));
  twice.ops.pop_back();
  storage().commit({&twice, 1});
  EXPECT_EQ(storage().find_op(plan_, twice.ops[0].op_id)->seq, 8u);
}

TEST_F(SqliteStorageTest, ASchemaTwoFileIsMigratedWithItsOpIdsMerged) {
  // A file as a kithd of schema 2 left it, with ops of two plans in it.
  const WriteBatch b = sample_batch();
  WriteBatch other = sample_batch();
  other.plan = PlanId::random();
  for (StoredOp& o : other.ops) o.op_id = OpId::random();
  other.ops[1].op_id = b.ops[1].op_id;  // the same id in another plan is another op
  const std::array<const WriteBatch*, 2> plans{&b, &other};
  {
    sync::sqlite::Database raw(file_);
    storage_schema::migrate(raw, storage_schema::inspect(raw), 2);
    ASSERT_EQ(raw.pragma_int("user_version"), 2);
    for (const WriteBatch* batch : plans) insert_old_rows(raw, *batch);
  }

  auto& s = open();
  EXPECT_EQ(s.unmerged_op_ids(), 0u);  // all of them in op_ids
  for (const WriteBatch* batch : plans) {
    for (const StoredOp& o : batch->ops) {
      auto ref = s.find_op(batch->plan, o.op_id);
      ASSERT_TRUE(ref);
      EXPECT_EQ(ref->seq, o.seq);
      EXPECT_EQ(ref->hash, o.hash);
    }
    const auto snap = s.load_plan(batch->plan);
    EXPECT_EQ(snap->op_ids.size(), 6u);
    // Chain tips, from the ops_by_chain index of schema 4 (migration 5).
    EXPECT_EQ(snap->chain_tips.size(), 5u);
    EXPECT_EQ(snap->chain_tips.at(ChainKey{device(1), Section::parse("profile")}),
              std::make_pair(std::uint64_t{2}, batch->ops[5].hash));
    EXPECT_EQ(snap->tip_headers.at(ChainKey{device(2), Section::parse("notes")}),
              batch->ops[4].header);
  }
  WriteBatch again;
  again.plan = plan_;
  again.ops = {op(7, "notes", 3, 1, 1)};
  again.ops[0].op_id = b.ops[5].op_id;
  EXPECT_NE(error_of([&] { s.commit({&again, 1}); }).find("already stored"), std::string::npos);
  again.ops[0].op_id = OpId::random();
  s.commit({&again, 1});
  EXPECT_EQ(s.find_op(plan_, again.ops[0].op_id)->seq, 7u);
  // A migrated plan's chains move on, and new ones start.
  WriteBatch next;
  next.plan = plan_;
  next.ops = {op(8, "notes", 3, 2, 2), op(9, "risk", 3, 1, 2), op(10, "profile", 1, 3, 4)};
  s.commit({&next, 1});
  const auto snap = s.load_plan(plan_);
  EXPECT_EQ(snap->chain_tips.size(), 7u);
  EXPECT_EQ(snap->chain_tips.at(ChainKey{device(3), Section::parse("notes")}),
            std::make_pair(std::uint64_t{2}, next.ops[0].hash));
  EXPECT_EQ(snap->chain_tips.at(ChainKey{device(3), Section::parse("risk")}).first, 1u);
  EXPECT_EQ(snap->chain_tips.at(ChainKey{device(1), Section::parse("profile")}).first, 3u);
  EXPECT_EQ(snap->tip_headers.at(ChainKey{device(1), Section::parse("profile")}),
            next.ops[2].header);

  sync::sqlite::Database raw(file_);
  EXPECT_EQ(raw.pragma_int("user_version"), SqliteStorage::newest_schema());
  auto q = raw.query(
      "SELECT count(*) FROM sqlite_schema WHERE name IN ('ops_by_op_id', 'ops_by_chain')");
  ASSERT_TRUE(q->step());
  EXPECT_EQ(q->column_int(0), 0);
}

// A schema-5 file kept a plan's unmerged op ids in recent_op_ids: migration 6 merges them, marks
// each plan at its last op, and drops the table; ids merged before and after are all found once,
// and a later op waits unmerged above the mark, also after reopening.
TEST_F(SqliteStorageTest, ASchemaFiveFileIsMigratedWithItsRecentOpIdsMerged) {
  const WriteBatch b = sample_batch();  // ops 1-4 merged, 5-6 recent
  WriteBatch other = sample_batch();    // never merged
  other.plan = PlanId::random();
  for (StoredOp& o : other.ops) o.op_id = OpId::random();
  const std::array<const WriteBatch*, 2> plans{&b, &other};
  {
    sync::sqlite::Database raw(file_);
    storage_schema::migrate(raw, storage_schema::inspect(raw), 5);
    ASSERT_EQ(raw.pragma_int("user_version"), 5);
    for (const WriteBatch* batch : plans) {
      insert_old_rows(raw, *batch);
      for (const StoredOp& o : batch->ops) {
        const bool merged = batch == &b && o.seq <= 4;
        auto q = raw.query(merged ? "INSERT INTO op_ids (plan_id, op_id, seq) VALUES (?1, ?2, ?3)"
                                  : "INSERT INTO recent_op_ids (plan_id, op_id, seq) "
                                    "VALUES (?1, ?2, ?3)");
        q->bind(1, batch->plan.bytes());
        q->bind(2, o.op_id.bytes());
        q->bind(3, static_cast<std::int64_t>(o.seq));
        q->run();
      }
    }
  }

  auto& s = open();
  EXPECT_EQ(s.unmerged_op_ids(), 0u);
  for (const WriteBatch* batch : plans) {
    for (const StoredOp& o : batch->ops) {
      auto ref = s.find_op(batch->plan, o.op_id);
      ASSERT_TRUE(ref) << o.seq;
      EXPECT_EQ(ref->seq, o.seq);
      EXPECT_EQ(ref->hash, o.hash);
    }
    const auto snap = s.load_plan(batch->plan);
    std::set<OpId> listed(snap->op_ids.begin(), snap->op_ids.end());
    EXPECT_EQ(snap->op_ids.size(), 6u);
    EXPECT_EQ(listed.size(), 6u);
  }
  {
    sync::sqlite::Database raw(file_);
    EXPECT_EQ(raw.pragma_int("user_version"), SqliteStorage::newest_schema());
    auto gone = raw.query("SELECT count(*) FROM sqlite_schema WHERE name = 'recent_op_ids'");
    ASSERT_TRUE(gone->step());
    EXPECT_EQ(gone->column_int(0), 0);
    auto marks = raw.query("SELECT merged_seq FROM op_id_marks WHERE plan_id = ?1");
    for (const WriteBatch* batch : plans) {
      marks->bind(1, batch->plan.bytes());
      ASSERT_TRUE(marks->step());
      EXPECT_EQ(marks->column_int(0), 6);
      marks->reset();
    }
  }

  WriteBatch again;
  again.plan = plan_;
  again.ops = {op(7, "notes", 3, 1, 1)};
  again.ops[0].op_id = b.ops[5].op_id;  // was in recent_op_ids
  EXPECT_NE(error_of([&] { s.commit({&again, 1}); }).find("already stored"), std::string::npos);
  again.ops[0].op_id = OpId::random();
  s.commit({&again, 1});
  EXPECT_EQ(s.unmerged_op_ids(), 1u);

  auto& reopened = open();
  EXPECT_EQ(reopened.unmerged_op_ids(), 1u);
  EXPECT_EQ(reopened.find_op(plan_, again.ops[0].op_id)->seq, 7u);
  EXPECT_EQ(reopened.load_plan(plan_)->op_ids.size(), 7u);
  EXPECT_NE(error_of([&] {
              WriteBatch twice = again;
              twice.ops[0].seq = 8;
              reopened.commit({&twice, 1});
            }).find("already stored"),
            std::string::npos);
}

TEST_F(SqliteStorageTest, RefusesAFileThatIsNotADatabaseAndLeavesItUnchanged) {
  {
    std::ofstream out(file_, std::ios::binary);
    for (int i = 0; i < 1000; ++i) out << "these are the notes of a care plan, not a database\n";
  }
  const std::string before = file_bytes(file_);
  const std::string message = error_of([&] { open(); });
  EXPECT_EQ(message.find("The file " + file_.string() +
                         " is not a kithd database (it is not an SQLite database at all); check "
                         "the database path kithd was given"),
            0u)
      << message;
  EXPECT_EQ(file_bytes(file_), before);
}

TEST_F(SqliteStorageTest, RefusesAnotherApplicationsDatabaseAndLeavesItUnchanged) {
  {
    sync::sqlite::Database other(file_);
    other.exec("CREATE TABLE recipes (name TEXT); INSERT INTO recipes VALUES ('soup')");
  }
  const std::string before = file_bytes(file_);
  std::string message = error_of([&] { open(); });
  EXPECT_NE(message.find("is an SQLite database of another application, not a kithd database"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find(file_.string()), std::string::npos) << message;
  EXPECT_EQ(file_bytes(file_), before);

  // A Kith device's local store is named as such.
  const std::string kith_store = "PRAGMA application_id = " + std::to_string(0x4B495448);
  { sync::sqlite::Database(file_).exec(kith_store.c_str()); }
  message = error_of([&] { open(); });
  EXPECT_NE(message.find("is a Kith device's local store, not a kithd database"), std::string::npos)
      << message;
}

TEST_F(SqliteStorageTest, RefusesADatabaseOfANewerSchemaAndLeavesItUnchanged) {
  open();
  storage_.reset();
  { sync::sqlite::Database(file_).exec("PRAGMA user_version = 99"); }
  const std::string before = file_bytes(file_);
  const std::string message = error_of([&] { open(); });
  EXPECT_NE(message.find("was written by a newer kithd (schema 99; this kithd reads up to schema " +
                         std::to_string(SqliteStorage::newest_schema())),
            std::string::npos)
      << message;
  EXPECT_NE(message.find(file_.string()), std::string::npos) << message;
  EXPECT_EQ(file_bytes(file_), before);
}

TEST_F(SqliteStorageTest, RefusesADamagedDatabase) {
  WriteBatch b = sample_batch();
  open().commit({&b, 1});
  storage_.reset();
  { sync::sqlite::Database(file_).exec("DROP INDEX ops_by_section"); }
  std::string message = error_of([&] { open(); });
  EXPECT_NE(message.find("is damaged ('ops_by_section' is missing)"), std::string::npos) << message;

  // A row that does not parse is reported when it is read.
  {
    sync::sqlite::Database raw(file_);
    raw.exec("CREATE INDEX ops_by_section ON ops (plan_id, section, seq)");
    raw.exec("UPDATE ops SET section = 'Not A Section' WHERE seq = 2");
  }
  auto& s = open();
  EXPECT_EQ(s.ops_after(plan_, 0, 1, sections({"profile"}), 10).size(), 1u);
  message = error_of([&] { (void)s.checksums_at(plan_, 6); });
  EXPECT_NE(message.find("is damaged (a stored section name 'Not A Section' is not valid)"),
            std::string::npos)
      << message;
}

TEST_F(SqliteStorageTest, RefusesAFileInAMissingFolder) {
  file_ = dir_ / "no such folder" / "kithd.db";
  const std::string message = error_of([&] { open(); });
  EXPECT_NE(message.find("The server database cannot be opened"), std::string::npos) << message;
}

// Each commit adds one op and one membership entry; a reader that saw half a commit, or two
// queries from different commits, would find the counts out of step.
TEST_F(SqliteStorageTest, ConcurrentReadsDuringCommitsSeeConsistentData) {
  auto& s = open({.synchronous = Options::Sync::kNormal, .read_connections = 2});
  constexpr std::uint64_t kCommits = 150;
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      std::uint64_t last_seen = 0;
      while (!done.load()) {
        auto snapshot = s.load_plan(plan_);
        if (!snapshot) continue;
        const std::uint64_t n = snapshot->last_seq;
        EXPECT_EQ(snapshot->membership.size(), n + 1);
        std::uint64_t counted = 0;
        for (const auto& [section, checksum] : snapshot->sections) counted += checksum.op_count;
        EXPECT_EQ(counted, n);
        EXPECT_GE(n, last_seen);  // never goes back in time
        last_seen = n;
        auto ops = s.ops_after(plan_, 0, n, sections({"notes", "risk"}), 1000);
        EXPECT_EQ(ops.size(), n);
        reads.fetch_add(1);
      }
    });
  }
  commit_genesis(s);
  std::uint64_t per_section[2] = {0, 0};
  for (std::uint64_t seq = 1; seq <= kCommits; ++seq) {
    const int which = static_cast<int>(seq % 2);
    WriteBatch b;
    b.plan = plan_;
    const std::uint64_t count = ++per_section[which];
    b.ops = {op(seq, which ? "notes" : "risk", 1, count, count)};
    b.membership = {{seq, bytes_of("entry " + std::to_string(seq))}};
    s.commit({&b, 1});
    if (seq == kCommits / 2) {
      // On a busy machine the commits can all be done before a reader is scheduled: half way,
      // wait (bounded) until one has read, so that reads and commits do overlap.
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (reads.load() == 0 && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
  }
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(s.load_plan(plan_)->last_seq, kCommits);
}

}  // namespace
}  // namespace kith::server
