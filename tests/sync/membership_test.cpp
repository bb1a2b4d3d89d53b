#include "kith/sync/membership.hpp"

#include <gtest/gtest.h>

#include "fixtures.hpp"
#include "kith/sync/error.hpp"

namespace kith::sync {
namespace {

using test::error_of;
using test::Person;

using Kind = MembershipEntry::Kind;

class Membership : public ::testing::Test {
 protected:
  PlanId plan = PlanId::random();
  MembershipLog log{plan};
  Person owner, nurse, family;
  std::uint64_t now = 1'000'000;

  void SetUp() override {
    auto e = log.next(Kind::kPlanCreated, owner.device_id(), now);
    e.certificate = owner.cert;
    e.sign(owner.device.signing);
    keep(e);
  }

  // Appends and remembers the entry, so a test can replay the log elsewhere.
  void keep(const MembershipEntry& e) {
    log.append(e);
    entries.push_back(e);
  }
  std::vector<MembershipEntry> entries;

  MembershipEntry invite(const Person& by, std::vector<GrantSpec> grants, const Bytes& secret,
                         std::uint64_t expires) {
    auto e = log.next(Kind::kInviteCreated, by.device_id(), ++now);
    e.invite_id = OpId::random();
    auto key = invite_key_from_secret(secret);
    e.invite_key.assign(key.public_key().bytes().begin(), key.public_key().bytes().end());
    e.invite_expires_at_ms = expires;
    e.grants = std::move(grants);
    e.sign(by.device.signing);
    return e;
  }
  MembershipEntry join(const Person& who, const OpId& invite_id, const Bytes& secret) {
    auto e = log.next(Kind::kInviteAccepted, who.device_id(), ++now);
    e.invite_id = invite_id;
    e.certificate = who.cert;
    e.invite_signature =
        invite_key_from_secret(secret).sign(crypto::labels::kInviteJoin, e.invite_join_message());
    e.sign(who.device.signing);
    return e;
  }
  void add_member(const Person& who, std::vector<GrantSpec> grants) {
    Bytes secret(32, static_cast<std::uint8_t>(log.size()));
    auto inv = invite(owner, std::move(grants), secret, now + 100000);
    keep(inv);
    keep(join(who, inv.invite_id, secret));
  }
  GrantSpec g(const char* section, Permission p, std::uint64_t expires = 0) {
    return {Section::parse(section), p, expires};
  }
  OpHeader op(const Person& who, const char* section, std::uint64_t seq = 1) {
    OpHeader h;
    h.plan = plan;
    h.op_id = OpId::random();
    h.section = Section::parse(section);
    h.epoch = log.epoch(h.section);
    h.author = who.device_id();
    h.author_seq = seq;
    h.clock = {now, 0};
    h.membership_index = log.size();
    return h;
  }
  void append_rejected(const MembershipEntry& e, SyncErrorCode code) {
    auto size = log.size();
    auto head = log.head_hash();
    EXPECT_EQ(error_of([&] { log.append(e); }), code);
    EXPECT_EQ(log.size(), size);
    EXPECT_EQ(log.head_hash(), head);
  }
};

TEST_F(Membership, AMembersNewDeviceMayAddItselfOthersMayNot) {
  add_member(nurse, {g("health", Permission::kWrite)});
  auto self_add = [&](const crypto::SigningKey& identity) {
    crypto::DeviceKeys keys = crypto::DeviceKeys::generate();
    auto e = log.next(Kind::kDeviceAdded,
                      DeviceId::from_bytes(keys.signing.public_key().bytes()), ++now);
    e.certificate = crypto::DeviceCertificate::issue(identity, keys.signing.public_key(),
                                                     keys.encryption.public_key(), 1);
    e.sign(keys.signing);
    return e;
  };
  // The nurse's new phone, certified by the nurse's identity key.
  auto phone = self_add(nurse.identity);
  keep(phone);
  EXPECT_EQ(log.account_of(phone.author), nurse.account());
  // A device of someone with no place in the plan.
  append_rejected(self_add(family.identity), SyncErrorCode::kNotMember);
  // A device whose certificate names another device than the one that signed the entry.
  auto lying = self_add(nurse.identity);
  auto other = crypto::SigningKey::generate();
  lying.author = DeviceId::from_bytes(other.public_key().bytes());
  lying.sign(other);
  append_rejected(lying, SyncErrorCode::kNotMember);
  // A revoked member's new device.
  auto rev = log.next(Kind::kRevoke, owner.device_id(), ++now);
  rev.member = nurse.account();
  rev.sign(owner.device.signing);
  keep(rev);
  append_rejected(self_add(nurse.identity), SyncErrorCode::kNotMember);
}

TEST_F(Membership, OwnerManagesEverySection) {
  EXPECT_EQ(log.owner(), owner.account());
  EXPECT_EQ(log.permission(owner.account(), Section::parse("health")), Permission::kManage);
  EXPECT_EQ(log.permission(owner.account(), Section::parse("housing")), Permission::kManage);
  EXPECT_TRUE(log.check_op(op(owner, "health")).may_edit_any);
}

TEST_F(Membership, InviteGivesExactlyTheInvitedGrants) {
  add_member(nurse, {g("health", Permission::kWrite), g("notes", Permission::kAppend),
                     g("profile", Permission::kRead)});
  EXPECT_EQ(log.permission(nurse.account(), Section::parse("health")), Permission::kWrite);
  EXPECT_EQ(log.permission(nurse.account(), Section::parse("budget")), Permission::kNone);
  EXPECT_TRUE(log.check_op(op(nurse, "health")).may_edit_any);
  EXPECT_FALSE(log.check_op(op(nurse, "notes")).may_edit_any);
  EXPECT_EQ(error_of([&] { log.check_op(op(nurse, "profile")); }), SyncErrorCode::kForbidden);
  EXPECT_EQ(error_of([&] { log.check_op(op(nurse, "budget")); }), SyncErrorCode::kForbidden);
  auto members = log.members();
  EXPECT_EQ(members.size(), 2u);
}

TEST_F(Membership, ForgedAndTamperedEntriesAreRejected) {
  add_member(nurse, {g("health", Permission::kWrite)});
  auto e = log.next(Kind::kGrant, owner.device_id(), ++now);
  e.member = nurse.account();
  e.grants = {g("risk", Permission::kWrite)};
  e.sign(nurse.device.signing);  // signed by the nurse, claiming to be the owner's device
  e.author = owner.device_id();
  append_rejected(e, SyncErrorCode::kBadSignature);

  e.sign(owner.device.signing);
  auto tampered = MembershipEntry::parse(e.serialize());
  tampered.grants[0].permission = Permission::kManage;
  append_rejected(tampered, SyncErrorCode::kBadSignature);
  log.append(e);
  EXPECT_EQ(log.permission(nurse.account(), Section::parse("risk")), Permission::kWrite);
}

TEST_F(Membership, OutOfChainAndReplayedEntriesAreRejected) {
  add_member(nurse, {g("health", Permission::kWrite)});
  auto e = log.next(Kind::kGrant, owner.device_id(), ++now);
  e.member = nurse.account();
  e.grants = {g("risk", Permission::kRead)};
  auto wrong_index = e;
  wrong_index.index += 1;
  wrong_index.sign(owner.device.signing);
  append_rejected(wrong_index, SyncErrorCode::kMembershipInvalid);
  auto wrong_link = e;
  wrong_link.prev[0] ^= 1;
  wrong_link.sign(owner.device.signing);
  append_rejected(wrong_link, SyncErrorCode::kMembershipInvalid);
  e.sign(owner.device.signing);
  log.append(e);
  append_rejected(e, SyncErrorCode::kMembershipInvalid);  // replayed
  auto other_plan = e;
  other_plan.plan = PlanId::random();
  other_plan.index = log.size();
  other_plan.prev = log.head_hash();
  other_plan.sign(owner.device.signing);
  append_rejected(other_plan, SyncErrorCode::kMembershipInvalid);
}

TEST_F(Membership, OnlyManagersGrantAndOnlyInTheirSections) {
  add_member(nurse, {g("health", Permission::kWrite)});
  add_member(family, {g("circle", Permission::kManage), g("notes", Permission::kAppend)});
  auto by_nurse = log.next(Kind::kGrant, nurse.device_id(), ++now);
  by_nurse.member = family.account();
  by_nurse.grants = {g("health", Permission::kRead)};
  by_nurse.sign(nurse.device.signing);
  append_rejected(by_nurse, SyncErrorCode::kForbidden);

  auto outside = log.next(Kind::kGrant, family.device_id(), ++now);
  outside.member = nurse.account();
  outside.grants = {g("health", Permission::kManage)};
  outside.sign(family.device.signing);
  append_rejected(outside, SyncErrorCode::kForbidden);

  auto inside = log.next(Kind::kGrant, family.device_id(), ++now);
  inside.member = nurse.account();
  inside.grants = {g("circle", Permission::kRead)};
  inside.sign(family.device.signing);
  log.append(inside);
  EXPECT_EQ(log.permission(nurse.account(), Section::parse("circle")), Permission::kRead);

  auto revoke_owner = log.next(Kind::kRevoke, family.device_id(), ++now);
  revoke_owner.member = owner.account();
  revoke_owner.sign(family.device.signing);
  append_rejected(revoke_owner, SyncErrorCode::kForbidden);

  Person stranger;
  auto by_stranger = log.next(Kind::kGrant, stranger.device_id(), ++now);
  by_stranger.member = nurse.account();
  by_stranger.grants = {g("health", Permission::kManage)};
  by_stranger.sign(stranger.device.signing);
  append_rejected(by_stranger, SyncErrorCode::kNotMember);
}

TEST_F(Membership, InvitesAreSingleUseExpireAndNeedTheSecret) {
  Bytes secret(32, 7);
  auto inv = invite(owner, {g("notes", Permission::kAppend)}, secret, now + 10);
  log.append(inv);
  append_rejected(join(nurse, inv.invite_id, Bytes(32, 8)), SyncErrorCode::kBadSignature);
  log.append(join(nurse, inv.invite_id, secret));
  append_rejected(join(family, inv.invite_id, secret), SyncErrorCode::kInviteUsed);

  auto late = invite(owner, {g("notes", Permission::kAppend)}, secret, now + 1);
  log.append(late);
  now += 50;
  append_rejected(join(family, late.invite_id, secret), SyncErrorCode::kInviteExpired);
  append_rejected(join(family, OpId::random(), secret), SyncErrorCode::kInviteUnknown);
}

TEST_F(Membership, ExpiredGrantRefusesLaterOps) {
  add_member(nurse, {g("health", Permission::kWrite, now + 500)});
  OpHeader before = op(nurse, "health");
  EXPECT_NO_THROW(log.check_op(before));
  OpHeader after = op(nurse, "health");
  after.clock.wall_ms = now + 500;
  EXPECT_EQ(error_of([&] { log.check_op(after); }), SyncErrorCode::kGrantExpired);
  EXPECT_EQ(log.permission(nurse.account(), Section::parse("health"), {}, now + 501),
            Permission::kNone);
}

TEST_F(Membership, RetiredAndUnknownEpochsAreRefused) {
  add_member(nurse, {g("health", Permission::kWrite)});
  OpHeader old_view = op(nurse, "health", 1);
  auto rot = log.next(Kind::kKeyRotation, owner.device_id(), ++now);
  rot.section = Section::parse("health");
  rot.epoch = 2;
  rot.cutoffs = {{nurse.device_id(), Section::parse("health"), 1}};
  rot.sign(owner.device.signing);
  log.append(rot);
  EXPECT_EQ(log.epoch(Section::parse("health")), 2u);

  OpHeader stale = op(nurse, "health", 2);
  stale.epoch = 1;
  EXPECT_EQ(error_of([&] { log.check_op(stale); }), SyncErrorCode::kRetiredEpoch);
  OpHeader future = op(nurse, "health", 2);
  future.epoch = 3;
  EXPECT_EQ(error_of([&] { log.check_op(future); }), SyncErrorCode::kUnknownEpoch);
  // An op written before the rotation, which the rotating device had seen, still counts.
  EXPECT_NO_THROW(log.check_op(old_view));
  // One claiming the old view but beyond what the rotation saw does not.
  OpHeader sneaky = old_view;
  sneaky.author_seq = 2;
  EXPECT_EQ(error_of([&] { log.check_op(sneaky); }), SyncErrorCode::kForbidden);

  auto skip = log.next(Kind::kKeyRotation, owner.device_id(), ++now);
  skip.section = Section::parse("health");
  skip.epoch = 4;
  skip.sign(owner.device.signing);
  append_rejected(skip, SyncErrorCode::kMembershipInvalid);
}

TEST_F(Membership, RevokedMemberCannotWriteInThePast) {
  add_member(nurse, {g("health", Permission::kWrite)});
  OpHeader seen = op(nurse, "health", 1);
  OpHeader unseen = op(nurse, "health", 2);
  auto rev = log.next(Kind::kRevoke, owner.device_id(), ++now);
  rev.member = nurse.account();
  rev.cutoffs = {{nurse.device_id(), Section::parse("health"), 1}};
  rev.sign(owner.device.signing);
  log.append(rev);
  EXPECT_EQ(log.permission(nurse.account(), Section::parse("health")), Permission::kNone);
  EXPECT_NO_THROW(log.check_op(seen));
  EXPECT_EQ(error_of([&] { log.check_op(unseen); }), SyncErrorCode::kForbidden);
  EXPECT_EQ(error_of([&] { log.check_op(op(nurse, "health", 3)); }), SyncErrorCode::kForbidden);
}

TEST_F(Membership, OpsFromTheFutureOfTheLogWait) {
  OpHeader h = op(owner, "health");
  h.membership_index = log.size() + 1;
  EXPECT_EQ(error_of([&] { log.check_op(h); }), SyncErrorCode::kMembershipInvalid);
  Person stranger;
  EXPECT_EQ(error_of([&] { log.check_op(op(stranger, "health")); }), SyncErrorCode::kNotMember);
}

TEST_F(Membership, DevicesAreAddedOnlyByTheirOwnAccount) {
  add_member(nurse, {g("health", Permission::kWrite)});
  crypto::DeviceKeys laptop = crypto::DeviceKeys::generate();
  auto cert = crypto::DeviceCertificate::issue(nurse.identity, laptop.signing.public_key(),
                                               laptop.encryption.public_key(), 2);
  auto by_owner = log.next(Kind::kDeviceAdded, owner.device_id(), ++now);
  by_owner.certificate = cert;
  by_owner.sign(owner.device.signing);
  append_rejected(by_owner, SyncErrorCode::kForbidden);
  auto by_nurse = log.next(Kind::kDeviceAdded, nurse.device_id(), ++now);
  by_nurse.certificate = cert;
  by_nurse.sign(nurse.device.signing);
  log.append(by_nurse);
  EXPECT_EQ(log.account_of(DeviceId::from_bytes(laptop.signing.public_key().bytes())),
            nurse.account());
}

TEST_F(Membership, EveryKindRoundTripsAndTruncationIsRefused) {
  add_member(nurse, {g("health", Permission::kWrite)});
  auto rev = log.next(Kind::kRevoke, owner.device_id(), ++now);
  rev.member = nurse.account();
  rev.section = Section::parse("health");
  rev.cutoffs = {{nurse.device_id(), Section::parse("health"), 4}};
  rev.sign(owner.device.signing);
  Bytes bytes = rev.serialize();
  EXPECT_EQ(MembershipEntry::parse(bytes).serialize(), bytes);
  for (std::size_t n = 0; n < bytes.size(); n += 9) {
    EXPECT_EQ(error_of([&] { MembershipEntry::parse(ByteView(bytes).first(n)); }),
              SyncErrorCode::kMalformed);
  }
  keep(rev);
  // The whole log, sent as bytes, replays on another device to the same state.
  MembershipLog copy(plan);
  for (const auto& e : entries) copy.append(MembershipEntry::parse(e.serialize()));
  EXPECT_EQ(copy.head_hash(), log.head_hash());
  EXPECT_EQ(copy.permission(nurse.account(), Section::parse("health")), Permission::kNone);
  EXPECT_EQ(copy.owner(), owner.account());
}

}  // namespace
}  // namespace kith::sync
