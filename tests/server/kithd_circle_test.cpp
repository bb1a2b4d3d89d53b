// The circle of support through a real kithd over TLS: invitations with role presets, joining
// while the owner is offline, revocation with key rotation, expiry, and refused codes. Each
// person is a TestDevice: a real LocalStore and SyncEngine on a real connection.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "kith/crypto/envelope.hpp"
#include "kith/sync/invite.hpp"
#include "kith/sync/key_ring.hpp"
#include "kith/sync/roles.hpp"
#include "kithd_circle_fixture.hpp"

namespace kith::test {
namespace {

TEST_F(KithdCircleTest, FourPeopleEachSeeExactlyTheirSections) {
  owner_with_full_plan();
  auto family = invite_and_join("family", Role::kFamily);
  auto nurse = invite_and_join("nurse", Role::kNurse);
  auto provider = invite_and_join("provider", Role::kProvider);

  EXPECT_EQ(sections_seen(*family, plan),
            (std::set<std::string>{"profile", "outcomes", "support", "activity", "notes",
                                   "circle"}));
  EXPECT_EQ(sections_seen(*nurse, plan),
            (std::set<std::string>{"profile", "risk", "support", "health", "activity", "notes"}));
  EXPECT_EQ(sections_seen(*provider, plan),
            (std::set<std::string>{"profile", "support", "risk", "outcomes", "activity"}));

  // The provider's visit record reaches the family.
  provider->engine->add_record(plan, "activity", {{"text", "Visit by Ana: helped with lunch"}});
  ASSERT_TRUE(provider->sync(plan).empty());
  ASSERT_TRUE(family->sync(plan).empty());
  EXPECT_EQ(texts(*family, plan, "activity"),
            (std::vector<std::string>{"Visit by Ana: helped with lunch", "Visit by owner"}));

  // The nurse changes health; the owner sees it, the family holds nothing of it.
  auto meds = nurse->engine->state(plan).records(Section::parse("health"));
  ASSERT_EQ(meds.size(), 1u);
  nurse->engine->set_fields(plan, meds[0].id, {{"text", "Metformin 1 g"}});
  ASSERT_TRUE(nurse->sync(plan).empty());
  ASSERT_TRUE(owner->sync(plan).empty());
  ASSERT_TRUE(family->sync(plan).empty());
  EXPECT_EQ(texts(*owner, plan, "health"), (std::vector<std::string>{"Metformin 1 g"}));
  EXPECT_TRUE(texts(*family, plan, "health").empty());
  // The provider may only append activity: editing the plan's support is refused at once.
  auto support = provider->engine->state(plan).records(Section::parse("support"));
  ASSERT_EQ(support.size(), 1u);
  EXPECT_THROW(provider->engine->set_fields(plan, support[0].id, {{"text", "no visits"}}),
               sync::SyncError);
  EXPECT_TRUE(problem_codes(*owner).empty());
  EXPECT_TRUE(problem_codes(*family).empty());
}

TEST_F(KithdCircleTest, InviteIsAcceptedWhileTheOwnerIsOffline) {
  owner_with_full_plan();
  InviteCode code = owner->engine->invite(plan, sync::role_grants(Role::kNurse), wall_ms() + kWeek);
  ASSERT_TRUE(owner->sync(plan).empty());
  // The owner's app stops: no connection and no engine.
  owner.reset();

  TestDevice nurse(dir.path(), "nurse");
  nurse.connect(*server);
  ASSERT_TRUE(nurse.join(code, "Mary's plan").empty());
  EXPECT_TRUE(problem_codes(nurse).empty());
  EXPECT_EQ(texts(nurse, plan, "health"), (std::vector<std::string>{"Metformin 500 mg"}));
  EXPECT_EQ(nurse.engine->membership(plan).permission(nurse.account(), Section::parse("health")),
            Permission::kWrite);
  // And the nurse can write straight away.
  nurse.engine->add_record(plan, "note", {{"text", "Visited, all well"}});
  ASSERT_TRUE(nurse.sync(plan).empty());
  EXPECT_EQ(nurse.engine->outbox_size(plan), 0u);
}

TEST_F(KithdCircleTest, ACodeIsSingleUse) {
  owner_with_full_plan();
  InviteCode code = owner->engine->invite(plan, sync::role_grants(Role::kFamily), wall_ms() + kWeek);
  ASSERT_TRUE(owner->sync(plan).empty());
  TestDevice first(dir.path(), "first");
  first.connect(*server);
  ASSERT_TRUE(first.join(code).empty());
  const auto before = stored_ops();

  TestDevice second(dir.path(), "second");
  second.connect(*server);
  auto errors = second.join(code);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].code(), kith::v1::INVITE_USED);
  EXPECT_EQ(problem_codes(second), (std::vector<SyncErrorCode>{SyncErrorCode::kInviteUsed}));
  EXPECT_TRUE(second.engine->plans().empty());
  EXPECT_EQ(stored_ops(), before);
  // The first joiner is unaffected.
  EXPECT_EQ(first.engine->membership(plan).permission(first.account(), Section::parse("notes")),
            Permission::kAppend);
}

