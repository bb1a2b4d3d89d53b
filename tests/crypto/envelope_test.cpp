#include "kith/crypto/envelope.hpp"

#include <gtest/gtest.h>

#include "kith/crypto/error.hpp"
#include "support/vectors.hpp"

namespace kith::crypto {
namespace {

class EnvelopeTest : public ::testing::Test {
 protected:
  SigningKey granter = SigningKey::generate();
  BoxSecretKey member_device = BoxSecretKey::generate();
  SectionKey key = SectionKey::generate();
  Bytes context = Bytes{'p', '1', '/', 'h', 'e', 'a', 'l', 't', 'h', '/', '3'};
  Envelope env = Envelope::create(key, context, member_device.public_key(), granter);
};

TEST_F(EnvelopeTest, RecipientOpensTheSectionKey) {
  auto opened = env.open(member_device, granter.public_key(), context);
  ASSERT_TRUE(opened.has_value());
  EXPECT_TRUE(*opened == key);
}

TEST_F(EnvelopeTest, SurvivesSerialisation) {
  Envelope parsed = Envelope::parse(env.serialize());
  EXPECT_EQ(parsed.serialize(), env.serialize());
  auto opened = parsed.open(member_device, granter.public_key(), context);
  ASSERT_TRUE(opened.has_value());
  EXPECT_TRUE(*opened == key);
}

TEST_F(EnvelopeTest, RefusedFromAnyoneButTheExpectedGranter) {
  SigningKey server_key = SigningKey::generate();
  EXPECT_FALSE(env.open(member_device, server_key.public_key(), context).has_value());
}

TEST_F(EnvelopeTest, RefusedForAnotherContext) {
  // An envelope for epoch 3 of health cannot be replayed as the key of another section/epoch.
  Bytes other = context;
  other.back() = '4';
  EXPECT_FALSE(env.open(member_device, granter.public_key(), other).has_value());
}

TEST_F(EnvelopeTest, RefusedByADeviceItWasNotAddressedTo) {
  BoxSecretKey other_device = BoxSecretKey::generate();
  EXPECT_FALSE(env.open(other_device, granter.public_key(), context).has_value());
}

TEST_F(EnvelopeTest, ServerCannotSubstituteAKeyOfItsOwn) {
  // A malicious server seals its own key to the member and keeps the granter's signature.
  SectionKey server_key = SectionKey::generate();
  Bytes forged_sealed = seal_to(member_device.public_key(), server_key.secret().view());
  Bytes bytes = env.serialize();
  std::size_t sealed_at = bytes.size() - kSignatureSize - kEnvelopeSealedSize;
  std::copy(forged_sealed.begin(), forged_sealed.end(),
            bytes.begin() + static_cast<long>(sealed_at));
  Envelope forged = Envelope::parse(bytes);
  EXPECT_FALSE(forged.verify(granter.public_key()));
  EXPECT_FALSE(forged.open(member_device, granter.public_key(), context).has_value());
}

TEST_F(EnvelopeTest, AnyChangedByteIsRefused) {
  Bytes bytes = env.serialize();
  for (std::size_t i = 1; i < bytes.size(); ++i) {  // byte 0 is the version: see below
    Bytes bad = bytes;
    bad[i] ^= 0x04;
    try {
      Envelope e = Envelope::parse(bad);
      EXPECT_FALSE(e.open(member_device, granter.public_key(), context).has_value())
          << "byte " << i;
    } catch (const KeyFormatError&) {
      // A changed length field makes it unparseable: refused too.
    }
  }
}

TEST_F(EnvelopeTest, ParseRejectsMalformedInput) {
  Bytes bytes = env.serialize();
  EXPECT_THROW(Envelope::parse(Bytes{}), KeyFormatError);
  EXPECT_THROW(Envelope::parse(ByteView(bytes).first(bytes.size() - 1)), KeyFormatError);
  Bytes extended = bytes;
  extended.push_back(0);
  EXPECT_THROW(Envelope::parse(extended), KeyFormatError);
  Bytes future = bytes;
  future[0] = 2;
  try {
    Envelope::parse(future);
    FAIL();
  } catch (const KeyFormatError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupportedFormat);
  }
  Bytes huge_context = bytes;
  huge_context[1] = 0xff;
  huge_context[2] = 0xff;
  EXPECT_THROW(Envelope::parse(huge_context), KeyFormatError);
}

TEST(Envelope, CreateRejectsOversizedContext) {
  EXPECT_THROW(Envelope::create(SectionKey::generate(), Bytes(kMaxEnvelopeContext + 1),
                                BoxSecretKey::generate().public_key(), SigningKey::generate()),
               KeyFormatError);
}

TEST(EnvelopeVectors, OpenAndMatchTheDocumentedLayout) {
  auto doc = test::load_json(test::own_vector_path("envelopes.json"));
  ASSERT_GE(doc.at("cases").size(), 3u);
  for (const auto& c : doc.at("cases")) {
    SigningKey sender = SigningKey::parse(test::hex_field(c, "sender_seed"));
    EXPECT_EQ(sender.public_key().hex(), c.at("sender_public_key"));
    BoxSecretKey recipient = BoxSecretKey::parse(test::hex_field(c, "recipient_secret_key"));
    EXPECT_EQ(recipient.public_key().hex(), c.at("recipient_public_key"));
    Bytes context = test::hex_field(c, "context");

    Envelope env = Envelope::parse(test::hex_field(c, "envelope"));
    EXPECT_EQ(to_hex(env.signed_bytes()), c.at("signed_bytes"));
    EXPECT_EQ(to_hex(env.serialize()), c.at("envelope"));
    EXPECT_TRUE(env.verify(sender.public_key()));
    auto opened = env.open(recipient, sender.public_key(), context);
    ASSERT_TRUE(opened.has_value());
    EXPECT_EQ(to_hex(opened->secret().view()), c.at("section_key"));

    // A freshly made envelope differs (new ephemeral key) but has the same layout.
    Envelope fresh = Envelope::create(*opened, context, recipient.public_key(), sender);
    EXPECT_EQ(fresh.serialize().size(), env.serialize().size());
    EXPECT_TRUE(fresh.open(recipient, sender.public_key(), context).has_value());
  }
}

}  // namespace
}  // namespace kith::crypto
