#include "kith/sync/key_ring.hpp"

#include <gtest/gtest.h>

#include "fixtures.hpp"
#include "kith/crypto/recovery.hpp"
#include "kith/sync/error.hpp"

namespace kith::sync {
namespace {

using test::error_of;
using test::Person;

using Kind = MembershipEntry::Kind;

class KeyRingTest : public ::testing::Test {
 protected:
  PlanId plan = PlanId::random();
  MembershipLog log{plan};
  Person owner, nurse;
  Section health = Section::parse("health");

  void SetUp() override {
    auto e = log.next(Kind::kPlanCreated, owner.device_id(), 1);
    e.certificate = owner.cert;
    e.sign(owner.device.signing);
    log.append(e);
    Bytes secret(32, 1);
    auto inv = log.next(Kind::kInviteCreated, owner.device_id(), 2);
    inv.invite_id = OpId::random();
    auto ik = invite_key_from_secret(secret);
    inv.invite_key.assign(ik.public_key().bytes().begin(), ik.public_key().bytes().end());
    inv.invite_expires_at_ms = 1000;
    inv.grants = {{health, Permission::kWrite, 0}};
    inv.sign(owner.device.signing);
    log.append(inv);
    auto join = log.next(Kind::kInviteAccepted, nurse.device_id(), 3);
    join.invite_id = inv.invite_id;
    join.certificate = nurse.cert;
    join.invite_signature = ik.sign(crypto::labels::kInviteJoin, join.invite_join_message());
    join.sign(nurse.device.signing);
    log.append(join);
  }
};

TEST_F(KeyRingTest, MemberAcceptsAKeyTheOwnerWrapped) {
  KeyRing owners(plan);
  auto key = crypto::SectionKey::generate();
  owners.add(health, 1, key);
  auto env = owners.wrap(health, 1, nurse.device.encryption.public_key(), owner.device.signing);
  KeyRing nurses(plan);
  EXPECT_EQ(nurses.accept(env, log, nurse.device.encryption),
            std::make_pair(health, std::uint64_t{1}));
  ASSERT_NE(nurses.find(health, 1), nullptr);
  EXPECT_TRUE(*nurses.find(health, 1) == key);
  EXPECT_EQ(nurses.newest_epoch(health), 1u);
}

TEST_F(KeyRingTest, RefusesKeysFromNonManagersAndMisdirectedEnvelopes) {
  KeyRing ring(plan);
  ring.add(health, 1, crypto::SectionKey::generate());
  // The nurse can write but not manage health: her envelope is refused.
  auto from_nurse =
      ring.wrap(health, 1, owner.device.encryption.public_key(), nurse.device.signing);
  KeyRing owners(plan);
  EXPECT_EQ(error_of([&] { owners.accept(from_nurse, log, owner.device.encryption); }),
            SyncErrorCode::kBadSignature);
  // An owner's envelope for the nurse does not open for another device, nor in another plan.
  auto env = ring.wrap(health, 1, nurse.device.encryption.public_key(), owner.device.signing);
  EXPECT_EQ(error_of([&] { owners.accept(env, log, owner.device.encryption); }),
            SyncErrorCode::kBadSignature);
  KeyRing other_plan(PlanId::random());
  EXPECT_EQ(error_of([&] { other_plan.accept(env, log, nurse.device.encryption); }),
            SyncErrorCode::kMalformed);
  EXPECT_EQ(owners.size(), 0u);
  EXPECT_EQ(other_plan.size(), 0u);
}

TEST_F(KeyRingTest, EnvelopeAsReceivedFindsItsSignerAmongManagers) {
  KeyRing owners(plan);
  auto key = crypto::SectionKey::generate();
  owners.add(health, 2, key);
  KeyRing nurses(plan);
  auto got = nurses.accept(
      owners.wrap(health, 2, nurse.device.encryption.public_key(), owner.device.signing), log,
      nurse.device.encryption);
  EXPECT_EQ(got.first, health);
  EXPECT_EQ(got.second, 2u);
  EXPECT_TRUE(*nurses.find(health, 2) == key);
  EXPECT_EQ(parse_section_key_context(section_key_context(plan, health, 2), plan), got);
  EXPECT_FALSE(parse_section_key_context(section_key_context(plan, health, 2), PlanId::random()));

  // Signed by a member who only writes health, or addressed to another device: refused.
  auto from_nurse =
      owners.wrap(health, 2, owner.device.encryption.public_key(), nurse.device.signing);
  KeyRing refused(plan);
  EXPECT_THROW(refused.accept(from_nurse, log, owner.device.encryption), SyncError);
  auto to_owner =
      owners.wrap(health, 2, owner.device.encryption.public_key(), owner.device.signing);
  EXPECT_THROW(refused.accept(to_owner, log, nurse.device.encryption), SyncError);
  EXPECT_EQ(refused.size(), 0u);
}

TEST_F(KeyRingTest, ARecoveryEnvelopeOpensOnlyFromOneOfTheAccountsOwnDevices) {
  // The nurse's phone seals health to the nurse's recovery box; a restored device of the nurse
  // (same identity, so the same box) takes it back, although the nurse manages nothing.
  const crypto::BoxSecretKey box = crypto::recovery_box_key(nurse.identity);
  auto key = crypto::SectionKey::generate();
  KeyRing phone(plan);
  phone.add(health, 1, key);
  auto env = phone.wrap(health, 1, box.public_key(), nurse.device.signing);
  KeyRing restored(plan);
  EXPECT_EQ(restored.accept_recovery(env, log, box, nurse.account()),
            std::make_pair(health, std::uint64_t{1}));
  ASSERT_NE(restored.find(health, 1), nullptr);
  EXPECT_TRUE(*restored.find(health, 1) == key);

  // Sealed to the nurse's box but signed by the owner's device (a manager, but another
  // account), or by a device in no one's log (what a server could make): not used.
  KeyRing refused(plan);
  auto from_owner = phone.wrap(health, 1, box.public_key(), owner.device.signing);
  EXPECT_EQ(error_of([&] { refused.accept_recovery(from_owner, log, box, nurse.account()); }),
            SyncErrorCode::kBadSignature);
  auto stranger = crypto::DeviceKeys::generate();
  auto forged = phone.wrap(health, 1, box.public_key(), stranger.signing);
  EXPECT_EQ(error_of([&] { refused.accept_recovery(forged, log, box, nurse.account()); }),
            SyncErrorCode::kBadSignature);
  // Another account's box does not open it.
  const crypto::BoxSecretKey owners_box = crypto::recovery_box_key(owner.identity);
  EXPECT_EQ(error_of([&] { refused.accept_recovery(env, log, owners_box, owner.account()); }),
            SyncErrorCode::kBadSignature);
  EXPECT_EQ(refused.size(), 0u);
}

TEST_F(KeyRingTest, WrapWithoutTheKeyIsAnError) {
  KeyRing ring(plan);
  EXPECT_THROW(ring.wrap(health, 3, nurse.device.encryption.public_key(), owner.device.signing),
               SyncError);
}

}  // namespace
}  // namespace kith::sync
