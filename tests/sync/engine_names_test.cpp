// The names members share with their circle: the `names` section, its `member` records, and the
// `names: append` every invitation carries (engine_names.cpp, shared_names in plan_state.hpp).
#include <gtest/gtest.h>

#include "engine_fixture.hpp"
#include "kith/sync/record_types.hpp"
#include "kith/sync/roles.hpp"

namespace kith::sync::engine_test {
namespace {

const Section kNames = Section::parse(kNamesSection);

std::size_t member_records(Device& d, const PlanId& plan) {
  return d.engine->state(plan).records(kNames).size();
}

TEST_F(Engine, TheOwnerSharesTheirNameInAPlanTheyCreateAndAnotherDeviceDoesNotAddASecond) {
  a->engine->share_name_as("Ada");
  b->engine->share_name_as("Ada");
  const PlanId plan = shared_plan();
  const AccountId me = a->engine->identity().account();
  EXPECT_EQ(a->engine->shared_names(plan), (std::map<AccountId, std::string>{{me, "Ada"}}));
  // Device b caught up with a's record before it could add one of its own.
  EXPECT_EQ(b->engine->shared_names(plan), (std::map<AccountId, std::string>{{me, "Ada"}}));
  EXPECT_EQ(member_records(*b, plan), 1u);
  b->sync(server, plan);
  a->sync(server, plan);
  EXPECT_EQ(member_records(*a, plan), 1u);
  a->expect_no_problems();
  b->expect_no_problems();
}

TEST_F(Engine, ANameIsSharedAtTheEndOfACatchUpWhenThereWasNoneAndChangedOnlyOnRequest) {
  const PlanId plan = a->engine->create_plan("Nia's plan");  // no name to share yet
  EXPECT_TRUE(a->engine->shared_names(plan).empty());
  a->engine->share_name_as("Nia");
  a->sync(server, plan);
  const AccountId me = a->engine->identity().account();
  EXPECT_EQ(a->engine->shared_names(plan).at(me), "Nia");
  // A different name on a device is not pushed over the one already shared...
  a->engine->share_name_as("Nia B");
  a->sync(server, plan);
  EXPECT_EQ(a->engine->shared_names(plan).at(me), "Nia");
  // ...unless the person asks.
  a->engine->share_name(plan, "Nia Brown");
  EXPECT_EQ(a->engine->shared_names(plan).at(me), "Nia Brown");
  EXPECT_EQ(member_records(*a, plan), 1u);
  a->expect_no_problems();
}

TEST_F(Engine, EveryInvitationLetsTheInviteeShareANameForAsLongAsTheirLongestGrant) {
  const PlanId plan = a->engine->create_plan("Nia's plan");
  const std::uint64_t soon = clock + 86'400'000, later = clock + 7 * 86'400'000;
  auto grants_of = [&](const std::vector<GrantSpec>& asked) {
    const InviteCode code = a->engine->invite(plan, asked, clock + 3'600'000);
    return a->engine->membership(plan).invite(code.invite_id())->grants;
  };
  auto names_grant = [&](const std::vector<GrantSpec>& grants) -> std::optional<GrantSpec> {
    for (const GrantSpec& g : grants) {
      if (g.section == kNames) return g;
    }
    return std::nullopt;
  };

  const auto family = grants_of(role_grants(Role::kFamily));
  ASSERT_TRUE(names_grant(family));
  EXPECT_EQ(names_grant(family)->permission, Permission::kAppend);
  EXPECT_EQ(names_grant(family)->expires_at_ms, 0u);
  EXPECT_EQ(role_of(family), Role::kFamily);  // the names grant does not hide the preset
  EXPECT_TRUE(std::is_sorted(family.begin(), family.end(), [](const auto& x, const auto& y) {
    return x.section < y.section;
  }));

  const auto timed = grants_of({{Section::parse("profile"), Permission::kRead, soon},
                                {Section::parse("notes"), Permission::kAppend, later}});
  ASSERT_TRUE(names_grant(timed));
  EXPECT_EQ(names_grant(timed)->expires_at_ms, later);

  // A social worker reads every section, names included; invited, they may also add theirs.
  const auto social = grants_of(role_grants(Role::kSocialWorker, soon));
  ASSERT_TRUE(names_grant(social));
  EXPECT_EQ(names_grant(social)->permission, Permission::kAppend);
  EXPECT_EQ(names_grant(social)->expires_at_ms, soon);
  EXPECT_EQ(role_of(social), Role::kSocialWorker);
}

TEST_F(Engine, ANameThatWouldNotPrintSafelyIsRefusedWhenShared) {
  const PlanId plan = a->engine->create_plan("Nia's plan");
  for (const std::string& bad : {std::string(""), std::string("Nia\x1b[2J"), std::string(65, 'n'),
                                std::string("Nia\xe2\x80\xae" "evil"), std::string("\xc3\x28"),
                                std::string("Nia\xc2\x9b" "1m")}) {
    EXPECT_THROW(a->engine->share_name(plan, bad), SyncError) << bad;
    EXPECT_THROW(a->engine->add_record(plan, kMemberNameType, {{"name", bad.empty() ? "\x07" : bad}}),
                 SyncError)
        << bad;
  }
  EXPECT_THROW(a->engine->share_name_as("\x1b]0;owned\x07"), SyncError);
  EXPECT_TRUE(a->engine->shared_names(plan).empty());
  EXPECT_EQ(member_records(*a, plan), 0u);
  // Names may be in any script, and may look like hex.
  EXPECT_FALSE(check_member_name("Zoë Ó Briain"));
  EXPECT_FALSE(check_member_name("Ed"));
  EXPECT_FALSE(check_member_name("李明"));
}

TEST(Printable, ControlAndDirectionCharactersAndBrokenUtf8BecomeReplacementCharacters) {
  const std::string r = "\xef\xbf\xbd";
  EXPECT_EQ(printable("Zoë 李明 ok"), "Zoë 李明 ok");
  EXPECT_EQ(printable("a\x1b[2Jb"), "a" + r + "[2Jb");
  EXPECT_EQ(printable("a\xc2\x9b" "1mb"), "a" + r + "1mb");           // C1 CSI
  EXPECT_EQ(printable("a\xe2\x80\xae" "cba"), "a" + r + "cba");       // right-to-left override
  EXPECT_EQ(printable("a\xff\xc3"), "a" + r + r);                     // not UTF-8
  EXPECT_EQ(printable("a\xed\xa0\x80"), "a" + r + r + r);             // a surrogate
  EXPECT_EQ(printable("one\ntwo\tthree\x7f"), "one" + r + "two" + r + "three" + r);
  EXPECT_EQ(printable("one\ntwo\tthree\x7f", true), "one\ntwo\tthree" + r);
}

// shared_names over a plan state built by hand, as other members' ops would make it.
struct Op {
  OpHeader header;
  OpBody body;
};

Op name_op(const RecordId& record, std::uint64_t clock, const std::string& name,
           bool create = true) {
  Op op;
  op.header.op_id = OpId::random();
  op.header.section = Section::parse(kNamesSection);
  op.header.author = DeviceId::random();
  op.header.author_seq = 1;
  op.header.clock = {clock, 0};
  if (create) {
    op.body.mutations.push_back(
        {Mutation::Kind::kCreate, record, std::string(kMemberNameType), "", "", {}});
  }
  op.body.mutations.push_back({Mutation::Kind::kSet, record, "", "name", name, {}});
  return op;
}

TEST(SharedNames, TheLatestSafeNameEachAccountCreatedCountsAndNoOneNamesAnother) {
  PlanState state;
  const AccountId ada = AccountId::random(), mal = AccountId::random(), sam = AccountId::random();
  auto apply = [&](const AccountId& who, bool may_edit_any, const Op& op) {
    state.apply(op.header, op.body, AuthorRights{who, may_edit_any});
  };
  const RecordId ada_first = RecordId::random(), ada_later = RecordId::random();
  apply(ada, true, name_op(ada_first, 1000, "Ada"));
  apply(ada, true, name_op(ada_later, 2000, "Ada Lovelace"));
  // Mal tries to rename Ada's record (append: own records only) and to pass for Sam with a
  // record of their own; and shares a name that would rewrite the terminal.
  apply(mal, false, name_op(ada_later, 3000, "Mal was here", /*create=*/false));
  apply(mal, false, name_op(RecordId::random(), 3001, "Sam\x1b[1A"));
  apply(sam, false, name_op(RecordId::random(), 1500, "Sam"));

  const auto names = shared_names(state);
  EXPECT_EQ(names.at(ada), "Ada Lovelace");
  EXPECT_EQ(names.at(sam), "Sam");
  EXPECT_EQ(names.count(mal), 0u);  // its only name is unsafe to print
  // A record of another type, or in another section, is no name.
  Op contact = name_op(RecordId::random(), 4000, "Mal");
  contact.header.section = Section::parse("circle");
  contact.body.mutations.front().type = "contact";
  apply(mal, false, contact);
  EXPECT_EQ(shared_names(state).count(mal), 0u);
}

}  // namespace
}  // namespace kith::sync::engine_test
