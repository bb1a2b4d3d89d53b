// The recovery key: a secret the owner writes down, from which their identity key is derived,
// so that a lost phone does not mean a lost plan.
//
// 128 random bits and a 12-bit checksum, written as 7 groups of 5 characters from Crockford's
// base32 alphabet (no I, L, O, U; case-insensitive; O, I and L read as 0, 1, 1), e.g.
// "3KQ7M-0ZC2B-...". Each group is 4 data characters and 1 check character computed over
// GF(32) with the group's position, so any single wrong character or two swapped characters in
// a group, and any group written in the wrong place, are caught and the group is named. The
// checksum over the whole key catches what remains. Layout: docs/PROTOCOL.md, "Recovery key".
#pragma once

#include <string>
#include <string_view>

#include "kith/crypto/box.hpp"
#include "kith/crypto/secret.hpp"
#include "kith/crypto/sign.hpp"

namespace kith::crypto {

inline constexpr std::size_t kRecoverySecretSize = 16;
inline constexpr int kRecoveryGroups = 7;

class RecoveryKey {
 public:
  static RecoveryKey generate();
  static RecoveryKey from_secret(const SecretArray<kRecoverySecretSize>& secret) {
    return RecoveryKey(secret);
  }
  // Accepts any case, spaces or hyphens between groups. Throws RecoveryKeyError naming the
  // group to check (kRecoveryKeyTypo), or kRecoveryKeyFormat / kRecoveryKeyChecksum.
  static RecoveryKey parse(std::string_view text);

  // The text to show the owner once, to write down. Treat it as the secret it is.
  std::string text() const;
  const SecretArray<kRecoverySecretSize>& secret() const noexcept { return secret_; }
  // The account identity key this recovery key restores.
  SigningKey identity_key() const;

 private:
  explicit RecoveryKey(const SecretArray<kRecoverySecretSize>& secret) : secret_(secret) {}
  SecretArray<kRecoverySecretSize> secret_;
};

// The account's recovery box: an X25519 key derived from the identity key's seed (keyed
// BLAKE2b-256, label "kith/v1/recovery-box"), so every device of the account has it and so does
// a device restored from the recovery key. Devices seal the section keys they hold to its public
// half ("recovery envelopes"), so that someone who loses every device gets their plans' history
// back with the recovery key alone. Layout: docs/PROTOCOL.md, "Recovery envelopes".
BoxSecretKey recovery_box_key(const SigningKey& identity);
// The identity key's signature (label kith/v1/recovery-box) over identity public key (32) ||
// box public key (32): the proof a server checks before it stores or hands out envelopes sealed
// to `box` for that account.
Signature sign_recovery_box(const SigningKey& identity, const BoxPublicKey& box);
[[nodiscard]] bool verify_recovery_box(const VerifyKey& identity, const BoxPublicKey& box,
                                       ByteView signature);

}  // namespace kith::crypto