TEST_F(KithdCircleTest, AnExpiredCodeIsRefused) {
  owner_with_full_plan();
  InviteCode code =
      owner->engine->invite(plan, sync::role_grants(Role::kFamily), wall_ms() + 1500);
  ASSERT_TRUE(owner->sync(plan).empty());
  std::this_thread::sleep_for(std::chrono::milliseconds(1700));
  TestDevice late(dir.path(), "late");
  late.connect(*server);
  auto errors = late.join(code);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].code(), kith::v1::INVITE_EXPIRED);
  EXPECT_EQ(problem_codes(late), (std::vector<SyncErrorCode>{SyncErrorCode::kInviteExpired}));
  EXPECT_TRUE(late.engine->plans().empty());
}

TEST_F(KithdCircleTest, AnUnknownCodeIsRefused) {
  owner_with_full_plan();
  // Well formed, for this plan, but no invitation was ever made with it.
  InviteCode code = InviteCode::create(plan);
  TestDevice stranger(dir.path(), "stranger");
  stranger.connect(*server);
  auto errors = stranger.join(code);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].code(), kith::v1::INVITE_UNKNOWN);
  EXPECT_EQ(problem_codes(stranger), (std::vector<SyncErrorCode>{SyncErrorCode::kInviteUnknown}));
  EXPECT_TRUE(stranger.engine->plans().empty());
}

TEST_F(KithdCircleTest, AProofForAnotherDeviceIsRefused) {
  owner_with_full_plan();
  InviteCode code = owner->engine->invite(plan, sync::role_grants(Role::kFamily), wall_ms() + kWeek);
  ASSERT_TRUE(owner->sync(plan).empty());
  // Someone who watched another device's RedeemInvite replays it as their own.
  TestDevice other(dir.path(), "other");
  auto lifted = other.engine->redeem(code, "plan");
  TestDevice thief(dir.path(), "thief");
  thief.connect(*server);
  auto reply = thief.request(lifted);
  ASSERT_TRUE(reply.has_error()) << reply.DebugString();
  EXPECT_EQ(reply.error().code(), kith::v1::BAD_SIGNATURE);
}

