#include "kith/sync/ids.hpp"

#include <gtest/gtest.h>

#include "kith/sync/error.hpp"

namespace kith::sync {
namespace {

TEST(Ids, PrintAndParseBack) {
  PlanId plan = PlanId::random();
  EXPECT_EQ(PlanId::parse(plan.hex()), plan);
  EXPECT_EQ(plan.hex().size(), 32u);
  EXPECT_EQ(plan.short_hex(), plan.hex().substr(0, 8));
  EXPECT_FALSE(plan.is_zero());
  EXPECT_TRUE(PlanId().is_zero());
}

TEST(Ids, RandomIdsDiffer) { EXPECT_NE(OpId::random(), OpId::random()); }

TEST(Ids, ParseRejectsWrongLengthAndNonHex) {
  for (const char* bad :
       {"", "abc", "0123456789abcdef0123456789abcdeg", "0123456789abcdef0123456789abcdef00"}) {
    try {
      PlanId::parse(bad);
      FAIL() << bad;
    } catch (const SyncError& e) {
      EXPECT_EQ(e.code(), SyncErrorCode::kMalformed) << bad;
    }
  }
  EXPECT_THROW(DeviceId::from_bytes(Bytes(31)), SyncError);
}

TEST(Ids, OrderIsByteOrder) {
  auto a = OpId::from_bytes(Bytes(16, 1));
  auto b = OpId::from_bytes(Bytes(16, 2));
  EXPECT_LT(a, b);
}

}  // namespace
}  // namespace kith::sync
