// Account identity and device keys.
//
// An account has one Ed25519 identity key. Each of its devices has its own Ed25519 signing key
// and its own X25519 encryption key (generated separately, never converted), and a certificate
// in which the identity key vouches for both. Whoever checks a certificate must also check that
// its identity key is the account they expect (the membership log says which). Layout:
// docs/PROTOCOL.md, "Device certificates". Immutable; thread-safe.
#pragma once

#include <cstdint>

#include "kith/crypto/box.hpp"
#include "kith/crypto/bytes.hpp"
#include "kith/crypto/secret.hpp"
#include "kith/crypto/sign.hpp"

namespace kith::crypto {

inline constexpr std::uint8_t kDeviceCertificateVersion = 1;

// One device's private keys.
struct DeviceKeys {
  SigningKey signing;
  BoxSecretKey encryption;

  static DeviceKeys generate();
};

class DeviceCertificate {
 public:
  static DeviceCertificate issue(const SigningKey& identity, const VerifyKey& device_signing,
                                 const BoxPublicKey& device_encryption, std::uint64_t issued_at);
  // Throws KeyFormatError for wrong length or an unknown version.
  static DeviceCertificate parse(ByteView bytes);

  Bytes serialize() const;
  Bytes signed_bytes() const;

  const VerifyKey& identity() const noexcept { return identity_; }
  const VerifyKey& device_signing() const noexcept { return device_signing_; }
  const BoxPublicKey& device_encryption() const noexcept { return device_encryption_; }
  std::uint64_t issued_at() const noexcept { return issued_at_; }
  const Signature& signature() const noexcept { return signature_; }

  // True when the identity key in the certificate signed it.
  [[nodiscard]] bool verify() const;

 private:
  DeviceCertificate(const VerifyKey& identity, const VerifyKey& device_signing,
                    const BoxPublicKey& device_encryption, std::uint64_t issued_at,
                    const Signature& signature)
      : identity_(identity),
        device_signing_(device_signing),
        device_encryption_(device_encryption),
        issued_at_(issued_at),
        signature_(signature) {}
  VerifyKey identity_;
  VerifyKey device_signing_;
  BoxPublicKey device_encryption_;
  std::uint64_t issued_at_;
  Signature signature_;
};

// Everything secret a device keeps: the account identity key and this device's keys. This is
// what the key store seals under the passphrase.
struct DeviceSecrets {
  SigningKey identity;
  DeviceKeys device;

  // u8 version || identity seed (32) || device signing seed (32) || device X25519 secret (32)
  SecretBytes serialize() const;
  // Throws KeyFormatError for a wrong length or version.
  static DeviceSecrets parse(ByteView bytes);
};

}  // namespace kith::crypto
