#include "kith/sync/id_map.hpp"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

namespace kith::sync {
namespace {

OpId id_from(std::uint64_t n) {
  Bytes b(OpId::kSize, 0);
  for (int i = 0; i < 8; ++i)
    b[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(n >> (8 * i));
  return OpId::from_bytes(b);
}

// The map must hold exactly what a std::map fed the same operations holds.
void expect_same(const IdMap<OpId, std::string>& map, const std::map<OpId, std::string>& want) {
  ASSERT_EQ(map.size(), want.size());
  std::map<OpId, std::string> seen;
  for (const auto& [id, value] : map) EXPECT_TRUE(seen.emplace(id, value).second);
  EXPECT_EQ(seen, want);
  for (const auto& [id, value] : want) {
    const std::string* found = map.find(id);
    ASSERT_NE(found, nullptr);
    EXPECT_EQ(*found, value);
  }
}

TEST(IdMap, EmptyMapFindsNothing) {
  IdMap<OpId, std::string> map;
  EXPECT_TRUE(map.empty());
  EXPECT_EQ(map.find(OpId::random()), nullptr);
  EXPECT_FALSE(map.erase(OpId::random()));
  EXPECT_EQ(map.begin(), map.end());
}

TEST(IdMap, TryEmplaceKeepsTheFirstValue) {
  IdMap<OpId, std::string> map;
  OpId id = OpId::random();
  auto [first, made] = map.try_emplace(id, "one");
  EXPECT_TRUE(made);
  EXPECT_EQ(*first, "one");
  auto [again, made_again] = map.try_emplace(id, "two");
  EXPECT_FALSE(made_again);
  EXPECT_EQ(*again, "one");
  map[id] += "!";
  EXPECT_EQ(*map.find(id), "one!");
  EXPECT_EQ(map.size(), 1u);
}

// Random inserts and erases through many growths, at every load up to the limit, so that
// erasing shifts entries back across runs that wrap around the end of the array.
TEST(IdMap, MatchesAStdMapThroughInsertsAndErases) {
  std::mt19937_64 rng(7);
  IdMap<OpId, std::string> map;
  std::map<OpId, std::string> want;
  for (int step = 0; step < 20'000; ++step) {
    OpId id = id_from(rng() % 3'000);
    if (rng() % 3 == 0) {
      EXPECT_EQ(map.erase(id), want.erase(id) == 1);
    } else {
      std::string value = std::to_string(step);
      auto [slot, made] = map.try_emplace(id, value);
      auto [it, made_too] = want.try_emplace(id, value);
      EXPECT_EQ(made, made_too);
      EXPECT_EQ(*slot, it->second);
    }
    if (step % 1'000 == 0) expect_same(map, want);
  }
  expect_same(map, want);
  for (auto it = want.begin(); it != want.end();) {
    EXPECT_TRUE(map.erase(it->first));
    it = want.erase(it);
    if (want.size() % 97 == 0) expect_same(map, want);
  }
  EXPECT_TRUE(map.empty());
  EXPECT_EQ(map.begin(), map.end());
}

TEST(IdMap, CopiesAreIndependent) {
  IdMap<OpId, std::string> map;
  std::map<OpId, std::string> want;
  for (std::uint64_t n = 0; n < 100; ++n) {
    map.try_emplace(id_from(n), std::to_string(n));
    want.emplace(id_from(n), std::to_string(n));
  }
  IdMap<OpId, std::string> copy = map;
  copy.erase(id_from(1));
  *copy.find(id_from(2)) = "changed";
  expect_same(map, want);
  EXPECT_EQ(copy.size(), 99u);
}

TEST(IdMap, ReserveKeepsEntries) {
  IdMap<OpId, std::string> map;
  std::map<OpId, std::string> want;
  for (std::uint64_t n = 0; n < 10; ++n) {
    map.try_emplace(id_from(n), "v");
    want.emplace(id_from(n), "v");
  }
  map.reserve(10'000);
  expect_same(map, want);
}

}  // namespace
}  // namespace kith::sync
