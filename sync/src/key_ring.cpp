#include "kith/sync/key_ring.hpp"

#include "kith/sync/error.hpp"

namespace kith::sync {

Bytes section_key_context(const PlanId& plan, const Section& section, std::uint64_t epoch) {
  crypto::ByteWriter w(64);
  w.raw(std::string_view("kith/v1/section-key"))
      .raw(plan.bytes())
      .u8(static_cast<std::uint8_t>(section.name().size()))
      .raw(section.name())
      .u64(epoch);
  return std::move(w).take();
}

void KeyRing::add(const Section& section, std::uint64_t epoch, const crypto::SectionKey& key) {
  keys_.insert_or_assign({section, epoch}, key);
}

const crypto::SectionKey* KeyRing::find(const Section& section, std::uint64_t epoch) const {
  auto it = keys_.find({section, epoch});
  return it == keys_.end() ? nullptr : &it->second;
}

std::optional<std::uint64_t> KeyRing::newest_epoch(const Section& section) const {
  std::optional<std::uint64_t> out;
  for (const auto& [key, value] : keys_) {
    if (key.first == section) out = key.second;
  }
  return out;
}

crypto::Envelope KeyRing::wrap(const Section& section, std::uint64_t epoch,
                               const crypto::BoxPublicKey& recipient,
                               const crypto::SigningKey& granter_device) const {
  const crypto::SectionKey* key = find(section, epoch);
  if (!key) {
    throw SyncError(SyncErrorCode::kUnknownEpoch, "this device has no key for " + section.name() +
                                                      " epoch " + std::to_string(epoch));
  }
  return crypto::Envelope::create(*key, section_key_context(plan_, section, epoch), recipient,
                                  granter_device);
}

void KeyRing::accept(const crypto::Envelope& envelope, const DeviceId& signer,
                     const Section& section, std::uint64_t epoch, const MembershipLog& log,
                     const crypto::BoxSecretKey& me) {
  auto account = log.account_of(signer);
  if (!account) {
    throw SyncError(SyncErrorCode::kNotMember,
                    "a section key came from a device that is not in this plan");
  }
  if (log.permission(*account, section) < Permission::kManage) {
    throw SyncError(SyncErrorCode::kForbidden,
                    "a key for " + section.name() + " came from someone who does not manage it");
  }
  auto key = envelope.open(me, crypto::VerifyKey::parse(signer.bytes()),
                           section_key_context(plan_, section, epoch));
  if (!key) {
    throw SyncError(SyncErrorCode::kBadSignature, "a key for " + section.name() +
                                                      " did not check out (wrong signer, device, "
                                                      "plan, section or epoch); it was not used");
  }
  add(section, epoch, *key);
}

}  // namespace kith::sync
