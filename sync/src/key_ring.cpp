#include "kith/sync/key_ring.hpp"

#include <algorithm>

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

std::optional<std::pair<Section, std::uint64_t>> parse_section_key_context(ByteView context,
                                                                           const PlanId& plan) {
  constexpr std::string_view kPrefix = "kith/v1/section-key";
  try {
    crypto::ByteReader r(context, "envelope context");
    ByteView prefix = r.raw(kPrefix.size());
    if (!std::equal(prefix.begin(), prefix.end(), kPrefix.begin())) return std::nullopt;
    if (PlanId::from_bytes(r.raw(PlanId::kSize)) != plan) return std::nullopt;
    ByteView name = r.raw(r.u8());
    Section section =
        Section::parse(std::string_view(reinterpret_cast<const char*>(name.data()), name.size()));
    std::uint64_t epoch = r.u64();
    r.expect_end();
    return std::make_pair(section, epoch);
  } catch (const std::exception&) {
    return std::nullopt;
  }
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

namespace {

// Opens `envelope` with `me` if a device of an account that `signer_ok` accepts signed it.
template <typename SignerOk>
std::optional<std::pair<std::pair<Section, std::uint64_t>, crypto::SectionKey>> open_from(
    const crypto::Envelope& envelope, const MembershipLog& log, const crypto::BoxSecretKey& me,
    const PlanId& plan, SignerOk signer_ok) {
  auto target = parse_section_key_context(envelope.context(), plan);
  if (!target) {
    throw SyncError(SyncErrorCode::kMalformed,
                    "an envelope that is not a section key of this plan was ignored");
  }
  const auto& [section, epoch] = *target;
  // Envelope::open checks the signature first, so each wrong candidate costs one verification
  // and the right one no more than accepting it.
  for (const MemberView& m : log.members()) {
    if (!signer_ok(m, section)) continue;
    for (const DeviceId& d : m.devices) {
      if (auto key = envelope.open(me, crypto::VerifyKey::parse(d.bytes()),
                                   section_key_context(plan, section, epoch))) {
        return std::make_pair(*target, *key);
      }
    }
  }
  return std::nullopt;
}

}  // namespace

std::pair<Section, std::uint64_t> KeyRing::accept(const crypto::Envelope& envelope,
                                                  const MembershipLog& log,
                                                  const crypto::BoxSecretKey& me) {
  auto opened = open_from(envelope, log, me, plan_, [&](const MemberView& m, const Section& s) {
    return log.permission(m.account, s) >= Permission::kManage;
  });
  if (!opened) {
    auto target = parse_section_key_context(envelope.context(), plan_);
    throw SyncError(SyncErrorCode::kBadSignature,
                    "a key for " + target->first.name() +
                        " was not signed by anyone who manages it, or not for this device; it "
                        "was not used");
  }
  add(opened->first.first, opened->first.second, opened->second);
  return opened->first;
}

std::pair<Section, std::uint64_t> KeyRing::accept_recovery(const crypto::Envelope& envelope,
                                                           const MembershipLog& log,
                                                           const crypto::BoxSecretKey& recovery_box,
                                                           const AccountId& account) {
  auto opened = open_from(envelope, log, recovery_box, plan_,
                          [&](const MemberView& m, const Section&) { return m.account == account; });
  if (!opened) {
    auto target = parse_section_key_context(envelope.context(), plan_);
    throw SyncError(SyncErrorCode::kBadSignature,
                    "a recovery key for " + target->first.name() +
                        " was not signed by one of your own devices; it was not used");
  }
  add(opened->first.first, opened->first.second, opened->second);
  return opened->first;
}

}  // namespace kith::sync
