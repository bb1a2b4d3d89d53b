#include "kith/crypto/sign.hpp"

#include <gtest/gtest.h>

#include "kith/crypto/error.hpp"
#include "support/vectors.hpp"

namespace kith::crypto {
namespace {

constexpr SignatureLabel kAllLabels[] = {labels::kDeviceCertificate, labels::kEnvelope,
                                         labels::kOpBatchHead,       labels::kMembershipEntry,
                                         labels::kAuthChallenge,     labels::kInviteJoin};

TEST(Signature, VerifiesForTheSameLabelMessageAndKey) {
  SigningKey key = SigningKey::generate();
  Bytes msg{1, 2, 3};
  Signature sig = key.sign(labels::kOpBatchHead, msg);
  EXPECT_TRUE(key.public_key().verify(labels::kOpBatchHead, msg, sig));
}

TEST(Signature, MadeForOnePurposeNeverVerifiesForAnother) {
  SigningKey key = SigningKey::generate();
  Bytes msg{9, 9, 9};
  for (SignatureLabel signed_as : kAllLabels) {
    Signature sig = key.sign(signed_as, msg);
    for (SignatureLabel checked_as : kAllLabels) {
      EXPECT_EQ(key.public_key().verify(checked_as, msg, sig), signed_as == checked_as)
          << signed_as.text() << " checked as " << checked_as.text();
    }
  }
}

TEST(Signature, LabelAndMessageBoundaryIsUnambiguous) {
  // "kith/v1/envelope" + "X..." must not collide with a longer label + shorter message.
  Bytes a = labelled_message(labels::kEnvelope, as_bytes("-x"));
  Bytes b = labelled_message(SignatureLabel("kith/v1/envelope-"), as_bytes("x"));
  EXPECT_NE(a, b);
}

TEST(Signature, RejectsWrongMessageKeyAndTamperedSignature) {
  SigningKey key = SigningKey::generate();
  SigningKey other = SigningKey::generate();
  Bytes msg(256, 0x42);
  Signature sig = key.sign(labels::kMembershipEntry, msg);

  Bytes changed = msg;
  changed[100] ^= 1;
  EXPECT_FALSE(key.public_key().verify(labels::kMembershipEntry, changed, sig));
  EXPECT_FALSE(other.public_key().verify(labels::kMembershipEntry, msg, sig));
  for (std::size_t i = 0; i < sig.size(); i += 7) {
    Signature bad = sig;
    bad[i] ^= 0x10;
    EXPECT_FALSE(key.public_key().verify(labels::kMembershipEntry, msg, bad)) << "byte " << i;
  }
}

TEST(Signature, RejectsTruncatedAndExtendedSignatures) {
  SigningKey key = SigningKey::generate();
  Bytes msg{1};
  Signature sig = key.sign(labels::kAuthChallenge, msg);
  Bytes truncated(sig.begin(), sig.end() - 1);
  Bytes extended(sig.begin(), sig.end());
  extended.push_back(0);
  EXPECT_FALSE(key.public_key().verify(labels::kAuthChallenge, msg, truncated));
  EXPECT_FALSE(key.public_key().verify(labels::kAuthChallenge, msg, extended));
  EXPECT_FALSE(key.public_key().verify(labels::kAuthChallenge, msg, Bytes{}));
}

TEST(SigningKey, FromTheSameSeedIsTheSameKey) {
  auto seed = random_secret<kSeedSize>();
  SigningKey a = SigningKey::from_seed(seed);
  SigningKey b = SigningKey::parse(seed.view());
  EXPECT_EQ(a.public_key(), b.public_key());
  EXPECT_EQ(a.sign(labels::kEnvelope, Bytes{}), b.sign(labels::kEnvelope, Bytes{}));
}

TEST(SigningKey, ParseRejectsWrongSizes) {
  EXPECT_THROW(SigningKey::parse(Bytes(31)), KeyFormatError);
  EXPECT_THROW(SigningKey::parse(Bytes(64)), KeyFormatError);
  EXPECT_THROW(VerifyKey::parse(Bytes(33)), KeyFormatError);
  EXPECT_THROW(VerifyKey::parse(Bytes{}), KeyFormatError);
}

TEST(SignatureVectors, MatchTheDocumentedLayout) {
  auto doc = test::load_json(test::own_vector_path("labelled_signatures.json"));
  ASSERT_GE(doc.at("cases").size(), 6u);
  for (const auto& c : doc.at("cases")) {
    std::string label_text = c.at("label");
    SCOPED_TRACE(label_text);
    auto it = std::find_if(std::begin(kAllLabels), std::end(kAllLabels),
                           [&](SignatureLabel l) { return l.text() == label_text; });
    ASSERT_NE(it, std::end(kAllLabels)) << "vector uses a label the code does not define";
    SigningKey key = SigningKey::parse(test::hex_field(c, "seed"));
    Bytes msg = test::hex_field(c, "message");
    EXPECT_EQ(to_hex(key.public_key().bytes()), c.at("public_key"));
    EXPECT_EQ(to_hex(labelled_message(*it, msg)), c.at("signed_bytes"));
    Signature sig = key.sign(*it, msg);
    EXPECT_EQ(to_hex(sig), c.at("signature"));
    EXPECT_TRUE(key.public_key().verify(*it, msg, test::hex_field(c, "signature")));
  }
}

}  // namespace
}  // namespace kith::crypto
