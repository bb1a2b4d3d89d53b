// SyncEngine: recovery envelopes (docs/PROTOCOL.md, "Recovery envelopes").
//
// Someone who loses every device still has their recovery key. From it comes their identity key
// and from that their recovery box key, so each device seals to that box every key it holds of a
// section its account may read, and kithd keeps those envelopes for the account. A device
// restored from the recovery key proves the box in its Subscribe, receives them, and opens the
// plan's history without any other device of the circle being online.
#include "engine_plan.hpp"
#include "kith/sync/error.hpp"

namespace kith::sync {

void SyncEngine::seal_for_recovery(Plan& p) {
  // kithd stores envelopes only from a device in the plan's log.
  if (!p.log.account_of(me_.device())) return;
  if (!p.recovery_sealed) p.recovery_sealed = store_.recovery_sealed(p.id);
  auto& sealed = *p.recovery_sealed;
  const std::uint64_t now = now_ms_();
  std::optional<LocalStore::Transaction> tx;
  std::vector<std::pair<std::string, std::uint64_t>> made;
  for (std::string_view name : kKnownSections) {
    const Section s = Section::parse(name);
    if (p.log.permission(me_.account(), s, {}, now) < Permission::kRead) continue;
    for (std::uint64_t epoch = 1; epoch <= p.log.epoch(s); ++epoch) {
      if (sealed.count({std::string(name), epoch}) || !key_for(p, s, epoch)) continue;
      if (!tx) tx.emplace(store_.begin());
      store_.add_outgoing_envelope(
          p.id,
          p.keys.wrap(s, epoch, recovery_box_.public_key(), me_.secrets.device.signing)
              .serialize(),
          std::nullopt, /*recovery=*/true);
      store_.mark_recovery_sealed(p.id, name, epoch);
      made.emplace_back(name, epoch);
    }
  }
  if (!tx) return;
  tx->commit();
  sealed.insert(made.begin(), made.end());  // only once they are in the store
}

void SyncEngine::accept_recovery_envelope(Plan& p, const crypto::Envelope& envelope) {
  auto [section, epoch] = p.keys.accept_recovery(envelope, p.log, recovery_box_, me_.account());
  auto tx = store_.begin();
  store_.put_section_key(p.id, section.name(), epoch, *p.keys.find(section, epoch));
  // Already on the server: this device need not seal it again.
  store_.mark_recovery_sealed(p.id, section.name(), epoch);
  tx.commit();
  if (p.recovery_sealed) p.recovery_sealed->emplace(section.name(), epoch);
}

}  // namespace kith::sync
