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
  // Unsigned bytes, the first that differs decides, wherever it lies in the id.
  for (std::size_t at : {0, 7, 8, 15, 31}) {
    Bytes low(32, 0x7f), high(32, 0x7f);
    high[at] = 0x80;
    if (at + 1 < low.size()) low[at + 1] = 0xff;
    EXPECT_LT(DeviceId::from_bytes(low), DeviceId::from_bytes(high)) << at;
    EXPECT_GT(DeviceId::from_bytes(high), DeviceId::from_bytes(low)) << at;
  }
  for (int i = 0; i < 1000; ++i) {
    OpId x = OpId::random(), y = OpId::random();
    if (i % 10 == 0) y = x;
    Bytes xb(x.bytes().begin(), x.bytes().end()), yb(y.bytes().begin(), y.bytes().end());
    EXPECT_EQ(x <=> y, xb <=> yb);
    EXPECT_EQ(x == y, xb == yb);
  }
}

}  // namespace
}  // namespace kith::sync
