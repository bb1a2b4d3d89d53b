// Project Wycheproof known-answer tests for the libsodium primitives Kith links against.
//
// Every case of each file is checked, and each test ends by comparing the number of cases it
// checked with the file's `numberOfTests`, so a file that is missing, renamed, truncated or
// restructured fails the test instead of passing with nothing checked.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>

#include "kith/crypto/bytes.hpp"
#include "kith/crypto/error.hpp"
#include "kith/crypto/primitives.hpp"
#include "support/vectors.hpp"

namespace kith::crypto {
namespace {

using nlohmann::json;
using test::hex_field;

json load_wycheproof(const std::string& name) {
  return test::load_json(test::shared_vector_path("wycheproof/" + name));
}

// Names a case in every failure message inside the loop body.
std::string describe(const json& tc) {
  std::string text = "tcId " + std::to_string(tc.at("tcId").get<int>()) + ", " +
                     tc.at("result").get<std::string>() + ", flags";
  for (const auto& flag : tc.at("flags")) text += " " + flag.get<std::string>();
  return text + ": " + tc.at("comment").get<std::string>();
}

bool has_flag(const json& tc, const std::string& flag) {
  const auto& flags = tc.at("flags");
  return std::find(flags.begin(), flags.end(), flag) != flags.end();
}

bool all_zero(ByteView bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b == 0; });
}

