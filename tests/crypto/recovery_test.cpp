#include "kith/crypto/recovery.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>

#include "kith/crypto/error.hpp"
#include "support/vectors.hpp"

namespace kith::crypto {
namespace {

constexpr std::string_view kAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

// Parses and returns the error, or fails the test if `text` parsed.
RecoveryKeyError parse_error(const std::string& text) {
  try {
    RecoveryKey::parse(text);
  } catch (const RecoveryKeyError& e) {
    return e;
  }
  ADD_FAILURE() << "parsed: " << text;
  return RecoveryKeyError(ErrorCode::kInitFailed, "");
}

TEST(RecoveryKey, TextIsSevenGroupsOfFive) {
  std::string text = RecoveryKey::generate().text();
  ASSERT_EQ(text.size(), 7u * 5 + 6);
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (i % 6 == 5) {
      EXPECT_EQ(text[i], '-');
    } else {
      EXPECT_NE(kAlphabet.find(text[i]), std::string_view::npos) << text;
    }
  }
}

TEST(RecoveryKey, RestoresTheSameIdentity) {
  for (int i = 0; i < 50; ++i) {
    RecoveryKey key = RecoveryKey::generate();
    RecoveryKey back = RecoveryKey::parse(key.text());
    EXPECT_TRUE(back.secret() == key.secret());
    EXPECT_EQ(back.identity_key().public_key(), key.identity_key().public_key());
  }
}

TEST(RecoveryKey, AcceptsWhatPeopleWriteDown) {
  RecoveryKey key = RecoveryKey::generate();
  std::string text = key.text();
  std::string lower = text;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::string spaced = text;
  std::replace(spaced.begin(), spaced.end(), '-', ' ');
  std::string joined = text;
  joined.erase(std::remove(joined.begin(), joined.end(), '-'), joined.end());
  std::string lines = text;
  std::replace(lines.begin(), lines.end(), '-', '\n');
  // O for 0, I and L for 1: letters a person may read into the digits.
  std::string confusable = text;
  for (char& c : confusable) {
    if (c == '0')
      c = 'O';
    else if (c == '1')
      c = 'l';
  }
  for (const std::string& t : {lower, spaced, joined, lines, "  " + text + "\n", confusable}) {
    EXPECT_TRUE(RecoveryKey::parse(t).secret() == key.secret()) << t;
  }
}

TEST(RecoveryKey, EverySingleMistypedCharacterIsCaughtInItsGroup) {
  RecoveryKey key = RecoveryKey::generate();
  std::string text = key.text();
  for (std::size_t pos = 0; pos < text.size(); ++pos) {
    if (text[pos] == '-') continue;
    int group = static_cast<int>(pos / 6) + 1;
    for (char c : kAlphabet) {
      if (c == text[pos]) continue;
      std::string bad = text;
      bad[pos] = c;
      RecoveryKeyError e = parse_error(bad);
      EXPECT_EQ(e.code(), ErrorCode::kRecoveryKeyTypo) << bad;
      EXPECT_EQ(e.group(), group) << bad;
    }
  }
}

TEST(RecoveryKey, SwappedCharactersInAGroupAreCaught) {
  RecoveryKey key = RecoveryKey::generate();
  std::string text = key.text();
  for (std::size_t pos = 0; pos < text.size(); ++pos) {
    for (std::size_t other = pos + 1; other < text.size() && other / 6 == pos / 6; ++other) {
      if (text[pos] == '-' || text[other] == '-' || text[pos] == text[other]) continue;
      std::string bad = text;
      std::swap(bad[pos], bad[other]);
      RecoveryKeyError e = parse_error(bad);
      EXPECT_EQ(e.code(), ErrorCode::kRecoveryKeyTypo) << bad;
      EXPECT_EQ(e.group(), static_cast<int>(pos / 6) + 1) << bad;
    }
  }
}

TEST(RecoveryKey, GroupsWrittenInTheWrongOrderAreCaught) {
  std::string text = RecoveryKey::generate().text();
  for (int a = 0; a < kRecoveryGroups; ++a) {
    for (int b = a + 1; b < kRecoveryGroups; ++b) {
      std::string bad = text;
      std::swap_ranges(bad.begin() + a * 6, bad.begin() + a * 6 + 5, bad.begin() + b * 6);
      if (bad == text) continue;
      RecoveryKeyError e = parse_error(bad);
      EXPECT_EQ(e.code(), ErrorCode::kRecoveryKeyTypo) << bad;
      EXPECT_EQ(e.group(), a + 1) << bad;
    }
  }
}

TEST(RecoveryKey, WrongShapesAreFormatErrors) {
  std::string text = RecoveryKey::generate().text();
  EXPECT_EQ(parse_error("").code(), ErrorCode::kRecoveryKeyFormat);
  EXPECT_EQ(parse_error(text.substr(0, 35)).code(), ErrorCode::kRecoveryKeyFormat);
  EXPECT_EQ(parse_error(text + "-ABCDE").code(), ErrorCode::kRecoveryKeyFormat);
  std::string with_u = text;
  with_u[0] = 'U';
  RecoveryKeyError e = parse_error(with_u);
  EXPECT_EQ(e.code(), ErrorCode::kRecoveryKeyFormat);
  EXPECT_NE(std::string(e.what()).find("'U'"), std::string::npos);
  std::string short_group = text;
  short_group.erase(13, 1);  // group 3 loses a character
  e = parse_error(short_group);
  EXPECT_EQ(e.code(), ErrorCode::kRecoveryKeyFormat);
  EXPECT_EQ(e.group(), 3);
}

TEST(RecoveryBox, EveryDeviceOfTheAccountDerivesTheSameKey) {
  RecoveryKey key = RecoveryKey::generate();
  // A device made at `init` and one restored from the written-down key hold the same identity.
  SigningKey first = key.identity_key();
  SigningKey restored = RecoveryKey::parse(key.text()).identity_key();
  EXPECT_EQ(recovery_box_key(first).public_key(), recovery_box_key(restored).public_key());
  EXPECT_FALSE(recovery_box_key(first).public_key() ==
               recovery_box_key(RecoveryKey::generate().identity_key()).public_key());
}

TEST(RecoveryBox, TheProofBindsTheBoxToTheAccount) {
  SigningKey identity = RecoveryKey::generate().identity_key();
  SigningKey other = RecoveryKey::generate().identity_key();
  BoxPublicKey box = recovery_box_key(identity).public_key();
  Signature proof = sign_recovery_box(identity, box);
  ByteView sig(proof.data(), proof.size());
  EXPECT_TRUE(verify_recovery_box(identity.public_key(), box, sig));
  // Another account's identity, another box, a changed byte or a short signature: refused.
  EXPECT_FALSE(verify_recovery_box(other.public_key(), box, sig));
  EXPECT_FALSE(verify_recovery_box(identity.public_key(), recovery_box_key(other).public_key(), sig));
  Signature bent = proof;
  bent[10] ^= 1;
  EXPECT_FALSE(verify_recovery_box(identity.public_key(), box, ByteView(bent.data(), bent.size())));
  EXPECT_FALSE(verify_recovery_box(identity.public_key(), box, sig.first(63)));
  // Signed under another label (an op head, say), the same bytes are no proof.
  Bytes statement(identity.public_key().bytes().begin(), identity.public_key().bytes().end());
  statement.insert(statement.end(), box.bytes().begin(), box.bytes().end());
  Signature wrong_label = identity.sign(labels::kOpBatchHead, statement);
  EXPECT_FALSE(verify_recovery_box(identity.public_key(), box,
                                   ByteView(wrong_label.data(), wrong_label.size())));
}

TEST(RecoveryKeyVectors, MatchTheDocumentedEncoding) {
  auto doc = test::load_json(test::own_vector_path("recovery_keys.json"));
  ASSERT_GE(doc.at("cases").size(), 4u);
  for (const auto& c : doc.at("cases")) {
    auto secret = secret_from<kRecoverySecretSize>(test::hex_field(c, "secret"), "secret");
    RecoveryKey key = RecoveryKey::from_secret(secret);
    EXPECT_EQ(key.text(), c.at("text"));
    EXPECT_TRUE(RecoveryKey::parse(c.at("text").get<std::string>()).secret() == secret);
    EXPECT_EQ(to_hex(key.identity_key().seed().view()), c.at("identity_seed"));
    EXPECT_EQ(key.identity_key().public_key().hex(), c.at("identity_public_key"));
    BoxSecretKey box = recovery_box_key(key.identity_key());
    EXPECT_EQ(to_hex(box.secret().view()), c.at("recovery_box_secret"));
    EXPECT_EQ(box.public_key().hex(), c.at("recovery_box_public_key"));
    // Ed25519 signatures are deterministic: the proof is byte-for-byte the documented one.
    Signature proof = sign_recovery_box(key.identity_key(), box.public_key());
    EXPECT_EQ(to_hex(ByteView(proof.data(), proof.size())), c.at("recovery_box_signature"));
  }
  ASSERT_GE(doc.at("invalid").size(), 7u);
  for (const auto& c : doc.at("invalid")) {
    RecoveryKeyError e = parse_error(c.at("text"));
    EXPECT_EQ(error_code_name(e.code()), c.at("error").get<std::string>()) << c.at("text");
    EXPECT_EQ(e.group(), c.at("group").get<int>()) << c.at("text");
  }
}

}  // namespace
}  // namespace kith::crypto