TEST_F(KithdCircleTest, RevokedNurseGetsNothingNewAndHoldsNoKeyForIt) {
  owner_with_full_plan();
  auto nurse = invite_and_join("nurse", Role::kNurse);
  ASSERT_EQ(texts(*nurse, plan, "health"), (std::vector<std::string>{"Metformin 500 mg"}));
  ASSERT_TRUE(owner->sync(plan).empty());  // the owner learns of the join

  auto rotated = owner->engine->revoke(plan, nurse->account(), std::nullopt);
  EXPECT_EQ(rotated.size(), 7u);  // every section the nurse could read, and names
  ASSERT_TRUE(owner->sync(plan).empty());
  owner->engine->add_record(plan, "health", {{"text", "Insulin started"}});
  ASSERT_TRUE(owner->sync(plan).empty());

  // The nurse keeps what it had, and receives nothing new.
  nurse->sync(plan);
  EXPECT_EQ(texts(*nurse, plan, "health"), (std::vector<std::string>{"Metformin 500 mg"}));
  const std::uint64_t new_epoch = owner->engine->membership(plan).epoch(Section::parse("health"));
  EXPECT_EQ(new_epoch, 2u);

  // Even given every op the server holds, none of the nurse's keys opens the new one.
  auto everything = raw_catch_up(*owner, plan, 0);
  ASSERT_TRUE(everything.complete.has_value());
  std::size_t new_health = 0;
  for (const auto& d : everything.ops) {
    sync::Op op{str_bytes(d.op().header()), str_bytes(d.op().body())};
    auto h = sync::OpHeader::parse(op.header);
    if (h.section.name() != "health" || h.epoch != new_epoch) continue;
    ++new_health;
    for (std::uint64_t epoch = 1; epoch <= new_epoch; ++epoch) {
      auto key = nurse->store->section_key(plan, "health", epoch);
      if (epoch == new_epoch) {
        EXPECT_FALSE(key.has_value());
      }
      if (key) {
        EXPECT_FALSE(sync::open_op(op, *key).has_value());
      }
    }
  }
  EXPECT_EQ(new_health, 1u);
  // Nor can it write any more: its device has not heard of the revocation (it is sent nothing
  // new, entries included), but the server refuses the write and stores nothing of it.
  const auto before = stored_ops();
  nurse->engine->add_record(plan, "note", {{"text", "still here"}});
  auto errors = nurse->sync(plan);
  ASSERT_FALSE(errors.empty());
  EXPECT_TRUE(errors[0].code() == kith::v1::NOT_MEMBER || errors[0].code() == kith::v1::FORBIDDEN)
      << errors[0].DebugString();
  EXPECT_EQ(stored_ops(), before);
}

TEST_F(KithdCircleTest, AnExpiredGrantEndsAccessAndAManagerRotatesTheKey) {
  owner_with_full_plan();
  const std::uint64_t until = wall_ms() + 2500;
  InviteCode code = owner->engine->invite(
      plan, {GrantSpec{Section::parse("health"), Permission::kWrite, until}}, wall_ms() + kWeek);
  ASSERT_TRUE(owner->sync(plan).empty());
  TestDevice nurse(dir.path(), "nurse");
  nurse.connect(*server);
  ASSERT_TRUE(nurse.join(code).empty());
  ASSERT_EQ(texts(nurse, plan, "health"), (std::vector<std::string>{"Metformin 500 mg"}));
  ASSERT_TRUE(owner->sync(plan).empty());  // the owner learns of the join
  EXPECT_TRUE(owner->engine->pending_rotations(plan).empty());

  // Signed: on a slow machine the expiry may already be past.
  std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<std::int64_t>(until) -
                                                        static_cast<std::int64_t>(wall_ms()) + 200));
  // The owner's device carries out the rotation the expiry calls for.
  // The names grant of the invitation ended with the nurse's only other grant.
  const std::vector<Section> due = {Section::parse("health"), Section::parse("names")};
  EXPECT_EQ(owner->engine->pending_rotations(plan), due);
  EXPECT_EQ(owner->engine->rotate_expired(plan), due);
  EXPECT_TRUE(owner->engine->pending_rotations(plan).empty());
  owner->engine->add_record(plan, "health", {{"text", "Insulin started"}});
  ASSERT_TRUE(owner->sync(plan).empty());

  // Like a revocation: nothing new, and no key for the new epoch.
  auto errors = nurse.sync(plan);
  EXPECT_EQ(texts(nurse, plan, "health"), (std::vector<std::string>{"Metformin 500 mg"}));
  EXPECT_FALSE(nurse.store->section_key(plan, "health", 2).has_value());
}

