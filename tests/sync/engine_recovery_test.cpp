// Recovery envelopes made by the sync engine: each key a device holds of a section its account
// may read is sealed once to the account's recovery box, devices of one account do not seal the
// same key twice, and a device restored from the recovery key reads the plan with no other
// device of the account at hand.
#include <gtest/gtest.h>

#include "engine_fixture.hpp"
#include "kith/crypto/recovery.hpp"
#include "kith/sync/engine.hpp"

namespace kith::sync::engine_test {
namespace {

class EngineRecovery : public Engine {
 protected:
  crypto::BoxPublicKey recovery_box() const { return crypto::recovery_box_key(owner).public_key(); }
  // The keys a device holds for the plan: (section, epoch) pairs with a stored key.
  static std::size_t keys_held(Device& d, const PlanId& plan) {
    std::size_t n = 0;
    for (std::string_view s : kKnownSections) {
      for (std::uint64_t epoch = 1; epoch <= d.engine->membership(plan).epoch(Section::parse(s));
           ++epoch) {
        n += d.store->section_key(plan, s, epoch).has_value() ? 1 : 0;
      }
    }
    return n;
  }
};

TEST_F(EngineRecovery, EachKeyIsSealedOnceForTheWholeAccount) {
  PlanId plan = shared_plan();  // a creates and syncs, then b (another device of the owner)
  const std::size_t keys = keys_held(*a, plan);
  ASSERT_EQ(keys, kKnownSections.size());
  // a sealed each key once; b received those at its catch-up and sealed none of its own.
  EXPECT_EQ(server.envelopes_to(plan, recovery_box()), keys);
  EXPECT_EQ(a->store->recovery_sealed(plan).size(), keys);
  EXPECT_EQ(b->store->recovery_sealed(plan).size(), keys);
  a->sync(server, plan);
  b->sync(server, plan);
  EXPECT_EQ(server.envelopes_to(plan, recovery_box()), keys);

  // A new key epoch is sealed once more, by the device that made it.
  a->engine->rotate_key(plan, Section::parse("health"));
  a->sync(server, plan);
  b->sync(server, plan);
  EXPECT_EQ(server.envelopes_to(plan, recovery_box()), keys + 1);
  a->expect_no_problems();
  b->expect_no_problems();
}

TEST_F(EngineRecovery, ARestoredDeviceReadsThePlanWithNoOtherDeviceAtHand) {
  PlanId plan = a->engine->create_plan("Nia's plan");
  RecordId r = a->engine->add_record(plan, "health", {{"text", "Insulin at 8am"}});
  a->engine->rotate_key(plan, Section::parse("health"));
  RecordId r2 = a->engine->add_record(plan, "health", {{"text", "Insulin at 9am"}});
  a->sync(server, plan);
  a.reset();  // the only device is gone

  auto restored = another("restored", owner);  // the identity from the recovery key
  restored->engine->follow(plan, "Nia's plan");
  restored->sync(server, plan);
  restored->expect_no_problems();
  EXPECT_EQ(text(*restored, plan, r), "Insulin at 8am");
  EXPECT_EQ(text(*restored, plan, r2), "Insulin at 9am");  // under the rotated key, epoch 2
}

}  // namespace
}  // namespace kith::sync::engine_test
