// SyncEngine: membership entries, section keys and envelopes. What this device authors
// (add_device, rotate_key) and the envelopes it makes for them, which wait in the store until
// the server has stored them; what the server sends; and an entry of this device that lost a
// race for its place in the log, made again on top of the winner's.
#include <algorithm>
#include <set>

#include "engine_plan.hpp"
#include "kith/crypto/error.hpp"
#include "kith/sync/error.hpp"
#include "kith/sync/wire.hpp"

namespace kith::sync {

using engine_detail::to_bytes;
using engine_detail::to_wire;

namespace {

using Kind = MembershipEntry::Kind;

constexpr std::size_t kEntriesPerPush = 200;
constexpr std::size_t kEnvelopesPerPush = 200;

// What an entry of this device did, for a person reading why it was dropped.
std::string change_name(const MembershipEntry& e) {
  switch (e.kind) {
    case Kind::kDeviceAdded:
      return "adding a device";
    case Kind::kKeyRotation:
      return "the new key of " + (e.section ? e.section->name() : std::string("a section"));
    case Kind::kGrant:
      return "a change of access";
    case Kind::kRevoke:
      return "a removal of access";
    case Kind::kInviteCreated:
      return "an invitation";
    default:
      return "a membership change";
  }
}

// Refusals that say nothing about the request itself: it goes again as it is.
bool transient(kith::v1::ErrorCode code) {
  using E = kith::v1::ErrorCode;
  return code == E::RATE_LIMITED || code == E::SERVER_BUSY || code == E::SHUTTING_DOWN ||
         code == E::INTERNAL || code == E::SLOW_READER || code == E::UNAUTHENTICATED;
}

bool has_device_with_key(const MembershipLog& log, const crypto::BoxPublicKey& key) {
  for (const MemberView& m : log.members()) {
    for (const DeviceId& d : m.devices) {
      const crypto::DeviceCertificate* cert = log.certificate(d);
      if (cert && cert->device_encryption() == key) return true;
    }
  }
  return false;
}

}  // namespace

// --- Authoring ---

void SyncEngine::append_entry(Plan& p, MembershipEntry& e) {
  e.sign(me_.secrets.device.signing);
  p.log.append(e);
  store_.put_membership_entry(p.id, e.index, e.serialize());
}

std::vector<Cutoff> SyncEngine::rotation_cutoffs(const Plan& p, const MembershipLog& log,
                                                 const Section& section) const {
  std::vector<Cutoff> out;
  for (const MemberView& m : log.members()) {
    for (const DeviceId& d : m.devices) {
      std::uint64_t seq = p.verifier.accepted_seq(ChainKey{d, section});
      if (seq > 0) out.push_back({d, section, seq});
    }
  }
  return out;
}

void SyncEngine::append_rotation(Plan& p, const Section& section) {
  MembershipEntry e = p.log.next(Kind::kKeyRotation, me_.device(), now_ms_());
  e.section = section;
  e.epoch = p.log.epoch(section) + 1;
  e.cutoffs = rotation_cutoffs(p, p.log, section);
  auto key = crypto::SectionKey::generate();
  append_entry(p, e);
  store_.put_section_key(p.id, section.name(), e.epoch, key);
  p.keys.add(section, e.epoch, key);
  wrap_for_readers(p, section, e.epoch);
}

void SyncEngine::rotate_key(const PlanId& plan, const Section& section) {
  Plan& p = plan_ref(plan);
  MembershipLog before = p.log;
  try {
    // The entry, the key and the envelopes carrying it commit together.
    auto tx = store_.begin();
    append_rotation(p, section);
    tx.commit();
  } catch (...) {
    p.log = std::move(before);
    throw;
  }
  reseal_outbox(p);
  rebuild_state(p);
}

void SyncEngine::add_device(const PlanId& plan, const crypto::DeviceCertificate& certificate) {
  Plan& p = plan_ref(plan);
  MembershipEntry e = p.log.next(Kind::kDeviceAdded, me_.device(), now_ms_());
  e.certificate = certificate;
  MembershipLog before = p.log;
  try {
    auto tx = store_.begin();
    append_entry(p, e);
    wrap_for_device(p, certificate);
    tx.commit();
  } catch (...) {
    p.log = std::move(before);
    throw;
  }
}

void SyncEngine::add_this_device(const PlanId& plan) {
  Plan& p = plan_ref(plan);
  if (p.log.account_of(me_.device())) return;
  MembershipEntry e = p.log.next(Kind::kDeviceAdded, me_.device(), now_ms_());
  e.certificate = me_.certificate;
  MembershipLog before = p.log;
  try {
    auto tx = store_.begin();
    append_entry(p, e);
    tx.commit();
  } catch (...) {
    p.log = std::move(before);
    throw;
  }
}

void SyncEngine::wrap_for_device(Plan& p, const crypto::DeviceCertificate& device) {
  const AccountId account = AccountId::from_bytes(device.identity().bytes());
  for (std::string_view name : kKnownSections) {
    Section s = Section::parse(name);
    // Receivers accept a section key only from a manager of the section.
    if (p.log.permission(me_.account(), s) < Permission::kManage) continue;
    if (p.log.permission(account, s, {}, now_ms_()) < Permission::kRead) continue;
    for (std::uint64_t epoch = 1; epoch <= p.log.epoch(s); ++epoch) wrap_for(p, s, epoch, device);
  }
}

void SyncEngine::wrap_for(Plan& p, const Section& section, std::uint64_t epoch,
                          const crypto::DeviceCertificate& device) {
  if (!key_for(p, section, epoch)) return;
  store_.add_outgoing_envelope(
      p.id, p.keys.wrap(section, epoch, device.device_encryption(), me_.secrets.device.signing)
                .serialize());
}

void SyncEngine::wrap_for_readers(Plan& p, const Section& section, std::uint64_t epoch) {
  for (const MemberView& m : p.log.members()) {
    if (p.log.permission(m.account, section, {}, now_ms_()) < Permission::kRead) continue;
    for (const DeviceId& d : m.devices) {
      if (d != me_.device()) wrap_for(p, section, epoch, *p.log.certificate(d));
    }
  }
}

// --- Pushing ---

void SyncEngine::push_entries(Plan& p, std::vector<kith::v1::ClientMessage>& out, bool remake) {
  if (remake && p.remake_entries) {
    remake_entries(p, p.server_membership, {});
    if (p.needs_rebuild) rebuild_state(p);  // the entries judge ops at their new places
  }
  auto entries = store_.membership(p.id);
  if (p.server_membership >= entries.size()) p.push_singly = false;
  const std::size_t per_push = p.push_singly ? 1 : kEntriesPerPush;
  for (std::size_t i = p.server_membership; i < entries.size(); i += per_push) {
    kith::v1::ClientMessage m;
    m.set_request_id(next_request_++);
    auto* pm = m.mutable_push_membership();
    pm->set_plan_id(to_wire(p.id.bytes()));
    SentPush sent;
    for (std::size_t k = i; k < std::min(entries.size(), i + per_push); ++k) {
      pm->add_entries(to_wire(entries[k]));
      sent.entries.emplace_back(k, crypto::blake2b(entries[k]));
    }
    p.sent[m.request_id()] = std::move(sent);
    out.push_back(std::move(m));
  }
}

// Envelopes go only once the server holds every entry of this device: an envelope for a key
// rotation that then lost a race for its place in the log would hand out a key under an epoch
// that names another key.
void SyncEngine::push_envelopes(Plan& p, std::vector<kith::v1::ClientMessage>& out) {
  if (p.server_membership < p.log.size()) return;
  seal_for_recovery(p);
  kith::v1::ClientMessage m;
  SentPush sent;
  // Of the push being filled: one invitation's, recovery envelopes, or members'.
  std::optional<OpId> invite;
  bool recovery = false;
  auto flush = [&] {
    if (sent.envelopes.empty()) return;
    m.set_request_id(next_request_++);
    m.mutable_push_envelopes()->set_plan_id(to_wire(p.id.bytes()));
    if (invite) m.mutable_push_envelopes()->set_invite_id(to_wire(invite->bytes()));
    if (recovery) {
      m.mutable_push_envelopes()->set_recovery_proof(
          to_wire(crypto::ByteView(recovery_proof_.data(), recovery_proof_.size())));
    }
    p.sent[m.request_id()] = std::move(sent);
    out.push_back(std::move(m));
    m = {};
    sent = {};
  };
  for (const OutgoingEnvelope& env : store_.outgoing_envelopes(p.id)) {
    if (p.envelopes_in_flight.count(env.id)) continue;
    if (env.invite != invite || env.recovery != recovery) {
      flush();
      invite = env.invite;
      recovery = env.recovery;
    }
    p.envelopes_in_flight.insert(env.id);
    m.mutable_push_envelopes()->add_envelopes(to_wire(env.envelope));
    sent.envelopes.push_back(env.id);
    if (sent.envelopes.size() == kEnvelopesPerPush) flush();
  }
  flush();
}

// --- What the server sends ---

void SyncEngine::handle_membership(const kith::v1::MembershipBatch& batch) {
  PlanId id = PlanId::from_bytes(crypto::as_bytes(batch.plan_id()));
  Plan& p = plan_ref(id);
  const std::set<Section> readable_before = readable_sections(p);
  std::map<Section, std::uint64_t> epochs_before;
  for (std::string_view name : kKnownSections) {
    epochs_before[Section::parse(name)] = p.log.epoch(Section::parse(name));
  }
  std::vector<Bytes> held;  // read only when the batch repeats entries this device holds
  std::optional<std::uint64_t> lost_at;
  std::vector<MembershipEntry> theirs;
  std::vector<MembershipEntry> joined;  // others' invitations accepted in this batch
  std::vector<MembershipEntry> added;   // devices of members added in this batch
  auto tx = store_.begin();
  std::uint64_t index = batch.first_index();
  for (int k = 0; k < batch.entries_size(); ++k, ++index) {
    const std::string& bytes = batch.entries(k);
    if (index < p.log.size()) {
      if (held.empty()) held = store_.membership(id);
      ByteView b = crypto::as_bytes(bytes);
      if (std::equal(b.begin(), b.end(), held[index].begin(), held[index].end())) {
        p.server_membership = std::max(p.server_membership, index + 1);
        continue;
      }
      // The server kept another entry here: this device's entries from here on lost a race for
      // their place. They are made again after the server's.
      try {
        for (int j = k; j < batch.entries_size(); ++j) {
          theirs.push_back(MembershipEntry::parse(to_bytes(batch.entries(j))));
        }
        lost_at = index;
      } catch (const SyncError& e) {
        problem(id, e.code(), e.what());
      }
      break;
    }
    if (index > p.log.size()) {
      problem(id, SyncErrorCode::kMembershipInvalid,
              "membership entries are missing before entry " + std::to_string(index));
      break;
    }
    try {
      MembershipEntry e = MembershipEntry::parse(to_bytes(bytes));
      p.log.append(e);
      store_.put_membership_entry(id, e.index, e.serialize());
      p.server_membership = std::max(p.server_membership, index + 1);
      if (e.kind == Kind::kKeyRotation && e.section) epochs_before.try_emplace(*e.section, 0);
      if (e.kind == Kind::kInviteAccepted && e.author != me_.device()) joined.push_back(e);
      if (e.kind == Kind::kDeviceAdded && e.certificate &&
          DeviceId::from_bytes(e.certificate->device_signing().bytes()) != me_.device()) {
        added.push_back(e);
      }
      // A reduction of rights or a rotation carries cut-offs: ops merged here before it
      // arrived (this device's own included) may now be refused everywhere.
      if (e.kind == Kind::kGrant || e.kind == Kind::kRevoke || e.kind == Kind::kKeyRotation) {
        p.needs_rebuild = true;
      }
    } catch (const SyncError& e) {
      problem(id, e.code(), e.what());
      break;
    }
  }
  tx.commit();
  for (const MembershipEntry& e : joined) wrap_for_newcomer(p, e);
  // A device that added itself (or was added by a device that cannot hand out some of its
  // account's keys) gets them from the managers' devices.
  if (!added.empty()) {
    auto keys_tx = store_.begin();
    for (const MembershipEntry& e : added) {
      const bool self_added = DeviceId::from_bytes(e.certificate->device_signing().bytes()) == e.author;
      auto author = p.log.account_of(e.author);
      if (self_added || !author || *author != me_.account()) wrap_for_device(p, *e.certificate);
    }
    keys_tx.commit();
  }
  if (lost_at) {
    for (const MembershipEntry& e : theirs) {
      if (e.kind == Kind::kKeyRotation && e.section) epochs_before.try_emplace(*e.section, 0);
    }
    remake_entries(p, *lost_at, theirs);
  }
  for (const auto& [section, before] : epochs_before) {
    if (p.log.epoch(section) != before) p.needs_reseal = true;
  }
  // The server sends ops after the cursor only: a section readable from now on lacks its older
  // ops until the plan is fetched from the start (check_checksums).
  if (store_.cursor(id) > 0) {
    for (const Section& s : readable_sections(p)) {
      if (!readable_before.count(s)) p.newly_readable.insert(s);
    }
  }
  if (p.needs_rebuild) rebuild_state(p);
}

// Makes this device's entries from `from` on again on top of `theirs` (the server's entries from
// `from` on): at the next place in the log, linked to the entry before, with the cut-offs and
// epoch of a key rotation as this device now sees them, signed again, and checked against the
// rights their author has there. One no longer allowed is dropped with a kProblem event, and
// with it the envelopes it made. So is one the server refused (`p.refusal`) that comes out the
// same again: nothing this device knows would change the answer.
void SyncEngine::remake_entries(Plan& p, std::uint64_t from,
                                const std::vector<MembershipEntry>& theirs) {
  // After a refusal of this device's first unacknowledged entry alone, that entry must change.
  const bool first_must_change = p.remake_entries && p.refused_alone && theirs.empty();
  p.remake_entries = false;
  std::vector<Bytes> held = store_.membership(p.id);
  if (from > held.size()) return;
  std::vector<MembershipEntry> mine;
  for (std::size_t i = from; i < held.size(); ++i) {
    MembershipEntry e = MembershipEntry::parse(held[i]);
    if (e.author != me_.device()) {
      problem(p.id, SyncErrorCode::kMembershipInvalid,
              "the server's membership log differs from this device's at entry " +
                  std::to_string(i) + ", which another device wrote; it was not changed here");
      return;
    }
    mine.push_back(std::move(e));
  }
  if (mine.empty() && theirs.empty()) return;

  MembershipLog log(p.id);
  try {
    for (std::uint64_t i = 0; i < from; ++i) log.append(MembershipEntry::parse(held[i]));
    for (const MembershipEntry& e : theirs) log.append(e);
  } catch (const SyncError& e) {
    problem(p.id, e.code(), e.what());
    return;
  }
  struct Rekey {
    Section section;
    std::uint64_t from_epoch;
    std::optional<std::uint64_t> to_epoch;  // nullopt: the rotation was dropped
  };
  std::vector<MembershipEntry> remade;
  std::vector<Rekey> rekeys;
  for (const MembershipEntry& old : mine) {
    MembershipEntry e = old;
    e.index = log.size();
    e.prev = log.head_hash();
    const bool rotation = e.kind == Kind::kKeyRotation && e.section;
    if (rotation) {
      e.epoch = log.epoch(*e.section) + 1;
      e.cutoffs = rotation_cutoffs(p, log, *e.section);
    }
    e.sign(me_.secrets.device.signing);
    try {
      if (first_must_change && old.index == from && e.serialize() == old.serialize()) {
        throw SyncError(SyncErrorCode::kMembershipInvalid, "the server refused it: " + p.refusal);
      }
      log.append(e);
      remade.push_back(e);
      if (rotation && e.epoch != old.epoch) rekeys.push_back({*e.section, old.epoch, e.epoch});
    } catch (const SyncError& err) {
      problem(p.id, err.code(),
              "this device's change (" + change_name(old) +
                  ") was not made: another change to the plan's members came first, and " +
                  err.what());
      if (rotation) rekeys.push_back({*e.section, old.epoch, std::nullopt});
    }
  }
  for (const Rekey& r : rekeys) {
    if (const crypto::SectionKey* key = key_for(p, r.section, r.from_epoch)) {
      p.lost_keys.insert_or_assign({r.section, r.from_epoch}, *key);
    }
  }

  auto tx = store_.begin();
  store_.truncate_membership(p.id, from);
  for (const MembershipEntry& e : theirs) store_.put_membership_entry(p.id, e.index, e.serialize());
  for (const MembershipEntry& e : remade) store_.put_membership_entry(p.id, e.index, e.serialize());
  // A rotation's key moves to its new epoch. Its old epoch now names the other device's key,
  // which arrives in an envelope and replaces this one; meanwhile it still opens the ops this
  // device sealed under it, for the re-seal below.
  for (const Rekey& r : rekeys) {
    auto key = p.lost_keys.find({r.section, r.from_epoch});
    if (key != p.lost_keys.end() && r.to_epoch) {
      store_.put_section_key(p.id, r.section.name(), *r.to_epoch, key->second);
      p.keys.add(r.section, *r.to_epoch, key->second);
    }
  }
  // Envelopes made for what was not made again (a device no longer added, a key under an epoch
  // it no longer has) are not sent.
  for (const OutgoingEnvelope& out : store_.outgoing_envelopes(p.id)) {
    bool keep = false;
    try {
      auto env = crypto::Envelope::parse(out.envelope);
      auto target = parse_section_key_context(env.context(), p.id);
      // An invitation's envelope stays while the invitation may still be accepted.
      const InviteInfo* inv = out.invite ? log.invite(*out.invite) : nullptr;
      const bool addressee = out.invite ? inv && !inv->used : has_device_with_key(log, env.recipient());
      keep = target && addressee &&
             std::none_of(rekeys.begin(), rekeys.end(), [&](const Rekey& r) {
               return r.section == target->first && r.from_epoch == target->second;
             });
    } catch (const crypto::CryptoError&) {
    }
    if (!keep) {
      store_.remove_outgoing_envelope(p.id, out.id);
      p.envelopes_in_flight.erase(out.id);
    }
  }
  MembershipLog before = std::move(p.log);
  p.log = std::move(log);
  try {
    for (const Rekey& r : rekeys) {
      if (r.to_epoch) wrap_for_readers(p, r.section, *r.to_epoch);
    }
    tx.commit();
  } catch (...) {
    p.log = std::move(before);
    throw;
  }
  p.server_membership = from + theirs.size();
  p.needs_rebuild = true;
  // Queued ops sealed under a rotation that moved or went are sealed again now, while the key
  // that opens them is still at hand.
  if (!rekeys.empty()) reseal_outbox(p);
}

void SyncEngine::handle_envelopes(const kith::v1::EnvelopeBatch& batch) {
  PlanId id = PlanId::from_bytes(crypto::as_bytes(batch.plan_id()));
  Plan& p = plan_ref(id);
  bool new_key = false;
  for (const std::string& bytes : batch.envelopes()) {
    try {
      auto env = crypto::Envelope::parse(crypto::as_bytes(bytes));
      auto target = parse_section_key_context(env.context(), id);
      const bool had = target && key_for(p, target->first, target->second);
      if (env.recipient() == recovery_box_.public_key()) {
        accept_recovery_envelope(p, env);
        new_key |= !had;
        continue;
      }
      auto [section, epoch] = p.keys.accept(env, p.log, me_.secrets.device.encryption);
      new_key |= !had;
      auto tx = store_.begin();
      store_.put_envelope(id, section.name(), epoch, crypto::as_bytes(bytes));
      store_.put_section_key(id, section.name(), epoch, *p.keys.find(section, epoch));
      tx.commit();
    } catch (const crypto::CryptoError& e) {
      problem(id, SyncErrorCode::kMalformed, e.what());
    } catch (const SyncError& e) {
      problem(id, e.code(), e.what());
    }
  }
  // Ops held without their key (a new device of a member gets the plan before its keys) are
  // merged now that it is here.
  if (new_key && store_.cursor(id) > 0) rebuild_state(p);
}

std::vector<kith::v1::ClientMessage> SyncEngine::handle_ack(const kith::v1::PushAck& ack,
                                                            std::uint64_t request_id) {
  PlanId id = PlanId::from_bytes(crypto::as_bytes(ack.plan_id()));
  Plan& p = plan_ref(id);
  std::optional<SentPush> sent;
  if (auto it = p.sent.find(request_id); it != p.sent.end()) {
    sent = std::move(it->second);
    p.sent.erase(it);
  }
  // An op whose sequence arrives only after the cursor passed it (the server acknowledged it
  // after sending later ops) is missing from the digests: they are computed again.
  bool behind_digests = false;
  // Only ops still queued count as acknowledged now: one that came back in a batch first (its
  // ack was late) was counted then.
  std::uint64_t newly_acked = 0;
  std::set<OpId> queued;
  if (ack.acked_size() > 0) {
    auto out = store_.outbox(id);
    queued.insert(out.begin(), out.end());
  }
  auto tx = store_.begin();
  for (const auto& a : ack.acked()) {
    OpId op = OpId::from_bytes(crypto::as_bytes(a.op_id()));
    auto stored = store_.op(id, op);
    if (stored && stored->server_seq != a.server_seq()) {
      if (a.server_seq() > p.digest_seq) {
        p.hold_for_digest(a.server_seq(), Section::parse(stored->section),
                          op_hash(stored->header, stored->body));
      } else if (a.server_seq() > 0) {
        behind_digests = true;
      }
    }
    store_.set_server_seq(id, op, a.server_seq());
    if (queued.count(op)) {
      store_.outbox_remove(id, op);
      ++newly_acked;
    }
  }
  if (sent) {
    // The server stores a push of envelopes whole or not at all.
    if (ack.envelopes_stored() == sent->envelopes.size()) {
      for (std::uint64_t env : sent->envelopes) store_.remove_outgoing_envelope(id, env);
    }
    for (std::uint64_t env : sent->envelopes) p.envelopes_in_flight.erase(env);
  }
  tx.commit();
  if (behind_digests) refold_digests(p);
  // The entries of that push are in the server's log where they are in this one.
  if (sent && !sent->entries.empty()) {
    p.server_membership = std::max(p.server_membership, sent->entries.back().first + 1);
  }
  if (newly_acked > 0) emit(SyncEvent::acked(id, newly_acked));
  // What waited for those entries can go now.
  std::vector<kith::v1::ClientMessage> out;
  if (sent && !sent->entries.empty() && p.server_membership >= p.log.size()) {
    push_envelopes(p, out);
    if (p.caught_up) push_ops(p, out);
  }
  return out;
}

void SyncEngine::handle_error(const kith::v1::ServerMessage& message) {
  const auto& err = message.error();
  std::optional<PlanId> plan;
  if (err.plan_id().size() == PlanId::kSize)
    plan = PlanId::from_bytes(crypto::as_bytes(err.plan_id()));
  for (auto& [id, p] : plans_) {
    auto it = p->sent.find(message.request_id());
    if (it == p->sent.end()) continue;
    plan = id;
    SentPush sent = std::move(it->second);
    p->sent.erase(it);
    for (std::uint64_t env : sent.envelopes) p->envelopes_in_flight.erase(env);
    if (transient(err.code())) break;
    if (!sent.envelopes.empty()) {
      // Refused for what it is: sending it again would be refused again.
      auto tx = store_.begin();
      for (std::uint64_t env : sent.envelopes) store_.remove_outgoing_envelope(id, env);
      tx.commit();
    }
    if (!sent.entries.empty()) {
      auto held = store_.membership(id);
      bool current = std::all_of(sent.entries.begin(), sent.entries.end(), [&](const auto& e) {
        return e.first < held.size() && crypto::blake2b(held[e.first]) == e.second;
      });
      // Entries since made again (a race lost, noticed before this answer came) are old news.
      if (!current) return;
      // Otherwise they are made again on top of what this device then knows, before the next
      // push (remake_entries); one refused alone is dropped with this sentence if that changes
      // nothing. Several refused together go again one at a time, to find the one refused.
      p->remake_entries = true;
      p->refused_alone = sent.entries.size() == 1;
      if (!p->refused_alone) p->push_singly = true;
      p->refusal = kith::v1::ErrorCode_Name(err.code()) + ": " + err.message();
      return;
    }
    break;
  }
  problem(plan.value_or(PlanId()), wire::sync_error_code(err.code()),
          kith::v1::ErrorCode_Name(err.code()) + ": " + err.message());
}

}  // namespace kith::sync