TEST_F(KithdCircleTest, TheOwnersAccessLogSaysWhoReadAndChangedWhat) {
  owner_with_full_plan();
  auto provider = invite_and_join("provider", Role::kProvider);
  provider->engine->add_record(plan, "activity", {{"text", "Visit by Ana"}});
  ASSERT_TRUE(provider->sync(plan).empty());
  ASSERT_TRUE(owner->sync(plan).empty());

  ASSERT_TRUE(owner->converse({owner->engine->fetch_access_log(plan)}).empty());
  auto log = owner->engine->access_log(plan);
  ASSERT_FALSE(log.empty());
  EXPECT_TRUE(std::is_sorted(log.begin(), log.end(), [](const auto& a, const auto& b) {
    return a.at_ms < b.at_ms;
  }));
  auto has = [&](sync::AccessEvent::Kind kind, const sync::AccountId& who, std::string_view section,
                 std::string_view words) {
    return std::any_of(log.begin(), log.end(), [&](const sync::AccessEvent& e) {
      return e.kind == kind && e.account == who && e.section == section &&
             e.text.find(words) != std::string::npos;
    });
  };
  using K = sync::AccessEvent::Kind;
  // The provider read what its grants cover, and nothing else.
  EXPECT_TRUE(has(K::kRead, provider->account(), "profile", "received profile"));
  EXPECT_TRUE(has(K::kRead, provider->account(), "activity", "received activity"));
  EXPECT_FALSE(has(K::kRead, provider->account(), "health", ""));
  // It joined, then added a visit record.
  EXPECT_TRUE(has(K::kMembership, provider->account(), "", "joined with an invitation"));
  EXPECT_TRUE(has(K::kChange, provider->account(), "activity", "added 1 record"));
  EXPECT_TRUE(has(K::kMembership, owner->account(), "", "invited someone"));

  // Only the owner may read it.
  auto refused = provider->converse({provider->engine->fetch_access_log(plan)});
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].code(), kith::v1::FORBIDDEN);
  auto theirs = provider->engine->access_log(plan);
  EXPECT_TRUE(std::none_of(theirs.begin(), theirs.end(),
                           [](const auto& e) { return e.kind == K::kRead; }));
}

TEST_F(KithdCircleTest, PlanTextNeverReachesTheServersFilesOrLog) {
  owner_with_full_plan();
  const std::string canary = "CANARY-7f3a9c-Mary-takes-warfarin";
  owner->engine->add_record(plan, "health", {{"text", canary}});
  ASSERT_TRUE(owner->sync(plan).empty());
  auto nurse = invite_and_join("nurse", Role::kNurse);
  ASSERT_EQ(texts(*nurse, plan, "health").size(), 2u);
  server->stop();
  std::size_t scanned = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(server->data_dir())) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    scanned += bytes.size();
    EXPECT_EQ(bytes.find(canary), std::string::npos) << entry.path();
    EXPECT_EQ(bytes.find("Metformin"), std::string::npos) << entry.path();
  }
  EXPECT_GT(scanned, 10000u);
  EXPECT_EQ(server->log_text().find(canary), std::string::npos);
}

TEST_F(KithdCircleTest, InvitationEnvelopesAreRefusedUnlessTheInviterSendsGrantedKeys) {
  owner_with_full_plan();
  auto family = invite_and_join("family", Role::kFamily);
  InviteCode code = owner->engine->invite(
      plan, {GrantSpec{Section::parse("notes"), Permission::kRead, 0}}, wall_ms() + kWeek);
  ASSERT_TRUE(owner->sync(plan).empty());
  const auto box = code.box_key().public_key();
  auto envelope = [&](TestDevice& from, std::string_view section) {
    return crypto::Envelope::create(crypto::SectionKey::generate(),
                                    sync::section_key_context(plan, Section::parse(section), 1),
                                    box, from.secrets().device.signing)
        .serialize();
  };
  auto push = [&](TestDevice& from, const sync::OpId& invite, const crypto::Bytes& env) {
    return from.request(message_with(0, [&](kith::v1::ClientMessage& m) {
      m.mutable_push_envelopes()->set_plan_id(str(plan.bytes()));
      m.mutable_push_envelopes()->set_invite_id(str(invite.bytes()));
      m.mutable_push_envelopes()->add_envelopes(str(env));
    }));
  };
  // Only the device that wrote the invitation may hand out its keys.
  EXPECT_EQ(code_of(push(*family, code.invite_id(), envelope(*family, "notes"))),
            kith::v1::FORBIDDEN);
  // Only keys of the sections it grants.
  EXPECT_EQ(code_of(push(*owner, code.invite_id(), envelope(*owner, "health"))),
            kith::v1::FORBIDDEN);
  // Only for an invitation that exists.
  EXPECT_EQ(code_of(push(*owner, sync::OpId::random(), envelope(*owner, "notes"))),
            kith::v1::INVITE_UNKNOWN);
  // A redeemer gets the invitation's own keys, and none of the refused ones.
  TestDevice nurse(dir.path(), "nurse");
  nurse.connect(*server);
  ASSERT_TRUE(nurse.join(code).empty());
  EXPECT_TRUE(problem_codes(nurse).empty());
  EXPECT_TRUE(nurse.store->section_key(plan, "notes", 1).has_value());
  EXPECT_FALSE(nurse.store->section_key(plan, "health", 1).has_value());
  EXPECT_EQ(texts(nurse, plan, "notes"), (std::vector<std::string>{"Prefers tea to coffee"}));
}