Bytes concat(ByteView a, ByteView b) {
  Bytes out(a.begin(), a.end());
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

TEST(Wycheproof, Ed25519VerdictsAgree) {
  json file;
  ASSERT_NO_THROW(file = load_wycheproof("ed25519_test.json"));
  ASSERT_EQ(file.at("algorithm").get<std::string>(), "EDDSA");
  const auto expected_total = file.at("numberOfTests").get<std::size_t>();
  ASSERT_GT(expected_total, 0u);

  std::size_t checked = 0, valid = 0, invalid = 0;
  for (const auto& group : file.at("testGroups")) {
    ASSERT_EQ(group.at("type").get<std::string>(), "EddsaVerify");
    ASSERT_EQ(group.at("publicKey").at("curve").get<std::string>(), "edwards25519");
    const Bytes public_key = hex_field(group.at("publicKey"), "pk");
    for (const auto& tc : group.at("tests")) {
      SCOPED_TRACE(describe(tc));
      const auto result = tc.at("result").get<std::string>();
      const bool verified =
          primitive::ed25519_verify(public_key, hex_field(tc, "msg"), hex_field(tc, "sig"));
      if (result == "valid") {
        EXPECT_TRUE(verified) << "a valid signature did not verify";
        ++valid;
      } else if (result == "invalid") {
        EXPECT_FALSE(verified) << "an invalid signature verified";
        ++invalid;
      } else {
        // The file has no "acceptable" Ed25519 cases; a new verdict needs a decision here.
        ADD_FAILURE() << "unexpected result \"" << result << "\"";
      }
      ++checked;
    }
  }
  RecordProperty("cases_checked", static_cast<int>(checked));
  RecordProperty("valid", static_cast<int>(valid));
  RecordProperty("invalid", static_cast<int>(invalid));
  EXPECT_EQ(checked, expected_total);
  EXPECT_EQ(valid + invalid, checked);
}

TEST(Wycheproof, X25519SharedSecretsAgree) {
  json file;
  ASSERT_NO_THROW(file = load_wycheproof("x25519_test.json"));
  ASSERT_EQ(file.at("algorithm").get<std::string>(), "XDH");
  const auto expected_total = file.at("numberOfTests").get<std::size_t>();
  ASSERT_GT(expected_total, 0u);

  std::size_t checked = 0, refused = 0, zero_shared = 0;
  for (const auto& group : file.at("testGroups")) {
    ASSERT_EQ(group.at("type").get<std::string>(), "XdhComp");
    ASSERT_EQ(group.at("curve").get<std::string>(), "curve25519");
    for (const auto& tc : group.at("tests")) {
      SCOPED_TRACE(describe(tc));
      const auto result = tc.at("result").get<std::string>();
      const Bytes expected = hex_field(tc, "shared");
      const bool expects_zero = all_zero(expected);
      if (expects_zero) ++zero_shared;

      std::optional<SecretArray<32>> shared;
      try {
        shared = primitive::x25519(hex_field(tc, "private"), hex_field(tc, "public"));
      } catch (const KeyFormatError& e) {
        ADD_FAILURE() << "threw KeyFormatError: " << e.what();
        ++checked;
        continue;
      }

      if (!shared) {
        ++refused;
        // libsodium refuses exactly the points whose shared secret is all zeros (low-order
        // points); such a case is at most "acceptable", never "valid".
        EXPECT_EQ(result, "acceptable") << "a valid case was refused";
        EXPECT_TRUE(expects_zero) << "refused although the expected shared secret is "
                                  << to_hex(expected);
      } else {
        EXPECT_TRUE(result == "valid" || result == "acceptable")
            << "unexpected result \"" << result << "\"";
        EXPECT_EQ(to_hex(shared->view()), to_hex(expected));
        // Kith relies on never receiving an all-zero secret (primitives.hpp).
        EXPECT_FALSE(expects_zero) << "an all-zero shared secret was returned, not refused";
      }
      ++checked;
    }
  }
  RecordProperty("cases_checked", static_cast<int>(checked));
  RecordProperty("acceptable_refused", static_cast<int>(refused));
  EXPECT_EQ(checked, expected_total);
  // Every refusal is an all-zero case, and every all-zero case was refused.
  EXPECT_EQ(refused, zero_shared);
  EXPECT_GT(refused, 0u) << "the file's low-order public keys should be refused";
}

TEST(Wycheproof, XChaCha20Poly1305VerdictsAgree) {
  json file;
  ASSERT_NO_THROW(file = load_wycheproof("xchacha20_poly1305_test.json"));
  ASSERT_EQ(file.at("algorithm").get<std::string>(), "XCHACHA20-POLY1305");
  const auto expected_total = file.at("numberOfTests").get<std::size_t>();
  ASSERT_GT(expected_total, 0u);

  std::size_t checked = 0, nonce_size_rejections = 0, invalid_nonce_size_cases = 0;
  for (const auto& group : file.at("testGroups")) {
    ASSERT_EQ(group.at("type").get<std::string>(), "AeadTest");
    for (const auto& tc : group.at("tests")) {
      SCOPED_TRACE(describe(tc));
      const auto result = tc.at("result").get<std::string>();
      const Bytes key = hex_field(tc, "key");
      const Bytes nonce = hex_field(tc, "iv");
      const Bytes ad = hex_field(tc, "aad");
      const Bytes msg = hex_field(tc, "msg");
      const Bytes ct_and_tag = concat(hex_field(tc, "ct"), hex_field(tc, "tag"));
      if (has_flag(tc, "InvalidNonceSize")) ++invalid_nonce_size_cases;

      if (nonce.size() != primitive::kXChaChaNonceSize) {
        // Our wrapper rejects a wrong nonce length up front with KeyFormatError rather than
        // returning "does not open": that is a correct rejection of these cases.
        EXPECT_EQ(result, "invalid");
        EXPECT_TRUE(has_flag(tc, "InvalidNonceSize"));
        EXPECT_THROW(primitive::xchacha20poly1305_decrypt(key, nonce, ad, ct_and_tag),
                     KeyFormatError);
        EXPECT_THROW(primitive::xchacha20poly1305_encrypt(key, nonce, ad, msg), KeyFormatError);
        ++nonce_size_rejections;
        ++checked;
        continue;
      }

      try {
        const auto opened = primitive::xchacha20poly1305_decrypt(key, nonce, ad, ct_and_tag);
        if (result == "valid") {
          EXPECT_EQ(to_hex(primitive::xchacha20poly1305_encrypt(key, nonce, ad, msg)),
                    to_hex(ct_and_tag));
          EXPECT_TRUE(opened.has_value()) << "a valid ciphertext did not decrypt";
          if (opened) {
            EXPECT_EQ(to_hex(opened->view()), to_hex(msg));
          }
        } else if (result == "invalid") {
          EXPECT_FALSE(opened.has_value()) << "an invalid ciphertext decrypted";
        } else {
          // The file has no "acceptable" cases; a new verdict needs a decision here.
          ADD_FAILURE() << "unexpected result \"" << result << "\"";
        }
      } catch (const KeyFormatError& e) {
        ADD_FAILURE() << "threw KeyFormatError: " << e.what();
      }
      ++checked;
    }
  }
  RecordProperty("cases_checked", static_cast<int>(checked));
  RecordProperty("nonce_size_rejections", static_cast<int>(nonce_size_rejections));
  EXPECT_EQ(checked, expected_total);
  EXPECT_EQ(nonce_size_rejections, invalid_nonce_size_cases);
}

}  // namespace
}  // namespace kith::crypto
