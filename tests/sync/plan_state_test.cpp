#include "kith/sync/plan_state.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "kith/sync/error.hpp"
#include "kith/sync/record_types.hpp"

namespace kith::sync {
namespace {

// Builds ops by hand (no crypto): the merge sees headers and decrypted bodies.
struct Author {
  AccountId account = AccountId::random();
  DeviceId device = DeviceId::random();
  bool may_edit_any = true;
  std::uint64_t clock = 1000;

  AuthorRights rights() const { return {account, may_edit_any}; }
  OpHeader header(const char* section) {
    OpHeader h;
    h.op_id = OpId::random();
    h.section = Section::parse(section);
    h.author = device;
    h.author_seq = 1;
    h.clock = {++clock, 0};
    return h;
  }
};

struct Applied {
  OpHeader header;
  OpBody body;
  AuthorRights rights;
};

class Merge : public ::testing::Test {
 protected:
  PlanState state;
  std::vector<Applied> log;
  Author owner, nurse, family;

  void SetUp() override { family.may_edit_any = false; }

  void apply(Author& a, const char* section, std::vector<Mutation> muts) {
    Applied x{a.header(section), OpBody{std::move(muts)}, a.rights()};
    state.apply(x.header, x.body, x.rights);
    log.push_back(std::move(x));
  }
  RecordId create(Author& a, const char* type, const char* section, const char* text) {
    RecordId id = RecordId::random();
    apply(a, section,
          {{Mutation::Kind::kCreate, id, type, "", "", {}},
           {Mutation::Kind::kSet, id, "", "text", text, {}}});
    return id;
  }
  Mutation set(const RecordId& id, const char* field, const char* value,
               std::vector<VersionId> seen) {
    return {Mutation::Kind::kSet, id, "", field, value, std::move(seen)};
  }
  std::string text(const RecordId& id, const char* field = "text") {
    auto r = state.record(id);
    if (!r || !r->fields.count(field)) return "<none>";
    return r->fields.at(field).value;
  }
};

TEST_F(Merge, LaterEditSupersedesWhatItSaw) {
  RecordId id = create(owner, "health", "health", "5 mg");
  apply(nurse, "health", {set(id, "text", "10 mg", state.current_versions(id, "text"))});
  EXPECT_EQ(text(id), "10 mg");
  EXPECT_TRUE(state.conflicts().empty());
}

TEST_F(Merge, ConcurrentEditsAreBothKeptAndFlagged) {
  RecordId id = create(owner, "health", "health", "5 mg");
  auto seen = state.current_versions(id, "text");
  nurse.clock = 5000;  // the nurse's edit has the later clock: the default shown
  apply(owner, "health", {set(id, "text", "7 mg", seen)});
  apply(nurse, "health", {set(id, "text", "10 mg", seen)});
  auto conflicts = state.conflicts();
  ASSERT_EQ(conflicts.size(), 1u);
  EXPECT_EQ(conflicts[0].field, "text");
  ASSERT_EQ(conflicts[0].candidates.size(), 2u);
  EXPECT_EQ(conflicts[0].candidates[0].value, "10 mg");
  EXPECT_EQ(conflicts[0].candidates[1].value, "7 mg");
  EXPECT_EQ(text(id), "10 mg");
  EXPECT_TRUE(state.record(id)->fields.at("text").conflict());

  // A person resolves it: the update names both versions.
  apply(owner, "health", {set(id, "text", "7 mg", state.current_versions(id, "text"))});
  EXPECT_TRUE(state.conflicts().empty());
  EXPECT_EQ(text(id), "7 mg");
}

TEST_F(Merge, AppendOnlyRecordsNeverConflictAndCannotBeEdited) {
  RecordId visit = create(nurse, "activity", "activity", "Visit done, medication prompted");
  apply(owner, "activity", {set(visit, "text", "changed", state.current_versions(visit, "text"))});
  apply(nurse, "activity", {set(visit, "text", "changed too", {})});
  EXPECT_EQ(text(visit), "Visit done, medication prompted");
  EXPECT_TRUE(state.conflicts().empty());
}

TEST_F(Merge, AppendMemberEditsOnlyTheirOwnRecords) {
  RecordId theirs = create(family, "outcome", "outcomes", "Walk to the shop");
  RecordId owners = create(owner, "outcome", "outcomes", "Go swimming");
  apply(family, "outcomes", {set(theirs, "status", "achieved", {})});
  apply(family, "outcomes", {set(owners, "status", "abandoned", {})});
  EXPECT_EQ(text(theirs, "status"), "achieved");
  EXPECT_EQ(text(owners, "status"), "<none>");
}

TEST_F(Merge, EditsFromAnotherSectionAreIgnored) {
  RecordId id = create(owner, "health", "health", "5 mg");
  apply(nurse, "notes", {set(id, "text", "smuggled", state.current_versions(id, "text"))});
  EXPECT_EQ(text(id), "5 mg");
}

TEST_F(Merge, DeleteIsATombstone) {
  RecordId id = create(owner, "support", "support", "Shopping on Tuesdays");
  apply(owner, "support", {set(id, "_deleted", "1", {})});
  EXPECT_TRUE(state.records().empty());
  auto all = state.records(std::nullopt, /*include_deleted=*/true);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_TRUE(all[0].deleted);
  EXPECT_EQ(all[0].fields.at("text").value, "Shopping on Tuesdays");
}

TEST_F(Merge, RejectsImpossibleOpsWithoutChangingAnything) {
  Bytes before = state.canonical();
  RecordId id = RecordId::random();
  auto bad_type = [&] {
    apply(owner, "notes", {{Mutation::Kind::kCreate, id, "health", "", "", {}}});
  };
  EXPECT_THROW(bad_type(), SyncError);
  EXPECT_THROW(apply(owner, "health", {set(id, "Bad Name", "x", {})}), SyncError);
  EXPECT_EQ(state.canonical(), before);
}

TEST_F(Merge, SameOpsInAnyOrderWithDuplicatesGiveIdenticalBytes) {
  RecordId a = create(owner, "health", "health", "5 mg");
  RecordId b = create(family, "note", "notes", "Mum seemed brighter");
  auto seen = state.current_versions(a, "text");
  apply(owner, "health", {set(a, "text", "7 mg", seen)});
  apply(nurse, "health", {set(a, "text", "10 mg", seen)});
  apply(nurse, "health", {set(a, "time", "08:00", {})});
  apply(owner, "notes", {set(b, "_deleted", "1", {})});

  std::mt19937 rng(7);
  for (int round = 0; round < 20; ++round) {
    std::vector<Applied> shuffled = log;
    for (int d = 0; d < 3; ++d) shuffled.push_back(log[rng() % log.size()]);
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    PlanState other;
    for (const auto& x : shuffled) other.apply(x.header, x.body, x.rights);
    EXPECT_EQ(other.canonical(), state.canonical()) << "round " << round;
    EXPECT_EQ(other.conflicts().size(), state.conflicts().size());
  }
}

TEST_F(Merge, CanonicalBytesParseBack) {
  RecordId a = create(owner, "health", "health", "5 mg");
  apply(nurse, "health", {set(a, "text", "10 mg", state.current_versions(a, "text"))});
  PlanState back = PlanState::parse(state.canonical());
  EXPECT_EQ(back.canonical(), state.canonical());
  EXPECT_EQ(back.record(a)->fields.at("text").value, "10 mg");
  Bytes bytes = state.canonical();
  EXPECT_THROW(PlanState::parse(ByteView(bytes).first(bytes.size() - 1)), SyncError);
}

}  // namespace
}  // namespace kith::sync