TEST_F(KithdCircleTest, AJoinStampedBeforeTheExpiryIsRefusedAfterItByTheServersClock) {
  owner_with_full_plan();
  // The invitee's device believes it is still in time (its clock is behind); the server's is not.
  auto log = owner->engine->membership(plan);
  crypto::Bytes secret(16, 9);
  auto key = sync::invite_key_from_secret(secret);
  auto inv = log.next(sync::MembershipEntry::Kind::kInviteCreated, owner->device(), wall_ms());
  inv.invite_id = sync::OpId::random();
  inv.invite_key.assign(key.public_key().bytes().begin(), key.public_key().bytes().end());
  inv.invite_expires_at_ms = wall_ms() + 800;
  inv.grants = sync::role_grants(Role::kFamily);
  inv.sign(owner->secrets().device.signing);
  log.append(inv);
  auto reply = owner->request(message_with(0, [&](kith::v1::ClientMessage& m) {
    m.mutable_push_membership()->set_plan_id(str(plan.bytes()));
    m.mutable_push_membership()->add_entries(str(inv.serialize()));
  }));
  ASSERT_TRUE(reply.has_push_ack()) << reply.DebugString();
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));

  TestDevice late(dir.path(), "late");
  late.connect(*server);
  auto join = log.next(sync::MembershipEntry::Kind::kInviteAccepted, late.device(),
                       inv.invite_expires_at_ms - 100);
  join.invite_id = inv.invite_id;
  join.certificate = late.engine->identity().certificate;
  join.invite_signature = key.sign(crypto::labels::kInviteJoin, join.invite_join_message());
  join.sign(late.secrets().device.signing);
  reply = late.request(message_with(0, [&](kith::v1::ClientMessage& m) {
    m.mutable_push_membership()->set_plan_id(str(plan.bytes()));
    m.mutable_push_membership()->add_entries(str(join.serialize()));
  }));
  EXPECT_EQ(code_of(reply), kith::v1::INVITE_EXPIRED);
  EXPECT_EQ(raw_catch_up(*owner, plan, 0).entries.size(), log.size());  // nothing stored
}

TEST_F(KithdCircleTest, AManagerRotatesAfterAnExpiryWhileTheOwnerIsOffline) {
  owner_with_full_plan();
  auto social_worker = invite_and_join("social-worker", Role::kSocialWorker);  // manages circle
  const std::uint64_t until = wall_ms() + 2500;
  InviteCode code = owner->engine->invite(
      plan, {GrantSpec{Section::parse("circle"), Permission::kRead, until}}, wall_ms() + kWeek);
  ASSERT_TRUE(owner->sync(plan).empty());
  owner.reset();  // the owner's phone is off from here on

  TestDevice neighbour(dir.path(), "neighbour");
  neighbour.connect(*server);
  ASSERT_TRUE(neighbour.join(code).empty());
  ASSERT_EQ(texts(neighbour, plan, "circle"), (std::vector<std::string>{"Neighbour Joan"}));
  ASSERT_TRUE(social_worker->sync(plan).empty());
  EXPECT_TRUE(social_worker->engine->pending_rotations(plan).empty());

  // Signed: on a slow machine the expiry may already be past.
  std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<std::int64_t>(until) -
                                                        static_cast<std::int64_t>(wall_ms()) + 200));
  EXPECT_EQ(social_worker->engine->rotate_expired(plan),
            (std::vector<Section>{Section::parse("circle")}));
  social_worker->engine->add_record(plan, "contact", {{"text", "Day centre, Tuesdays"}});
  ASSERT_TRUE(social_worker->sync(plan).empty());
  EXPECT_EQ(texts(*social_worker, plan, "circle"),
            (std::vector<std::string>{"Day centre, Tuesdays", "Neighbour Joan"}));
  EXPECT_TRUE(problem_codes(*social_worker).empty());

  neighbour.sync(plan);
  EXPECT_EQ(texts(neighbour, plan, "circle"), (std::vector<std::string>{"Neighbour Joan"}));
  EXPECT_FALSE(neighbour.store->section_key(plan, "circle", 2).has_value());
}

