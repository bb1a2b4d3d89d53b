// OpIdSet: the in-memory answer to "may this plan hold this op id already?".
#include "op_id_set.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace kith::server {
namespace {

TEST(OpIdSet, HoldsEveryIdInsertedAndRarelyClaimsAnother) {
  OpIdSet set;
  std::vector<sync::OpId> in;
  for (int i = 0; i < 20000; ++i) {  // through several growths
    in.push_back(sync::OpId::random());
    set.insert(in.back());
  }
  set.insert(in.front());  // again: still one
  EXPECT_EQ(set.size(), in.size());
  for (const auto& id : in) EXPECT_TRUE(set.may_contain(id));
  int claimed = 0;
  for (int i = 0; i < 20000; ++i) claimed += set.may_contain(sync::OpId::random()) ? 1 : 0;
  EXPECT_EQ(claimed, 0);  // 64-bit keyed hashes: a false "maybe" is a 1 in 2^40 event here
}

// Past its limit the set holds nothing and answers "maybe" for every id: each op is then
// looked up in storage, as before the set existed.
TEST(OpIdSet, PastItsLimitItGivesUpAndClaimsEveryId) {
  OpIdSet set(100);
  for (int i = 0; i < 100; ++i) set.insert(sync::OpId::random());
  EXPECT_FALSE(set.may_contain(sync::OpId::random()));
  set.insert(sync::OpId::random());
  EXPECT_EQ(set.size(), 0u);
  EXPECT_TRUE(set.may_contain(sync::OpId::random()));
}

TEST(OpIdSet, EmptySetHoldsNothing) {
  OpIdSet set;
  EXPECT_FALSE(set.may_contain(sync::OpId::random()));
  EXPECT_EQ(set.size(), 0u);
}

}  // namespace
}  // namespace kith::server
