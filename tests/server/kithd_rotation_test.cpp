// A device offline across a key rotation, through a real kithd over TLS: the ops it queued
// under the retired key are sealed again under the new one before upload, the server stores
// them under the new epoch, and every remaining reader reads them.
#include <gtest/gtest.h>

#include "kithd_circle_fixture.hpp"

namespace kith::test {
namespace {

class KithdRotationTest : public KithdCircleTest {};

TEST_F(KithdRotationTest, OpsQueuedOfflineAcrossARotationLandUnderTheNewEpoch) {
  owner_with_full_plan();
  auto nurse = invite_and_join("nurse", Role::kNurse);
  auto social = invite_and_join("social-worker", Role::kSocialWorker);
  ASSERT_TRUE(owner->sync(plan).empty());
  ASSERT_TRUE(nurse->sync(plan).empty());
  const Section health = Section::parse("health");
  ASSERT_EQ(nurse->engine->membership(plan).epoch(health), 1u);

  // The nurse, out of signal mid-visit, writes two health records: queued under epoch 1.
  nurse->conn.reset();
  nurse->engine->add_record(plan, "health", {{"text", "BP 132/84 at the visit"}});
  nurse->engine->add_record(plan, "health", {{"text", "Dressing changed, healing well"}});
  ASSERT_EQ(nurse->engine->outbox_size(plan), 2u);

  // Meanwhile the owner replaces the health key (as a revocation of someone else would).
  owner->engine->rotate_key(plan, health);
  ASSERT_TRUE(owner->sync(plan).empty());

  // Back in signal: the nurse's ops go up under epoch 2, nothing is lost or refused.
  nurse->connect(*server);
  auto errors = nurse->sync(plan);
  ASSERT_TRUE(errors.empty()) << errors[0].DebugString();
  EXPECT_EQ(nurse->engine->outbox_size(plan), 0u);
  EXPECT_TRUE(problem_codes(*nurse).empty());
  std::size_t nurse_ops = 0;
  for (const auto& d : raw_catch_up(*owner, plan, 0).ops) {
    auto h = sync::OpHeader::parse(str_bytes(d.op().header()));
    if (h.author != nurse->device()) continue;
    ++nurse_ops;
    EXPECT_EQ(h.epoch, 2u) << "stored under the retired key";
  }
  EXPECT_EQ(nurse_ops, 2u);

  // Every remaining reader of health reads them.
  for (TestDevice* d : {owner.get(), social.get()}) {
    ASSERT_TRUE(d->sync(plan).empty()) << d->name;
    auto seen = texts(*d, plan, "health");
    EXPECT_NE(std::find(seen.begin(), seen.end(), "BP 132/84 at the visit"), seen.end())
        << d->name;
    EXPECT_NE(std::find(seen.begin(), seen.end(), "Dressing changed, healing well"), seen.end())
        << d->name;
    EXPECT_TRUE(problem_codes(*d).empty()) << d->name;
  }
}

}  // namespace
}  // namespace kith::test
