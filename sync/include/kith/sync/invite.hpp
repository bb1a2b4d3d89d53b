// Invite codes: what an owner (or a `manage` member) hands to the person they invite, on paper,
// by message or as a QR code (docs/PROTOCOL.md, "Invitations").
//
// A code names the plan and carries a 16-byte random secret. Everything else is derived from
// the secret, so nothing else has to travel with it:
//   invite id       = BLAKE2b-128(key = secret, "kith/v1/invite-id")
//   invite key      = Ed25519 from the seed BLAKE2b-256(key = secret, "kith/v1/invite-key")
//   invite box key  = X25519 from BLAKE2b-256(key = secret, "kith/v1/invite-box")
// The invite's membership entry publishes the id and the public invite key; the section keys for
// the invitee are sealed to the public box key. The server therefore holds only one-way images
// of the secret: enough to check a proof of it, not enough to make one.
//
// The text is "KITH-" and 58 characters of Crockford's base32 (case-insensitive; O, I and L
// read as 0, 1, 1; hyphens and spaces ignored) in groups of 5, encoding
// version (1) || plan (16) || secret (16) || check (3), where check is the first 3 bytes of
// BLAKE2b-256("kith/v1/invite-code" || the 33 bytes before it). A mistyped, cut or altered code
// is caught by the check before anything is sent.
//
// Values; thread-safe as values are.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "kith/crypto/box.hpp"
#include "kith/crypto/secret.hpp"
#include "kith/crypto/sign.hpp"
#include "kith/sync/ids.hpp"

namespace kith::sync {

inline constexpr std::size_t kInviteSecretSize = 16;

class InviteCode {
 public:
  // A new code for `plan` with a fresh random secret.
  static InviteCode create(const PlanId& plan);
  // Throws SyncError(kInviteCode) with a sentence saying what is wrong.
  static InviteCode parse(std::string_view text);

  // The code to hand over. Treat it as the secret it is: anyone holding it can join.
  std::string text() const;
  const PlanId& plan() const noexcept { return plan_; }
  OpId invite_id() const;
  crypto::SigningKey signing_key() const;
  crypto::BoxSecretKey box_key() const;

 private:
  InviteCode(const PlanId& plan, const crypto::SecretArray<kInviteSecretSize>& secret)
      : plan_(plan), secret_(secret) {}
  PlanId plan_;
  crypto::SecretArray<kInviteSecretSize> secret_;
};

// What RedeemInvite.proof signs (label kith/v1/invite-redeem):
// plan (16) || invite id (16) || device id (32) || invite box key (32).
Bytes invite_redeem_message(const PlanId& plan, const OpId& invite, const DeviceId& device,
                            const crypto::BoxPublicKey& box_key);

}  // namespace kith::sync
