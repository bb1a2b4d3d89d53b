// Invite codes, role presets, and a join that the server answers with a log that is not the
// one the code was made for.
#include <gtest/gtest.h>

#include "fixtures.hpp"
#include "kith/sync/engine.hpp"
#include "kith/sync/invite.hpp"
#include "kith/sync/roles.hpp"
#include "local_store_fixtures.hpp"

namespace kith::sync {
namespace {

using Kind = MembershipEntry::Kind;
using store_test::TempDir;
using test::error_of;
using test::Person;

std::string without_dashes(std::string s) {
  s.erase(std::remove(s.begin(), s.end(), '-'), s.end());
  return s;
}

TEST(InviteCode, RoundTripsAndDerivesTheSameKeys) {
  const PlanId plan = PlanId::random();
  InviteCode code = InviteCode::create(plan);
  const std::string text = code.text();
  ASSERT_EQ(text.rfind("KITH-", 0), 0u) << text;
  EXPECT_EQ(without_dashes(text.substr(5)).size(), 58u) << text;

  InviteCode back = InviteCode::parse(text);
  EXPECT_EQ(back.plan(), plan);
  EXPECT_EQ(back.invite_id(), code.invite_id());
  EXPECT_EQ(back.signing_key().public_key(), code.signing_key().public_key());
  EXPECT_EQ(back.box_key().public_key(), code.box_key().public_key());
  // The invite key is the one the membership log derives from the same secret.
  EXPECT_NE(code.invite_id(), InviteCode::create(plan).invite_id());
}

TEST(InviteCode, ReadsAsPeopleTypeIt) {
  InviteCode code = InviteCode::create(PlanId::random());
  std::string text = code.text();
  // Lower case, spaces for dashes, no prefix, O for 0 and l for 1.
  std::string typed;
  for (char c : text.substr(5)) {
    if (c == '-') {
      typed.push_back(' ');
    } else if (c == '0') {
      typed.push_back('O');
    } else if (c == '1') {
      typed.push_back('l');
    } else {
      typed.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
  }
  EXPECT_EQ(InviteCode::parse("  " + typed + "\n").invite_id(), code.invite_id());
  EXPECT_EQ(InviteCode::parse("kith-" + text.substr(5)).invite_id(), code.invite_id());
}

TEST(InviteCode, EveryChangedCharacterIsCaught) {
  InviteCode code = InviteCode::create(PlanId::random());
  const std::string text = code.text();
  for (std::size_t i = 5; i < text.size(); ++i) {
    if (text[i] == '-') continue;
    std::string changed = text;
    changed[i] = text[i] == 'Z' ? 'Y' : 'Z';
    EXPECT_EQ(error_of([&] { InviteCode::parse(changed); }), SyncErrorCode::kInviteCode)
        << "position " << i;
  }
}

TEST(InviteCode, ShortLongAndForeignCodesSayWhatIsWrong) {
  const std::string text = InviteCode::create(PlanId::random()).text();
  for (const std::string& bad : {text.substr(0, text.size() - 3), text + "7", std::string("KITH-"),
                                 std::string("")}) {
    try {
      InviteCode::parse(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const SyncError& e) {
      EXPECT_EQ(e.code(), SyncErrorCode::kInviteCode);
      EXPECT_NE(std::string(e.what()).find("characters"), std::string::npos) << e.what();
    }
  }
  std::string odd = text;
  odd[7] = 'U';  // not in the alphabet
  try {
    InviteCode::parse(odd);
    ADD_FAILURE();
  } catch (const SyncError& e) {
    EXPECT_EQ(e.code(), SyncErrorCode::kInviteCode);
    EXPECT_NE(std::string(e.what()).find("'U'"), std::string::npos) << e.what();
  }
}

TEST(Roles, PresetsAreTheIssuesGrants) {
  auto text = [](Role r) {
    std::string out;
    for (const GrantSpec& g : role_grants(r)) {
      out += g.section.name() + ":" + std::string(permission_name(g.permission)) + " ";
    }
    return out;
  };
  EXPECT_EQ(text(Role::kFamily),
            "activity:read circle:read notes:append outcomes:read profile:read support:read ");
  EXPECT_EQ(text(Role::kNurse),
            "activity:append health:write notes:append profile:read risk:read support:read ");
  EXPECT_EQ(text(Role::kProvider),
            "activity:append outcomes:read profile:read risk:read support:read ");
  EXPECT_EQ(text(Role::kSocialWorker),
            "activity:read assessment:write budget:write circle:manage health:read notes:read "
            "outcomes:write profile:read risk:read support:write ");
  for (Role r : {Role::kFamily, Role::kNurse, Role::kProvider, Role::kSocialWorker}) {
    EXPECT_EQ(parse_role(role_name(r)), r);
    EXPECT_EQ(role_of(role_grants(r, 12345)), r);
  }
  auto custom = role_grants(Role::kFamily);
  custom.pop_back();
  EXPECT_FALSE(role_of(custom).has_value());
  EXPECT_FALSE(parse_role("doctor").has_value());
}

// A joining device and hand-made answers from a "server".
class JoinTest : public ::testing::Test {
 protected:
  JoinTest() {
    engine.on_event([this](const SyncEvent& e) {
      if (e.kind == SyncEvent::Kind::kProblem) problems.push_back(e.code);
    });
  }

  // Plays the server's answer to `request` with `entries` as the plan's log.
  void answer(const kith::v1::ClientMessage& request, const std::vector<MembershipEntry>& entries) {
    const auto& r = request.redeem_invite();
    kith::v1::ServerMessage log;
    log.set_request_id(request.request_id());
    log.mutable_membership_batch()->set_plan_id(r.plan_id());
    for (const auto& e : entries) {
      Bytes b = e.serialize();
      log.mutable_membership_batch()->add_entries(std::string(b.begin(), b.end()));
    }
    replies = engine.handle(log);
    kith::v1::ServerMessage envelopes;
    envelopes.set_request_id(request.request_id());
    envelopes.mutable_envelope_batch()->set_plan_id(r.plan_id());
    engine.handle(envelopes);
    kith::v1::ServerMessage done;
    done.set_request_id(request.request_id());
    done.mutable_invite_redeemed()->set_plan_id(r.plan_id());
    done.mutable_invite_redeemed()->set_invite_id(r.invite_id());
    done.mutable_invite_redeemed()->set_membership_count(entries.size());
    replies = engine.handle(done);
  }

  // A plan `by` created, with an invitation whose public key is `invite_key`.
  std::vector<MembershipEntry> plan_with_invite(const PlanId& plan, const Person& by,
                                                const OpId& invite_id,
                                                const crypto::VerifyKey& invite_key) {
    MembershipLog log(plan);
    auto created = log.next(Kind::kPlanCreated, by.device_id(), 1);
    created.certificate = by.cert;
    created.sign(by.device.signing);
    log.append(created);
    auto inv = log.next(Kind::kInviteCreated, by.device_id(), 2);
    inv.invite_id = invite_id;
    inv.invite_key.assign(invite_key.bytes().begin(), invite_key.bytes().end());
    inv.invite_expires_at_ms = kNow + 1000;
    inv.grants = role_grants(Role::kFamily);
    inv.sign(by.device.signing);
    log.append(inv);
    return {created, inv};
  }

  static constexpr std::uint64_t kNow = 1'800'000'000'000;
  TempDir dir;
  Person me;
  LocalStore store{dir / "store.db", crypto::SectionKey::generate()};
  SyncEngine engine{store,
                    DeviceIdentity::create(crypto::DeviceSecrets{me.identity, me.device}, 1),
                    [] { return kNow; }};
  std::vector<SyncErrorCode> problems;
  std::vector<kith::v1::ClientMessage> replies;
};

TEST_F(JoinTest, TheGenuineInvitationIsJoined) {
  Person owner;
  InviteCode code = InviteCode::create(PlanId::random());
  auto request = engine.redeem(code, "Mary's plan");
  answer(request, plan_with_invite(code.plan(), owner, code.invite_id(),
                                   code.signing_key().public_key()));
  EXPECT_TRUE(problems.empty());
  ASSERT_EQ(engine.plans().size(), 1u);
  EXPECT_EQ(engine.membership(code.plan()).size(), 3u);  // with the join entry
  EXPECT_EQ(engine.membership(code.plan()).permission(me.account(), Section::parse("notes")),
            Permission::kAppend);
  // The join entry goes up first, then the Subscribe.
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_TRUE(replies[0].has_push_membership());
  EXPECT_TRUE(replies[1].has_subscribe());
}

TEST_F(JoinTest, AServerThatSwapsTheInviteKeyIsCaught) {
  // The server shows a log whose invitation (same id) carries a key of its own choosing.
  Person owner;
  InviteCode code = InviteCode::create(PlanId::random());
  auto request = engine.redeem(code, "plan");
  auto server_key = crypto::SigningKey::generate();
  answer(request, plan_with_invite(code.plan(), owner, code.invite_id(), server_key.public_key()));
  EXPECT_EQ(problems, (std::vector<SyncErrorCode>{SyncErrorCode::kInviteMismatch}));
  EXPECT_TRUE(engine.plans().empty());
  EXPECT_TRUE(replies.empty());
  EXPECT_TRUE(store.plans().empty());
}

TEST_F(JoinTest, ALogThatDoesNotVerifyIsNotJoined) {
  Person owner;
  InviteCode code = InviteCode::create(PlanId::random());
  auto request = engine.redeem(code, "plan");
  auto entries =
      plan_with_invite(code.plan(), owner, code.invite_id(), code.signing_key().public_key());
  entries[1].grants = role_grants(Role::kSocialWorker);  // altered after it was signed
  answer(request, entries);
  EXPECT_EQ(problems, (std::vector<SyncErrorCode>{SyncErrorCode::kMembershipInvalid}));
  EXPECT_TRUE(engine.plans().empty());
  EXPECT_TRUE(store.plans().empty());
}

TEST_F(JoinTest, AnExpiredInvitationIsNotJoined) {
  Person owner;
  InviteCode code = InviteCode::create(PlanId::random());
  auto request = engine.redeem(code, "plan");
  auto entries =
      plan_with_invite(code.plan(), owner, code.invite_id(), code.signing_key().public_key());
  MembershipLog log(code.plan());
  log.append(entries[0]);
  entries[1].invite_expires_at_ms = kNow;  // the moment it is redeemed
  entries[1].sign(owner.device.signing);
  answer(request, entries);
  EXPECT_EQ(problems, (std::vector<SyncErrorCode>{SyncErrorCode::kInviteExpired}));
  EXPECT_TRUE(engine.plans().empty());
}

}  // namespace
}  // namespace kith::sync
