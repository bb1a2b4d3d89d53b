// Recovery envelopes through a real kithd over TLS: someone who lost every device gets their
// plans back with the recovery key alone, and the server hands those keys to no one else.
#include <gtest/gtest.h>

#include "kith/crypto/envelope.hpp"
#include "kith/crypto/recovery.hpp"
#include "kith/sync/key_ring.hpp"
#include "kithd_circle_fixture.hpp"

namespace kith::test {
namespace {

std::string sig(const crypto::Signature& s) { return std::string(s.begin(), s.end()); }

// What the Subscribe of `identity`'s devices carries to prove the recovery box.
struct RecoveryProof {
  std::string box;
  std::string proof;
  explicit RecoveryProof(const crypto::SigningKey& identity) {
    auto key = crypto::recovery_box_key(identity).public_key();
    box = str(key.bytes());
    proof = sig(crypto::sign_recovery_box(identity, key));
  }
};

class KithdRecoveryTest : public KithdCircleTest {};

TEST_F(KithdRecoveryTest, AnOwnerWhoLostEveryDeviceGetsThePlanBackWithTheRecoveryKey) {
  owner_with_full_plan();
  auto family = invite_and_join("family", Role::kFamily);
  ASSERT_TRUE(owner->sync(plan).empty());
  const auto before = sections_seen(*owner, plan);
  ASSERT_EQ(before.size(), 10u);

  // The owner's only phone is lost. The identity comes back from the written-down key (here the
  // same identity key the lost phone held); the new phone has new device keys.
  const crypto::SigningKey identity = owner->secrets().identity;
  owner.reset();
  TestDevice phone(dir.path(), "owner-new-phone", &identity);
  phone.engine->follow(plan, "Mary's support plan");
  phone.connect(*server);
  auto errors = phone.sync(plan);
  ASSERT_TRUE(errors.empty()) << errors[0].DebugString();
  // Every section's history is readable, with no other device of the circle online.
  EXPECT_EQ(sections_seen(phone, plan), before);
  EXPECT_EQ(texts(phone, plan, "health"), (std::vector<std::string>{"Metformin 500 mg"}));
  EXPECT_TRUE(problem_codes(phone).empty());

  // The phone joins the plan's log as a device of the owner and carries on as the owner.
  phone.engine->add_this_device(plan);
  ASSERT_TRUE(phone.sync(plan).empty());
  phone.engine->add_record(plan, "activity", {{"text", "Back on a new phone"}});
  ASSERT_TRUE(phone.sync(plan).empty());
  ASSERT_TRUE(family->sync(plan).empty());
  auto seen = texts(*family, plan, "activity");
  EXPECT_NE(std::find(seen.begin(), seen.end(), "Back on a new phone"), seen.end());
  EXPECT_TRUE(problem_codes(*family).empty());
}

TEST_F(KithdRecoveryTest, AMembersRecoveryBringsOnlyTheSectionsTheyMayStillRead) {
  owner_with_full_plan();
  auto family = invite_and_join("family", Role::kFamily);
  ASSERT_TRUE(family->sync(plan).empty());  // the family's recovery envelopes go up
  ASSERT_TRUE(owner->sync(plan).empty());   // the owner learns of the join
  owner->engine->revoke(plan, family->account(), Section::parse("notes"));
  ASSERT_TRUE(owner->sync(plan).empty());

  TestDevice tablet(dir.path(), "family-tablet", &family->secrets().identity);
  tablet.engine->follow(plan, "Mary's plan");
  tablet.connect(*server);
  ASSERT_TRUE(tablet.sync(plan).empty());
  EXPECT_EQ(sections_seen(tablet, plan),
            (std::set<std::string>{"profile", "outcomes", "support", "activity", "circle"}));
  // Not even the notes key the family once held comes back through recovery.
  for (std::uint64_t epoch = 1; epoch <= 3; ++epoch) {
    EXPECT_FALSE(tablet.store->section_key(plan, "notes", epoch).has_value()) << epoch;
  }
  EXPECT_FALSE(tablet.store->section_key(plan, "health", 1).has_value());
}

TEST_F(KithdRecoveryTest, ASubscribeWithSomeoneElsesRecoveryProofIsRefused) {
  owner_with_full_plan();
  auto family = invite_and_join("family", Role::kFamily);
  ASSERT_TRUE(owner->sync(plan).empty());
  // The family member presents the owner's recovery box and the owner's genuine proof: it is
  // not their account's, so the server refuses rather than hand over the owner's keys.
  RecoveryProof owners(owner->secrets().identity);
  auto c = raw_catch_up(*family, plan, 0, [&](kith::v1::Subscribe& s) {
    s.set_recovery_box_key(owners.box);
    s.set_recovery_proof(owners.proof);
  });
  ASSERT_TRUE(c.error.has_value());
  EXPECT_EQ(c.error->code(), kith::v1::BAD_SIGNATURE);
  EXPECT_TRUE(c.envelopes.empty());
  // Their own box with a bent proof: refused too.
  RecoveryProof theirs(family->secrets().identity);
  theirs.proof[3] ^= 1;
  c = raw_catch_up(*family, plan, 0, [&](kith::v1::Subscribe& s) {
    s.set_recovery_box_key(theirs.box);
    s.set_recovery_proof(theirs.proof);
  });
  ASSERT_TRUE(c.error.has_value());
  EXPECT_EQ(c.error->code(), kith::v1::BAD_SIGNATURE);
  // A box without a proof does not get past the decoder.
  c = raw_catch_up(*family, plan, 0,
                   [&](kith::v1::Subscribe& s) { s.set_recovery_box_key(theirs.box); });
  ASSERT_TRUE(c.error.has_value());
  EXPECT_EQ(c.error->code(), kith::v1::MALFORMED);
}

TEST_F(KithdRecoveryTest, RecoveryEnvelopesAreRefusedUnlessTheyAreTheAccountsOwnReadableKeys) {
  owner_with_full_plan();
  auto family = invite_and_join("family", Role::kFamily);
  ASSERT_TRUE(family->sync(plan).empty());
  const crypto::SigningKey& fid = family->secrets().identity;
  const auto fbox = crypto::recovery_box_key(fid).public_key();
  const std::string fproof = sig(crypto::sign_recovery_box(fid, fbox));
  // What the server holds for the family: their device's envelopes and their recovery ones.
  auto held = [&] {
    auto c = raw_catch_up(*family, plan, 0, [&](kith::v1::Subscribe& s) {
      s.set_recovery_box_key(str(fbox.bytes()));
      s.set_recovery_proof(fproof);
    });
    EXPECT_TRUE(c.complete.has_value());
    return c.envelopes.size();
  };
  const std::size_t stored_before = held();
  // The family's phone sealed each key it holds for recovery, once: one per section it reads
  // (its keys came sealed to the invitation, so none is addressed to the phone itself), names
  // included.
  EXPECT_EQ(stored_before, 7u);
  auto push = [&](const std::string& section, std::uint64_t epoch,
                  const crypto::BoxPublicKey& box, const std::string& proof,
                  const std::string& invite_id = "") {
    sync::KeyRing ring(plan);
    ring.add(Section::parse(section), epoch, crypto::SectionKey::generate());
    auto env = ring.wrap(Section::parse(section), epoch, box, family->secrets().device.signing);
    return family->request(message_with(0, [&](kith::v1::ClientMessage& m) {
      auto* p = m.mutable_push_envelopes();
      p->set_plan_id(str(plan.bytes()));
      p->add_envelopes(str(env.serialize()));
      p->set_recovery_proof(proof);
      if (!invite_id.empty()) p->set_invite_id(invite_id);
    }));
  };
  // Health is not the family's to read.
  EXPECT_EQ(code_of(push("health", 1, fbox, fproof)), kith::v1::FORBIDDEN);
  // An epoch that does not exist.
  EXPECT_EQ(code_of(push("support", 9, fbox, fproof)), kith::v1::MALFORMED);
  // Sealed to the owner's box with the owner's proof: not the pusher's account.
  const auto obox = crypto::recovery_box_key(owner->secrets().identity).public_key();
  EXPECT_EQ(code_of(push("support", 1, obox,
                         sig(crypto::sign_recovery_box(owner->secrets().identity, obox)))),
            kith::v1::BAD_SIGNATURE);
  // Recovery and invitation at once.
  EXPECT_EQ(code_of(push("support", 1, fbox, fproof, std::string(16, 'i'))), kith::v1::MALFORMED);
  // Nothing of it was stored.
  EXPECT_EQ(held(), stored_before);
  // The same push done right is accepted.
  auto ok = push("support", 1, fbox, fproof);
  ASSERT_TRUE(ok.has_push_ack()) << ok.DebugString();
  EXPECT_EQ(ok.push_ack().envelopes_stored(), 1u);
  EXPECT_EQ(held(), stored_before + 1);
}

}  // namespace
}  // namespace kith::test
