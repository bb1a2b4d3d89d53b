// A device's section keys for one plan, per epoch, received as envelopes.
//
// An envelope is accepted only if a device of an account that manages the section (the owner or
// a `manage` member, per the membership log) signed it, for this plan, section and epoch, to this
// device's encryption key (crypto::Envelope checks the signature, recipient and context). So a
// server cannot hand a device a key of its own. Not thread-safe; copyable.
#pragma once

#include <cstdint>
#include <map>
#include <optional>

#include "kith/crypto/envelope.hpp"
#include "kith/sync/membership.hpp"

namespace kith::sync {

// "kith/v1/section-key" || plan (16) || u8(len(section)) || section || u64(epoch)
Bytes section_key_context(const PlanId& plan, const Section& section, std::uint64_t epoch);

// The (section, epoch) a section-key context names for `plan`; nullopt for any other context.
std::optional<std::pair<Section, std::uint64_t>> parse_section_key_context(ByteView context,
                                                                           const PlanId& plan);

class KeyRing {
 public:
  explicit KeyRing(PlanId plan) : plan_(plan) {}

  void add(const Section& section, std::uint64_t epoch, const crypto::SectionKey& key);
  const crypto::SectionKey* find(const Section& section, std::uint64_t epoch) const;
  // The newest epoch held for a section, or nullopt.
  std::optional<std::uint64_t> newest_epoch(const Section& section) const;

  // Makes an envelope carrying this ring's key for (section, epoch) to `recipient`.
  crypto::Envelope wrap(const Section& section, std::uint64_t epoch,
                        const crypto::BoxPublicKey& recipient,
                        const crypto::SigningKey& granter_device) const;
  // Opens and keeps the key in `envelope`, as it arrives from the server: the section and epoch
  // come from its context, and the signer must be a device of an account that manages that
  // section in `log`. Returns what was accepted. Throws SyncError: kMalformed (not a section-key
  // envelope of this plan), kBadSignature (no manager's device signed it, or it is not for this
  // device).
  std::pair<Section, std::uint64_t> accept(const crypto::Envelope& envelope,
                                           const MembershipLog& log,
                                           const crypto::BoxSecretKey& me);
  // As accept, for a recovery envelope: sealed to `recovery_box` (the account's recovery box
  // key) and signed by a device of `account` itself, which held the key. Throws as accept.
  std::pair<Section, std::uint64_t> accept_recovery(const crypto::Envelope& envelope,
                                                    const MembershipLog& log,
                                                    const crypto::BoxSecretKey& recovery_box,
                                                    const AccountId& account);

  std::size_t size() const noexcept { return keys_.size(); }
  const std::map<std::pair<Section, std::uint64_t>, crypto::SectionKey>& keys() const {
    return keys_;
  }

 private:
  PlanId plan_;
  std::map<std::pair<Section, std::uint64_t>, crypto::SectionKey> keys_;
};

}  // namespace kith::sync
