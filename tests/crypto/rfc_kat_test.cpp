// Known-answer tests from the RFCs that define the primitives Kith links against: RFC 8032
// (Ed25519), RFC 7748 (X25519) and RFC 7693 (BLAKE2b). The values live in tests/vectors/rfc*.json,
// copied from the RFC texts; each file's "source" field names the section.
#include <gtest/gtest.h>

#include <cstddef>
#include <set>
#include <string>

#include "kith/crypto/bytes.hpp"
#include "kith/crypto/hash.hpp"
#include "kith/crypto/primitives.hpp"
#include "kith/crypto/sign.hpp"
#include "support/vectors.hpp"

namespace kith::crypto {
namespace {

using nlohmann::json;
using test::hex_field;

// Loads tests/vectors/<name> and checks it cites `rfc`. Throws when the file is missing, which
// fails the calling test.
json load_rfc_vectors(const std::string& name, const std::string& rfc) {
  json file = test::load_json(test::own_vector_path(name));
  EXPECT_NE(file.at("source").get<std::string>().find(rfc), std::string::npos)
      << name << " does not cite " << rfc;
  return file;
}

// The case named `name` in `cases`, or nullptr.
const json* find_case(const json& cases, const std::string& name) {
  for (const auto& tc : cases) {
    if (tc.at("name").get<std::string>() == name) return &tc;
  }
  return nullptr;
}

std::string hex_of(const json& obj, const char* field) { return to_hex(hex_field(obj, field)); }

// --- RFC 8032 Section 7.1: Ed25519 ------------------------------------------------------------

// Derives the key pair from the 32-byte seed, reproduces the RFC's signature byte for byte,
// verifies it, and checks that it no longer verifies for a message or signature one bit away.
void expect_rfc8032_case(const std::string& name) {
  SCOPED_TRACE("RFC 8032 " + name);
  json file;
  ASSERT_NO_THROW(file = load_rfc_vectors("rfc8032_ed25519.json", "RFC 8032"));
  const json* tc = find_case(file.at("cases"), name);
  ASSERT_NE(tc, nullptr) << name << " is missing from rfc8032_ed25519.json";

  const Bytes public_key = hex_field(*tc, "public_key");
  const Bytes message = hex_field(*tc, "message");
  const Bytes signature = hex_field(*tc, "signature");

  const SigningKey key = SigningKey::parse(hex_field(*tc, "secret_key"));
  EXPECT_EQ(key.public_key().hex(), to_hex(public_key));
  EXPECT_EQ(to_hex(primitive::ed25519_sign(key, message)), to_hex(signature));
  EXPECT_TRUE(primitive::ed25519_verify(public_key, message, signature));

  Bytes other_message = message;
  if (other_message.empty()) {
    // TEST 1 signs the empty message, which has no bit to flip: use the nearest longer one.
    other_message.push_back(0x00);
  } else {
    other_message.back() ^= 0x01;
  }
  EXPECT_FALSE(primitive::ed25519_verify(public_key, other_message, signature));

  Bytes other_signature = signature;
  other_signature[0] ^= 0x01;
  EXPECT_FALSE(primitive::ed25519_verify(public_key, message, other_signature));
}

TEST(Rfc8032, VectorFileHoldsTheFiveSection71Cases) {
  json file;
  ASSERT_NO_THROW(file = load_rfc_vectors("rfc8032_ed25519.json", "RFC 8032"));
  std::multiset<std::string> names;
  for (const auto& tc : file.at("cases")) names.insert(tc.at("name").get<std::string>());
  // Each name has its own test below, so no case in the file goes unchecked.
  EXPECT_EQ(names, (std::multiset<std::string>{"TEST 1", "TEST 2", "TEST 3", "TEST 1024",
                                               "TEST SHA(abc)"}));
}

TEST(Rfc8032, Ed25519Test1) { expect_rfc8032_case("TEST 1"); }
TEST(Rfc8032, Ed25519Test2) { expect_rfc8032_case("TEST 2"); }
TEST(Rfc8032, Ed25519Test3) { expect_rfc8032_case("TEST 3"); }
TEST(Rfc8032, Ed25519Test1024) { expect_rfc8032_case("TEST 1024"); }
TEST(Rfc8032, Ed25519TestShaAbc) { expect_rfc8032_case("TEST SHA(abc)"); }

// --- RFC 7748 Sections 5.2 and 6.1: X25519 ----------------------------------------------------

// X25519(k, u) as hex, or a marker that cannot equal any expected value when libsodium refuses.
std::string x25519_hex(ByteView k, ByteView u) {
  const auto shared = primitive::x25519(k, u);
  return shared ? to_hex(shared->view()) : "(refused)";
}

void expect_rfc7748_vector(const std::string& name) {
  SCOPED_TRACE("RFC 7748 section 5.2 " + name);
  json file;
  ASSERT_NO_THROW(file = load_rfc_vectors("rfc7748_x25519.json", "RFC 7748"));
  const json* tc = find_case(file.at("scalar_multiplication").at("cases"), name);
  ASSERT_NE(tc, nullptr) << name << " is missing from rfc7748_x25519.json";
  EXPECT_EQ(x25519_hex(hex_field(*tc, "scalar"), hex_field(*tc, "u_coordinate")),
            hex_of(*tc, "output"));
}

TEST(Rfc7748, X25519Vector1) { expect_rfc7748_vector("vector 1"); }

// This vector's u-coordinate has its top bit set, which X25519 must ignore (RFC 7748 section 5).
TEST(Rfc7748, X25519Vector2IgnoresTheTopBitOfU) { expect_rfc7748_vector("vector 2"); }

TEST(Rfc7748, X25519IteratedOnceAndAThousandTimes) {
  json file;
  ASSERT_NO_THROW(file = load_rfc_vectors("rfc7748_x25519.json", "RFC 7748"));
  const json& iterated = file.at("iterated");

  // k = u = 9; then k, u = X25519(k, u), k. A wrong field reduction that one vector misses
  // shows up within a thousand rounds.
  Bytes k = hex_field(iterated, "initial");
  Bytes u = k;
  for (int i = 1; i <= 1000; ++i) {
    const auto next = primitive::x25519(k, u);
    ASSERT_TRUE(next.has_value()) << "refused at iteration " << i;
    u = k;
    k.assign(next->view().begin(), next->view().end());
    if (i == 1) {
      EXPECT_EQ(to_hex(k), hex_of(iterated, "after_1"));
    }
  }
  EXPECT_EQ(to_hex(k), hex_of(iterated, "after_1000"));
}

TEST(Rfc7748, X25519AliceAndBobReachTheSameSecret) {
  json file;
  ASSERT_NO_THROW(file = load_rfc_vectors("rfc7748_x25519.json", "RFC 7748"));
  const json& dh = file.at("diffie_hellman");
  const Bytes alice_private = hex_field(dh, "alice_private");
  const Bytes bob_private = hex_field(dh, "bob_private");

  EXPECT_EQ(to_hex(primitive::x25519_base(alice_private)), hex_of(dh, "alice_public"));
  EXPECT_EQ(to_hex(primitive::x25519_base(bob_private)), hex_of(dh, "bob_public"));
  EXPECT_EQ(x25519_hex(alice_private, hex_field(dh, "bob_public")), hex_of(dh, "shared_secret"));
  EXPECT_EQ(x25519_hex(bob_private, hex_field(dh, "alice_public")), hex_of(dh, "shared_secret"));
}

// --- RFC 7693 Appendix A: BLAKE2b -------------------------------------------------------------

TEST(Rfc7693, Blake2b512OfAbc) {
  json file;
  ASSERT_NO_THROW(file = load_rfc_vectors("rfc7693_blake2b.json", "RFC 7693"));
  const json* tc = find_case(file.at("cases"), "BLAKE2b-512(\"abc\")");
  ASSERT_NE(tc, nullptr) << "BLAKE2b-512(\"abc\") is missing from rfc7693_blake2b.json";

  const Bytes message = hex_field(*tc, "message");
  const auto out_len = tc->at("output_length").get<std::size_t>();
  ASSERT_EQ(out_len, 64u);
  EXPECT_EQ(to_hex(blake2b(message, out_len)), hex_of(*tc, "digest"));

  // The incremental API, fed in two pieces, gives the same digest.
  Blake2b incremental(out_len);
  const ByteView all(message);
  incremental.update(all.first(1)).update(all.subspan(1));
  EXPECT_EQ(to_hex(incremental.finish()), hex_of(*tc, "digest"));
}

}  // namespace
}  // namespace kith::crypto
