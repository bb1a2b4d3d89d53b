#include "kith/crypto/identity.hpp"

#include "kith/crypto/error.hpp"

namespace kith::crypto {

DeviceKeys DeviceKeys::generate() {
  return DeviceKeys{SigningKey::generate(), BoxSecretKey::generate()};
}

namespace {
// version || identity key (32) || device signing key (32) || device X25519 key (32) ||
// u64le issued_at
Bytes certificate_body(const VerifyKey& identity, const VerifyKey& device_signing,
                       const BoxPublicKey& device_encryption, std::uint64_t issued_at) {
  ByteWriter w(1 + 32 * 3 + 8 + kSignatureSize);
  w.u8(kDeviceCertificateVersion)
      .raw(identity.bytes())
      .raw(device_signing.bytes())
      .raw(device_encryption.bytes())
      .u64(issued_at);
  return std::move(w).take();
}

constexpr std::uint8_t kDeviceSecretsVersion = 1;
}  // namespace

DeviceCertificate DeviceCertificate::issue(const SigningKey& identity,
                                           const VerifyKey& device_signing,
                                           const BoxPublicKey& device_encryption,
                                           std::uint64_t issued_at) {
  Signature sig = identity.sign(
      labels::kDeviceCertificate,
      certificate_body(identity.public_key(), device_signing, device_encryption, issued_at));
  return DeviceCertificate(identity.public_key(), device_signing, device_encryption, issued_at,
                           sig);
}

DeviceCertificate DeviceCertificate::parse(ByteView bytes) {
  ByteReader r(bytes, "device certificate");
  std::uint8_t version = r.u8();
  if (version != kDeviceCertificateVersion) {
    throw KeyFormatError(ErrorCode::kUnsupportedFormat, "device certificate version " +
                                                            std::to_string(version) +
                                                            " is not supported; update the app");
  }
  VerifyKey identity = VerifyKey::parse(r.raw(32));
  VerifyKey device_signing = VerifyKey::parse(r.raw(32));
  BoxPublicKey device_encryption = BoxPublicKey::parse(r.raw(32));
  std::uint64_t issued_at = r.u64();
  Signature sig;
  ByteView s = r.raw(kSignatureSize);
  std::copy(s.begin(), s.end(), sig.begin());
  r.expect_end();
  return DeviceCertificate(identity, device_signing, device_encryption, issued_at, sig);
}

Bytes DeviceCertificate::signed_bytes() const {
  return certificate_body(identity_, device_signing_, device_encryption_, issued_at_);
}

Bytes DeviceCertificate::serialize() const {
  Bytes out = signed_bytes();
  out.insert(out.end(), signature_.begin(), signature_.end());
  return out;
}

bool DeviceCertificate::verify() const {
  return identity_.verify(labels::kDeviceCertificate, signed_bytes(), signature_);
}

SecretBytes DeviceSecrets::serialize() const {
  SecretBytes out(1 + 3 * 32);
  std::uint8_t* p = out.data();
  *p++ = kDeviceSecretsVersion;
  for (ByteView part :
       {identity.seed().view(), device.signing.seed().view(), device.encryption.secret().view()}) {
    std::copy(part.begin(), part.end(), p);
    p += part.size();
  }
  return out;
}

DeviceSecrets DeviceSecrets::parse(ByteView bytes) {
  if (bytes.size() != 1 + 3 * 32) {
    throw KeyFormatError(ErrorCode::kInvalidLength, "device secrets must be 97 bytes");
  }
  if (bytes[0] != kDeviceSecretsVersion) {
    throw KeyFormatError(
        ErrorCode::kUnsupportedFormat,
        "device secrets version " + std::to_string(bytes[0]) + " is not supported; update the app");
  }
  return DeviceSecrets{SigningKey::parse(bytes.subspan(1, 32)),
                       DeviceKeys{SigningKey::parse(bytes.subspan(33, 32)),
                                  BoxSecretKey::parse(bytes.subspan(65, 32))}};
}

}  // namespace kith::crypto
