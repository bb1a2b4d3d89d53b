// SyncEngine: the circle of support. Invitations (made here, and accepted here with a code),
// grants, revocations with their key rotations, and the rotations an expired grant calls for.
// DESIGN.md §2.2; docs/PROTOCOL.md, "Invitations".
#include <algorithm>

#include "engine_plan.hpp"
#include "kith/crypto/error.hpp"
#include "kith/sync/error.hpp"
#include "kith/sync/wire.hpp"

namespace kith::sync {

using engine_detail::to_bytes;
using engine_detail::to_wire;

namespace {

using Kind = MembershipEntry::Kind;

// A refused proof means the code is not the one the invitation was made with.
SyncErrorCode join_error_code(kith::v1::ErrorCode code) {
  return code == kith::v1::BAD_SIGNATURE ? SyncErrorCode::kInviteMismatch
                                         : wire::sync_error_code(code);
}

}  // namespace

// --- Inviting ---

InviteCode SyncEngine::invite(const PlanId& plan, const std::vector<GrantSpec>& grants,
                              std::uint64_t expires_at_ms) {
  Plan& p = plan_ref(plan);
  if (expires_at_ms <= now_ms_()) {
    throw SyncError(SyncErrorCode::kMalformed,
                    "the invitation would expire before anyone could use it; give a later expiry");
  }
  InviteCode code = InviteCode::create(plan);
  MembershipEntry e = p.log.next(Kind::kInviteCreated, me_.device(), now_ms_());
  e.invite_id = code.invite_id();
  const crypto::SigningKey key = code.signing_key();
  e.invite_key.assign(key.public_key().bytes().begin(), key.public_key().bytes().end());
  e.invite_expires_at_ms = expires_at_ms;
  e.grants = with_names_grant(p, grants);
  const crypto::BoxSecretKey box = code.box_key();
  MembershipLog before = p.log;
  try {
    auto tx = store_.begin();
    append_entry(p, e);  // checks the grants: this account must manage each section
    for (const GrantSpec& g : e.grants) {
      if (g.permission < Permission::kRead) continue;
      for (std::uint64_t epoch = 1; epoch <= p.log.epoch(g.section); ++epoch) {
        if (!key_for(p, g.section, epoch)) continue;
        store_.add_outgoing_envelope(
            p.id,
            p.keys.wrap(g.section, epoch, box.public_key(), me_.secrets.device.signing).serialize(),
            e.invite_id);
      }
    }
    tx.commit();
  } catch (...) {
    p.log = std::move(before);
    throw;
  }
  return code;
}

// --- Grants and revocations ---

std::vector<Cutoff> SyncEngine::all_cutoffs(const Plan& p, const std::set<Section>& sections) const {
  std::vector<Cutoff> out;
  for (const Section& s : sections) {
    for (Cutoff& c : rotation_cutoffs(p, p.log, s)) out.push_back(std::move(c));
  }
  return out;
}

void SyncEngine::grant(const PlanId& plan, const AccountId& member, const GrantSpec& grant) {
  if (grant.permission == Permission::kNone) {
    revoke(plan, member, grant.section);
    return;
  }
  Plan& p = plan_ref(plan);
  const Permission before_permission = p.log.permission(member, grant.section);
  MembershipEntry e = p.log.next(Kind::kGrant, me_.device(), now_ms_());
  e.member = member;
  e.grants = {grant};
  // A lower right stops, from here, ops its holder writes under the old one.
  if (grant.permission < before_permission) e.cutoffs = all_cutoffs(p, {grant.section});
  MembershipLog before = p.log;
  try {
    auto tx = store_.begin();
    append_entry(p, e);
    if (before_permission < Permission::kRead) {
      for (const MemberView& m : p.log.members()) {
        if (m.account != member) continue;
        for (const DeviceId& d : m.devices) {
          for (std::uint64_t epoch = 1; epoch <= p.log.epoch(grant.section); ++epoch) {
            wrap_for(p, grant.section, epoch, *p.log.certificate(d));
          }
        }
      }
    }
    tx.commit();
  } catch (...) {
    p.log = std::move(before);
    throw;
  }
  if (grant.permission < before_permission) rebuild_state(p);
  if (grant.section.name() != kNamesSection) keep_names_grant_in_step(p, member);
}

std::vector<Section> SyncEngine::revoke(const PlanId& plan, const AccountId& member,
                                        const std::optional<Section>& section) {
  Plan& p = plan_ref(plan);
  // What the member holds now (expiry not applied: an expired grant is rotated away too).
  std::set<Section> held;
  std::set<Section> readable;
  for (const MemberView& m : p.log.members()) {
    if (m.account != member) continue;
    for (const auto& [s, g] : m.grants) {
      if (section && s != *section) continue;
      if (g.permission == Permission::kNone) continue;
      held.insert(s);
      if (g.permission >= Permission::kRead) readable.insert(s);
    }
  }
  if (held.empty()) {
    throw SyncError(SyncErrorCode::kNotMember,
                    (section ? "as far as this device knows, that member has no access to " +
                                   section->name() + " to remove"
                             : std::string("as far as this device knows, that person is not a "
                                           "member of this plan")) +
                        "; sync to learn of recent joins, then try again");
  }
  MembershipEntry e = p.log.next(Kind::kRevoke, me_.device(), now_ms_());
  e.member = member;
  e.section = section;
  e.cutoffs = all_cutoffs(p, held);
  MembershipLog before = p.log;
  std::vector<Section> rotated;
  try {
    auto tx = store_.begin();
    append_entry(p, e);
    // Every key they could read is replaced; the new one reaches the remaining readers only.
    for (const Section& s : readable) {
      append_rotation(p, s);
      rotated.push_back(s);
    }
    tx.commit();
  } catch (...) {
    p.log = std::move(before);
    throw;
  }
  reseal_outbox(p);
  rebuild_state(p);
  if (section && section->name() != kNamesSection) {
    for (const Section& s : keep_names_grant_in_step(p, member)) rotated.push_back(s);
  }
  return rotated;
}

std::vector<Section> SyncEngine::pending_rotations(const PlanId& plan) const {
  const Plan& p = plan_ref(plan);
  const std::uint64_t now = now_ms_();
  // When each section's key was last rotated, by the rotating author's clock.
  std::map<Section, std::uint64_t> rotated_at;
  for (const Bytes& bytes : store_.membership(p.id)) {
    MembershipEntry e = MembershipEntry::parse(bytes);
    if (e.kind == Kind::kKeyRotation && e.section) rotated_at[*e.section] = e.at_ms;
  }
  std::set<Section> out;
  for (const MemberView& m : p.log.members()) {
    for (const auto& [s, g] : m.grants) {
      if (g.expires_at_ms == 0 || g.expires_at_ms > now || g.permission < Permission::kRead) {
        continue;
      }
      if (p.log.permission(me_.account(), s) < Permission::kManage) continue;
      auto it = rotated_at.find(s);
      if (it == rotated_at.end() || it->second < g.expires_at_ms) out.insert(s);
    }
  }
  return {out.begin(), out.end()};
}

std::vector<Section> SyncEngine::rotate_expired(const PlanId& plan) {
  std::vector<Section> due = pending_rotations(plan);
  for (const Section& s : due) rotate_key(plan, s);
  return due;
}

void SyncEngine::wrap_for_newcomer(Plan& p, const MembershipEntry& joined) {
  const InviteInfo* inv = p.log.invite(joined.invite_id);
  if (!inv || !joined.certificate) return;
  std::set<Section> sections;
  for (const GrantSpec& g : inv->grants) {
    if (g.permission >= Permission::kRead) sections.insert(g.section);
  }
  // Rotations after the invitation: its envelopes hold none of their keys.
  std::vector<std::pair<Section, std::uint64_t>> mine;
  auto held = store_.membership(p.id);
  for (std::size_t i = inv->index + 1; i < held.size(); ++i) {
    MembershipEntry e = MembershipEntry::parse(held[i]);
    if (e.kind == Kind::kKeyRotation && e.section && e.author == me_.device() &&
        sections.count(*e.section)) {
      mine.emplace_back(*e.section, e.epoch);
    }
  }
  if (mine.empty()) return;
  auto tx = store_.begin();
  for (const auto& [s, epoch] : mine) {
    if (p.log.permission(*inv->accepted_by, s, {}, now_ms_()) >= Permission::kRead) {
      wrap_for(p, s, epoch, *joined.certificate);
    }
  }
  tx.commit();
}

// --- Joining ---

kith::v1::ClientMessage SyncEngine::redeem(const InviteCode& code, std::string_view title) {
  if (plans_.count(code.plan())) {
    throw SyncError(SyncErrorCode::kMalformed,
                    "this device already holds plan " + code.plan().short_hex());
  }
  kith::v1::ClientMessage m;
  m.set_request_id(next_request_++);
  auto* r = m.mutable_redeem_invite();
  r->set_plan_id(to_wire(code.plan().bytes()));
  const OpId invite_id = code.invite_id();
  r->set_invite_id(to_wire(invite_id.bytes()));
  const crypto::BoxSecretKey box = code.box_key();
  r->set_invite_box_key(to_wire(box.public_key().bytes()));
  const crypto::Signature proof = code.signing_key().sign(
      crypto::labels::kInviteRedeem,
      invite_redeem_message(code.plan(), invite_id, me_.device(), box.public_key()));
  r->set_proof(to_wire(ByteView(proof.data(), proof.size())));
  joins_[m.request_id()] =
      std::make_unique<PendingJoin>(PendingJoin{code, std::string(title), {}, {}});
  return m;
}

std::vector<kith::v1::ClientMessage> SyncEngine::handle_join(PendingJoin& join,
                                                             const kith::v1::ServerMessage& message,
                                                             bool& done) {
  const PlanId& plan = join.code.plan();
  using M = kith::v1::ServerMessage;
  switch (message.body_case()) {
    case M::kMembershipBatch: {
      const auto& b = message.membership_batch();
      if (b.first_index() != join.entries.size()) {
        done = true;
        problem(plan, SyncErrorCode::kMembershipInvalid,
                "the server sent the plan's membership log out of order; try joining again");
        return {};
      }
      for (const auto& e : b.entries()) join.entries.push_back(to_bytes(e));
      return {};
    }
    case M::kEnvelopeBatch:
      for (const auto& e : message.envelope_batch().envelopes()) {
        join.envelopes.push_back(to_bytes(e));
      }
      return {};
    case M::kInviteRedeemed:
      done = true;
      return complete_join(join, message.invite_redeemed());
    case M::kError: {
      done = true;
      const auto& err = message.error();
      problem(plan, join_error_code(err.code()),
              "the invitation could not be used: " + err.message());
      return {};
    }
    default:
      return {};
  }
}

std::vector<kith::v1::ClientMessage> SyncEngine::complete_join(
    PendingJoin& join, const kith::v1::InviteRedeemed& redeemed) {
  const PlanId& id = join.code.plan();
  const OpId invite_id = join.code.invite_id();
  if (plans_.count(id)) return {};
  MembershipLog log(id);
  try {
    for (const Bytes& bytes : join.entries) log.append(MembershipEntry::parse(bytes));
  } catch (const SyncError& e) {
    problem(id, SyncErrorCode::kMembershipInvalid,
            std::string("the plan's membership log from the server does not verify, so it was "
                        "not joined: ") +
                e.what());
    return {};
  }
  if (redeemed.membership_count() != log.size()) {
    problem(id, SyncErrorCode::kMembershipInvalid,
            "the server sent a different number of membership entries than it said; try again");
    return {};
  }
  // The invitation in the log must be the one the code stands for: a server that swapped it
  // for one of its own (to get in between) is caught here, before anything is signed.
  const InviteInfo* inv = log.invite(invite_id);
  const crypto::SigningKey invite_key = join.code.signing_key();
  if (!inv || !crypto::constant_time_equal(inv->key, invite_key.public_key().bytes())) {
    problem(id, SyncErrorCode::kInviteMismatch,
            "the plan's log holds no invitation matching this code: the server may have altered "
            "it. Nothing was joined; tell the person who invited you");
    return {};
  }
  if (inv->used) {
    problem(id, SyncErrorCode::kInviteUsed,
            "this invitation has already been used; ask for a new one");
    return {};
  }
  if (now_ms_() >= inv->expires_at_ms) {
    problem(id, SyncErrorCode::kInviteExpired, "this invitation has expired; ask for a new one");
    return {};
  }
  KeyRing ring(id);
  const crypto::BoxSecretKey box = join.code.box_key();
  for (const Bytes& bytes : join.envelopes) {
    try {
      ring.accept(crypto::Envelope::parse(bytes), log, box);
    } catch (const crypto::CryptoError& e) {
      problem(id, SyncErrorCode::kMalformed, std::string("an invitation key: ") + e.what());
    } catch (const SyncError& e) {
      problem(id, e.code(), std::string("an invitation key was refused: ") + e.what());
    }
  }

  auto p = std::make_unique<Plan>(id, join.title, me_.secrets.device.signing);
  p->log = std::move(log);
  p->server_membership = p->log.size();
  MembershipEntry e = p->log.next(Kind::kInviteAccepted, me_.device(), now_ms_());
  e.invite_id = invite_id;
  e.certificate = me_.certificate;
  e.invite_signature = invite_key.sign(crypto::labels::kInviteJoin, e.invite_join_message());
  {
    auto tx = store_.begin();
    store_.put_plan(id, join.title);
    for (std::size_t i = 0; i < join.entries.size(); ++i) {
      store_.put_membership_entry(id, i, join.entries[i]);
    }
    for (const auto& [at, key] : ring.keys()) {
      store_.put_section_key(id, at.first.name(), at.second, key);
      p->keys.add(at.first, at.second, key);
    }
    append_entry(*p, e);
    tx.commit();
  }
  plans_[id] = std::move(p);
  // The join entry goes first; the Subscribe after it finds this device a member.
  return subscribe(id);
}

}  // namespace kith::sync