TEST_F(KithdCircleTest, AMembersNewDeviceAddsItselfAndTheOwnersPhoneGivesItTheKeys) {
  owner_with_full_plan();
  auto family = invite_and_join("family", Role::kFamily);
  ASSERT_TRUE(owner->sync(plan).empty());

  // A tablet with the family member's identity (restored from their recovery key): no other
  // device of theirs needs to be at hand.
  TestDevice tablet(dir.path(), "family-tablet", &family->secrets().identity);
  ASSERT_EQ(tablet.account(), family->account());
  tablet.engine->follow(plan, "Mary's plan");
  tablet.connect(*server);
  auto first = tablet.sync(plan);  // the log, and ops it cannot open yet
  ASSERT_TRUE(first.empty()) << first[0].DebugString();
  tablet.engine->add_this_device(plan);
  ASSERT_TRUE(tablet.sync(plan).empty());
  EXPECT_TRUE(tablet.engine->membership(plan).account_of(tablet.device()).has_value());

  // The owner's phone, a manager of every section, wraps the family's keys for it.
  ASSERT_TRUE(owner->sync(plan).empty());
  tablet.events.clear();
  tablet.sync(plan);
  EXPECT_EQ(sections_seen(tablet, plan), sections_seen(*family, plan));
  EXPECT_TRUE(texts(tablet, plan, "health").empty());
  EXPECT_TRUE(problem_codes(tablet).empty());

  // Keys made from now on reach both of the family member's devices.
  auto nurse = invite_and_join("nurse", Role::kNurse);
  ASSERT_TRUE(owner->sync(plan).empty());
  owner->engine->revoke(plan, nurse->account(), std::nullopt);
  owner->engine->add_record(plan, "activity", {{"text", "Visit after the change of key"}});
  ASSERT_TRUE(owner->sync(plan).empty());
  tablet.sync(plan);
  family->sync(plan);
  for (TestDevice* d : {&tablet, family.get()}) {
    auto seen = texts(*d, plan, "activity");
    EXPECT_NE(std::find(seen.begin(), seen.end(), "Visit after the change of key"), seen.end())
        << d->name;
  }
}

TEST_F(KithdCircleTest, ADeviceOfSomeoneWhoIsNotAMemberCannotAddItself) {
  owner_with_full_plan();
  TestDevice stranger(dir.path(), "stranger");
  stranger.engine->follow(plan, "not mine");
  stranger.connect(*server);
  auto errors = stranger.sync(plan);
  ASSERT_FALSE(errors.empty());
  EXPECT_EQ(errors[0].code(), kith::v1::NOT_MEMBER);
  // Made by hand, the entry is refused by the server.
  auto log = owner->engine->membership(plan);
  auto e = log.next(sync::MembershipEntry::Kind::kDeviceAdded, stranger.device(), wall_ms());
  e.certificate = stranger.engine->identity().certificate;
  e.sign(stranger.secrets().device.signing);
  auto reply = stranger.request(message_with(0, [&](kith::v1::ClientMessage& m) {
    m.mutable_push_membership()->set_plan_id(str(plan.bytes()));
    m.mutable_push_membership()->add_entries(str(e.serialize()));
  }));
  EXPECT_EQ(code_of(reply), kith::v1::NOT_MEMBER);
}

}  // namespace
}  // namespace kith::test
