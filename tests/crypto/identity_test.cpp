#include "kith/crypto/identity.hpp"

#include <gtest/gtest.h>

#include "kith/crypto/error.hpp"
#include "support/vectors.hpp"

namespace kith::crypto {
namespace {

TEST(DeviceKeys, SigningAndEncryptionKeysAreIndependent) {
  DeviceKeys d = DeviceKeys::generate();
  // The X25519 key is generated on its own, not converted from the Ed25519 key.
  EXPECT_FALSE(constant_time_equal(d.signing.seed().view(), d.encryption.secret().view()));
  EXPECT_NE(to_hex(d.signing.public_key().bytes()), to_hex(d.encryption.public_key().bytes()));
}

TEST(DeviceCertificate, IdentityVouchesForBothDeviceKeys) {
  SigningKey identity = SigningKey::generate();
  DeviceKeys device = DeviceKeys::generate();
  auto cert = DeviceCertificate::issue(identity, device.signing.public_key(),
                                       device.encryption.public_key(), 1795305600);
  EXPECT_TRUE(cert.verify());
  EXPECT_EQ(cert.identity(), identity.public_key());
  EXPECT_EQ(cert.device_signing(), device.signing.public_key());
  EXPECT_EQ(cert.device_encryption(), device.encryption.public_key());

  auto parsed = DeviceCertificate::parse(cert.serialize());
  EXPECT_TRUE(parsed.verify());
  EXPECT_EQ(parsed.serialize(), cert.serialize());
}

TEST(DeviceCertificate, AnyChangedByteFailsVerification) {
  SigningKey identity = SigningKey::generate();
  DeviceKeys device = DeviceKeys::generate();
  Bytes bytes = DeviceCertificate::issue(identity, device.signing.public_key(),
                                         device.encryption.public_key(), 42)
                    .serialize();
  for (std::size_t i = 1; i < bytes.size(); ++i) {
    Bytes bad = bytes;
    bad[i] ^= 0x20;
    EXPECT_FALSE(DeviceCertificate::parse(bad).verify()) << "byte " << i;
  }
}

TEST(DeviceCertificate, SignatureForAnotherPurposeDoesNotCertify) {
  // Take the body of a real certificate and sign it as an envelope: it must not verify.
  SigningKey identity = SigningKey::generate();
  DeviceKeys device = DeviceKeys::generate();
  auto cert = DeviceCertificate::issue(identity, device.signing.public_key(),
                                       device.encryption.public_key(), 7);
  Bytes bytes = cert.signed_bytes();
  Signature wrong = identity.sign(labels::kEnvelope, bytes);
  bytes.insert(bytes.end(), wrong.begin(), wrong.end());
  EXPECT_FALSE(DeviceCertificate::parse(bytes).verify());
}

TEST(DeviceCertificate, ParseRejectsMalformedInput) {
  EXPECT_THROW(DeviceCertificate::parse(Bytes{}), KeyFormatError);
  EXPECT_THROW(DeviceCertificate::parse(Bytes(1 + 96 + 8 + 63, 1)), KeyFormatError);
  Bytes future(1 + 96 + 8 + 64, 0);
  future[0] = 9;
  try {
    DeviceCertificate::parse(future);
    FAIL();
  } catch (const KeyFormatError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnsupportedFormat);
  }
}

TEST(DeviceSecrets, RoundTripAndRejectMalformed) {
  DeviceSecrets s{SigningKey::generate(), DeviceKeys::generate()};
  SecretBytes bytes = s.serialize();
  DeviceSecrets back = DeviceSecrets::parse(bytes.view());
  EXPECT_EQ(back.identity.public_key(), s.identity.public_key());
  EXPECT_EQ(back.device.signing.public_key(), s.device.signing.public_key());
  EXPECT_EQ(back.device.encryption.public_key(), s.device.encryption.public_key());
  EXPECT_THROW(DeviceSecrets::parse(bytes.view().first(96)), KeyFormatError);
  SecretBytes future(bytes.view());
  future.data()[0] = 2;
  EXPECT_THROW(DeviceSecrets::parse(future.view()), KeyFormatError);
}

TEST(DeviceCertificateVectors, MatchTheDocumentedLayout) {
  auto doc = test::load_json(test::own_vector_path("device_certificates.json"));
  ASSERT_GE(doc.at("cases").size(), 3u);
  for (const auto& c : doc.at("cases")) {
    SigningKey identity = SigningKey::parse(test::hex_field(c, "identity_seed"));
    SigningKey device_signing = SigningKey::parse(test::hex_field(c, "device_signing_seed"));
    BoxSecretKey device_box = BoxSecretKey::parse(test::hex_field(c, "device_encryption_secret"));
    EXPECT_EQ(identity.public_key().hex(), c.at("identity_public_key"));
    EXPECT_EQ(device_signing.public_key().hex(), c.at("device_signing_public_key"));
    EXPECT_EQ(device_box.public_key().hex(), c.at("device_encryption_public_key"));

    auto cert = DeviceCertificate::issue(identity, device_signing.public_key(),
                                         device_box.public_key(), c.at("issued_at"));
    EXPECT_EQ(to_hex(cert.serialize()), c.at("certificate"));
    EXPECT_TRUE(DeviceCertificate::parse(test::hex_field(c, "certificate")).verify());

    DeviceSecrets secrets{identity, DeviceKeys{device_signing, device_box}};
    EXPECT_EQ(to_hex(secrets.serialize().view()), c.at("device_secrets"));
  }
}

}  // namespace
}  // namespace kith::crypto
