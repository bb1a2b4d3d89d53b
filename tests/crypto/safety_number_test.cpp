#include "kith/crypto/safety_number.hpp"

#include <gtest/gtest.h>

#include "support/vectors.hpp"

namespace kith::crypto {
namespace {

TEST(SafetyNumber, IsTheSameOnBothSides) {
  VerifyKey a = SigningKey::generate().public_key();
  VerifyKey b = SigningKey::generate().public_key();
  EXPECT_EQ(safety_number(a, b), safety_number(b, a));
}

TEST(SafetyNumber, IsSixtyDigitsInTwelveGroups) {
  std::string n =
      safety_number(SigningKey::generate().public_key(), SigningKey::generate().public_key());
  ASSERT_EQ(n.size(), 60u + 11);
  for (std::size_t i = 0; i < n.size(); ++i) {
    if (i % 6 == 5) {
      EXPECT_EQ(n[i], ' ');
    } else {
      EXPECT_TRUE(n[i] >= '0' && n[i] <= '9') << n;
    }
  }
}

TEST(SafetyNumber, ChangesWhenAServerSwapsEitherKey) {
  VerifyKey a = SigningKey::generate().public_key();
  VerifyKey b = SigningKey::generate().public_key();
  VerifyKey mallory = SigningKey::generate().public_key();
  std::string real = safety_number(a, b);
  EXPECT_NE(safety_number(a, mallory), real);
  EXPECT_NE(safety_number(mallory, b), real);
}

TEST(SafetyNumberVectors, MatchTheDocumentedDerivation) {
  auto doc = test::load_json(test::own_vector_path("safety_numbers.json"));
  ASSERT_GE(doc.at("cases").size(), 3u);
  for (const auto& c : doc.at("cases")) {
    VerifyKey a = VerifyKey::parse(test::hex_field(c, "key_a"));
    VerifyKey b = VerifyKey::parse(test::hex_field(c, "key_b"));
    EXPECT_EQ(safety_number_half(a), c.at("half_a"));
    EXPECT_EQ(safety_number_half(b), c.at("half_b"));
    EXPECT_EQ(safety_number(a, b), c.at("safety_number"));
    EXPECT_EQ(safety_number(b, a), c.at("safety_number"));
  }
}

}  // namespace
}  // namespace kith::crypto
