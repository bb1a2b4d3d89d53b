// SyncService: membership entries, envelopes, invitations, the fetch log and device records.
#include <algorithm>

#include "kith/crypto/envelope.hpp"
#include "kith/crypto/error.hpp"
#include "kith/crypto/recovery.hpp"
#include "kith/sync/error.hpp"
#include "kith/sync/invite.hpp"
#include "kith/sync/key_ring.hpp"
#include "kith/sync/wire.hpp"
#include "log.hpp"
#include "plan_index.hpp"
#include "sync_service.hpp"
#include "sync_service_plan.hpp"

namespace kith::server {

using kith::v1::ErrorCode;
using sync::MembershipEntry;
using sync::Permission;
using sync::SyncError;

namespace {

[[noreturn]] void refuse(ErrorCode code, const std::string& message) {
  throw Refusal(code, message);
}

bool is_member_now(const sync::MembershipLog& log, const AccountId& account,
                   std::uint64_t now_ms) {
  if (log.owner() && *log.owner() == account) return true;
  for (auto name : sync::kKnownSections) {
    if (log.permission(account, Section::parse(name), {}, now_ms) >= Permission::kRead) {
      return true;
    }
  }
  for (const auto& m : log.members()) {
    if (m.account != account) continue;
    for (const auto& [section, grant] : m.grants) {
      if (log.permission(account, section, {}, now_ms) >= Permission::kRead) return true;
    }
  }
  return false;
}

// The invitation may still be accepted; throws Refusal otherwise.
void check_invite_open_at(const sync::InviteInfo* invite, std::uint64_t now_ms) {
  if (!invite) {
    refuse(ErrorCode::INVITE_UNKNOWN,
           "there is no such invitation in this plan (or no such plan): check the code");
  }
  if (invite->used) {
    refuse(ErrorCode::INVITE_USED, "this invitation has already been used; ask for a new one");
  }
  if (now_ms >= invite->expires_at_ms) {
    refuse(ErrorCode::INVITE_EXPIRED, "this invitation has expired; ask for a new one");
  }
}

// At most this many entries per MembershipBatch, and envelopes, in an answer to RedeemInvite.
constexpr std::size_t kRedeemEntriesPerBatch = 256;

}  // namespace

void SyncService::check_invite_open(const sync::InviteInfo* invite) const {
  check_invite_open_at(invite, options_.now_ms());
}

void SyncService::push_membership(const std::shared_ptr<Peer>& peer, std::uint64_t request_id,
                                  const kith::v1::PushMembership& push) {
  const Who& who = peer->who();
  const PlanId id = PlanId::from_bytes(view(push.plan_id()));
  auto p = plan(id);
  std::unique_lock lock(p->mu);
  ensure_loaded(*p);

  sync::MembershipLog next = p->log ? *p->log : sync::MembershipLog(id);
  std::vector<std::pair<std::uint64_t, Bytes>> added;
  std::vector<MembershipEntry> appended;  // the same entries, parsed (for the plan index)
  for (const std::string& raw : push.entries()) {
    MembershipEntry e;
    try {
      e = MembershipEntry::parse(view(raw));
    } catch (const SyncError& err) {
      throw Refusal(sync::wire::wire_error_code(err.code()), err.what());
    }
    if (e.plan != id) refuse(ErrorCode::MALFORMED, "a membership entry names another plan");
    if (e.author != who.device) {
      refuse(ErrorCode::FORBIDDEN, "membership entries must be pushed by the device that signed them");
    }
    if (e.index < next.size()) {
      // Already in the log: the same bytes are a retry; different bytes lost a race.
      const Bytes& have = e.index < p->entries.size() ? p->entries[e.index] : added.at(e.index - p->entries.size()).second;
      if (have == Bytes(raw.begin(), raw.end())) continue;
      refuse(ErrorCode::MEMBERSHIP_INVALID,
             "membership entry " + std::to_string(e.index) + " is already taken by another "
             "change; sync to receive it, then make your change again on top of it");
    }
    // The log judges an acceptance by the joiner's clock; the server holds it to its own, so
    // an invitee cannot join late by setting their clock back.
    if (e.kind == MembershipEntry::Kind::kInviteAccepted) {
      const sync::InviteInfo* inv = next.invite(e.invite_id);
      if (inv && !inv->used && options_.now_ms() >= inv->expires_at_ms) {
        refuse(ErrorCode::INVITE_EXPIRED, "this invitation has expired; ask for a new one");
      }
    }
    try {
      next.append(e);
    } catch (const SyncError& err) {
      throw Refusal(sync::wire::wire_error_code(err.code()), err.what());
    }
    // An entry that would cut off ops already stored (a revocation or key rotation whose
    // cut-off is behind the server's chains) would make every client refuse those ops.
    for (const auto& [key, tip] : p->tips) {
      if (tip.header.empty()) continue;
      try {
        (void)next.check_op(sync::OpHeader::parse(tip.header));
      } catch (const SyncError&) {
        refuse(ErrorCode::MEMBERSHIP_INVALID,
               "membership entry " + std::to_string(e.index) + " cuts off op " +
                   std::to_string(tip.seq) + " of device " + key.author.short_hex() + " in " +
                   key.section.name() + ", which the server already stored; sync, then make "
                   "the change again");
      }
    }
    added.emplace_back(e.index, Bytes(raw.begin(), raw.end()));
    appended.push_back(std::move(e));
  }

  WriteBatch batch;
  batch.plan = id;
  batch.membership = added;
  if (!appended.empty()) {
    // The account -> plans index changes with the entries, in the same commit.
    const std::uint64_t created_at_ms = p->entries.empty()
                                            ? appended.front().at_ms  // entry 0 is in this push
                                            : MembershipEntry::parse(p->entries.front()).at_ms;
    add_plan_index_changes(next, appended, created_at_ms, batch);
  }
  for (auto& [index, bytes] : added) p->entries.push_back(bytes);
  if (!added.empty()) p->log = std::move(next);
  const std::uint64_t count = p->entries.size();
  const std::uint64_t first_new = count - added.size();

  std::weak_ptr<Peer> weak = peer;
  const std::uint64_t generation = p->generation;
  committer_.submit(std::move(batch), [this, p, weak, request_id, count, first_new, added,
                                       generation](const StorageError* error) {
    if (error) {
      return storage_failed(p, *error, weak, request_id, "membership entries", generation);
    }
    Deliveries out;
    {
      std::lock_guard l(p->mu);
      p->committed_entries = std::max(p->committed_entries, count);
      if (!added.empty()) {
        kith::v1::ServerMessage live;
        auto* b = live.mutable_membership_batch();
        b->set_plan_id(as_string(p->id.bytes()));
        b->set_first_index(first_new);
        for (const auto& [index, bytes] : added) b->add_entries(as_string(bytes));
        const std::uint64_t now = options_.now_ms();
        out = to_subscribers(*p, live, [&](const Who& w) {
          return p->log && is_member_now(*p->log, w.account, now);
        });
      }
    }
    metrics_.membership_entries_accepted += added.size();
    if (auto peer_now = weak.lock()) {
      kith::v1::ServerMessage ack;
      ack.set_request_id(request_id);
      ack.mutable_push_ack()->set_plan_id(as_string(p->id.bytes()));
      ack.mutable_push_ack()->set_membership_count(count);
      peer_now->deliver(std::move(ack));
    }
    send(out);
  }, still_valid(p));
}

void SyncService::push_envelopes(const std::shared_ptr<Peer>& peer, std::uint64_t request_id,
                                 const kith::v1::PushEnvelopes& push) {
  const Who& who = peer->who();
  const PlanId id = PlanId::from_bytes(view(push.plan_id()));
  auto p = plan(id);
  std::unique_lock lock(p->mu);
  ensure_loaded(*p);
  if (!p->log || !p->log->account_of(who.device)) {
    refuse(ErrorCode::NOT_MEMBER, "this device is not a member of plan " + id.short_hex());
  }
  const AccountId account = *p->log->account_of(who.device);
  const std::uint64_t now = options_.now_ms();
  const crypto::DeviceCertificate* mine = p->log->certificate(who.device);
  const sync::InviteInfo* invite = nullptr;
  // Recovery envelopes: every one sealed to this account's recovery box, which its identity key
  // vouches for (the proof, checked against the first envelope's recipient). Only the account's
  // own readers need them, so read is enough.
  const bool recovery = !push.recovery_proof().empty();
  std::optional<crypto::BoxPublicKey> recovery_box;
  if (!push.invite_id().empty()) {
    invite = p->log->invite(sync::OpId::from_bytes(view(push.invite_id())));
    check_invite_open(invite);
    if (invite->author != who.device) {
      refuse(ErrorCode::FORBIDDEN,
             "only the device that wrote an invitation may hand out its keys");
    }
  }

  WriteBatch batch;
  batch.plan = id;
  std::vector<std::pair<Bytes, std::string>> deliver_to;
  for (const std::string& raw : push.envelopes()) {
    std::optional<crypto::Envelope> env;
    try {
      env = crypto::Envelope::parse(view(raw));
    } catch (const crypto::CryptoError&) {
      refuse(ErrorCode::MALFORMED, "an envelope does not parse");
    }
    auto ctx = sync::parse_section_key_context(env->context(), id);
    if (!ctx) refuse(ErrorCode::MALFORMED, "an envelope is not a section key of this plan");
    const auto& [section, epoch] = *ctx;
    if (!mine || !env->verify(mine->device_signing())) {
      refuse(ErrorCode::BAD_SIGNATURE, "envelopes must be signed by the device that pushes them");
    }
    if (recovery) {
      if (!recovery_box) {
        recovery_box = env->recipient();
        if (!crypto::verify_recovery_box(crypto::VerifyKey::parse(account.bytes()), *recovery_box,
                                         view(push.recovery_proof()))) {
          refuse(ErrorCode::BAD_SIGNATURE,
                 "the recovery proof is not your identity key's signature over that recovery key");
        }
      } else if (!(env->recipient() == *recovery_box)) {
        refuse(ErrorCode::MALFORMED,
               "recovery envelopes in one push must all be sealed to the same recovery key");
      }
      if (p->log->permission(account, section, {}, now) < Permission::kRead) {
        refuse(ErrorCode::FORBIDDEN, "you may not read " + section.name() +
                                         ", so you may not keep its key for recovery");
      }
      if (epoch == 0 || epoch > p->log->epoch(section)) {
        refuse(ErrorCode::MALFORMED, "a recovery envelope names a key epoch of " +
                                         section.name() + " that does not exist");
      }
      batch.envelopes.push_back(StoredEnvelope{Bytes(env->recipient().bytes().begin(),
                                                     env->recipient().bytes().end()),
                                               section, epoch, Bytes(raw.begin(), raw.end())});
      continue;
    }
    if (p->log->permission(account, section, {}, now) < Permission::kManage) {
      refuse(ErrorCode::FORBIDDEN, "only a manager of " + section.name() +
                                       " may hand out its key");
    }
    if (invite) {
      // Sealed to the invite's key, for a section it grants, under an epoch that exists.
      const bool granted = std::any_of(invite->grants.begin(), invite->grants.end(),
                                       [&](const sync::GrantSpec& g) {
                                         return g.section == section &&
                                                g.permission >= Permission::kRead;
                                       });
      if (!granted) {
        refuse(ErrorCode::FORBIDDEN, "the invitation does not grant " + section.name());
      }
      if (epoch == 0 || epoch > p->log->epoch(section)) {
        refuse(ErrorCode::MALFORMED, "an invitation's envelope names a key epoch of " +
                                         section.name() + " that does not exist");
      }
      Bytes rcpt(env->recipient().bytes().begin(), env->recipient().bytes().end());
      batch.envelopes.push_back(
          StoredEnvelope{rcpt, section, epoch, Bytes(raw.begin(), raw.end())});
      continue;
    }
    std::optional<AccountId> recipient;
    for (const auto& m : p->log->members()) {
      for (const DeviceId& d : m.devices) {
        const auto* cert = p->log->certificate(d);
        if (cert && cert->device_encryption() == env->recipient()) recipient = m.account;
      }
    }
    if (!recipient) {
      refuse(ErrorCode::NOT_MEMBER, "an envelope is addressed to a device that is not in plan " +
                                        id.short_hex());
    }
    if (p->log->permission(*recipient, section, {}, now) < Permission::kRead) {
      refuse(ErrorCode::FORBIDDEN,
             "an envelope carries the key of " + section.name() + " to a member who may not read it");
    }
    Bytes rcpt(env->recipient().bytes().begin(), env->recipient().bytes().end());
    batch.envelopes.push_back(StoredEnvelope{rcpt, section, epoch, Bytes(raw.begin(), raw.end())});
    deliver_to.emplace_back(rcpt, raw);
  }
  const std::uint32_t stored = static_cast<std::uint32_t>(batch.envelopes.size());
  std::weak_ptr<Peer> weak = peer;
  const std::uint64_t generation = p->generation;
  committer_.submit(std::move(batch), [this, p, weak, request_id, stored, deliver_to,
                                       generation](const StorageError* error) {
    if (error) {
      return storage_failed(p, *error, weak, request_id, "envelopes", generation);
    }
    Deliveries out;
    {
      std::lock_guard l(p->mu);
      for (const auto& [box, raw] : deliver_to) {
        kith::v1::ServerMessage live;
        live.mutable_envelope_batch()->set_plan_id(as_string(p->id.bytes()));
        live.mutable_envelope_batch()->add_envelopes(raw);
        auto more = to_subscribers(*p, live, [&](const Who& w) { return w.box == box; });
        for (auto& d : more) out.push_back(std::move(d));
      }
    }
    metrics_.envelopes_accepted += stored;
    if (auto peer_now = weak.lock()) {
      kith::v1::ServerMessage ack;
      ack.set_request_id(request_id);
      ack.mutable_push_ack()->set_plan_id(as_string(p->id.bytes()));
      ack.mutable_push_ack()->set_envelopes_stored(stored);
      peer_now->deliver(std::move(ack));
    }
    send(out);
  }, still_valid(p));
}

std::vector<kith::v1::ServerMessage> SyncService::redeem_invite(
    const Peer& peer, std::uint64_t request_id, const kith::v1::RedeemInvite& request) {
  const PlanId id = PlanId::from_bytes(view(request.plan_id()));
  const sync::OpId invite_id = sync::OpId::from_bytes(view(request.invite_id()));
  const auto box = crypto::BoxPublicKey::parse(view(request.invite_box_key()));
  auto p = plan(id);
  std::vector<Bytes> entries;
  std::vector<Section> sections;
  std::uint64_t expires_at_ms = 0;
  {
    std::lock_guard lock(p->mu);
    ensure_loaded(*p);
    const sync::InviteInfo* invite = p->log ? p->log->invite(invite_id) : nullptr;
    check_invite_open(invite);
    crypto::Signature proof{};
    std::copy(request.proof().begin(), request.proof().end(), proof.begin());
    const auto key = crypto::VerifyKey::parse(invite->key);
    if (!key.verify(crypto::labels::kInviteRedeem,
                    sync::invite_redeem_message(id, invite_id, peer.who().device, box), proof)) {
      refuse(ErrorCode::BAD_SIGNATURE,
             "the proof does not match this invitation: the code is not the one it was made for");
    }
    // Only what is durable: an entry still in a commit could yet be withdrawn.
    entries.assign(p->entries.begin(),
                   p->entries.begin() + static_cast<std::ptrdiff_t>(std::min<std::uint64_t>(
                                            p->committed_entries, p->entries.size())));
    for (const sync::GrantSpec& g : invite->grants) {
      if (g.permission >= Permission::kRead) sections.push_back(g.section);
    }
    expires_at_ms = invite->expires_at_ms;
  }
  const std::string plan_bytes = as_string(id.bytes());
  std::vector<kith::v1::ServerMessage> out;
  for (std::size_t i = 0; i < entries.size(); i += kRedeemEntriesPerBatch) {
    kith::v1::ServerMessage m;
    m.set_request_id(request_id);
    auto* b = m.mutable_membership_batch();
    b->set_plan_id(plan_bytes);
    b->set_first_index(i);
    for (std::size_t k = i; k < std::min(entries.size(), i + kRedeemEntriesPerBatch); ++k) {
      b->add_entries(as_string(entries[k]));
    }
    out.push_back(std::move(m));
  }
  kith::v1::ServerMessage envelopes;
  envelopes.set_request_id(request_id);
  envelopes.mutable_envelope_batch()->set_plan_id(plan_bytes);
  for (const StoredEnvelope& e : storage_.envelopes_for(id, Bytes(box.bytes().begin(), box.bytes().end()))) {
    if (std::find(sections.begin(), sections.end(), e.section) == sections.end()) continue;
    if (envelopes.envelope_batch().envelopes_size() >= static_cast<int>(kRedeemEntriesPerBatch)) {
      break;
    }
    envelopes.mutable_envelope_batch()->add_envelopes(as_string(e.envelope));
  }
  out.push_back(std::move(envelopes));
  kith::v1::ServerMessage done;
  done.set_request_id(request_id);
  auto* r = done.mutable_invite_redeemed();
  r->set_plan_id(plan_bytes);
  r->set_invite_id(request.invite_id());
  r->set_membership_count(entries.size());
  r->set_expires_at_ms(expires_at_ms);
  out.push_back(std::move(done));
  log::event("invite_redeemed",
             {{"device", peer.who().device.short_hex()}, {"plan", id.short_hex()}});
  return out;
}

kith::v1::ServerMessage SyncService::fetch_log(const Peer& peer, std::uint64_t request_id,
                                               const kith::v1::FetchLog& request) {
  const PlanId id = PlanId::from_bytes(view(request.plan_id()));
  auto p = plan(id);
  {
    std::lock_guard lock(p->mu);
    ensure_loaded(*p);
    if (!p->log || !p->log->account_of(peer.who().device)) {
      refuse(ErrorCode::NOT_MEMBER, "this device is not a member of plan " + id.short_hex());
    }
    if (!p->log->owner() || *p->log->owner() != peer.who().account) {
      refuse(ErrorCode::FORBIDDEN, "only the plan's owner may read its access log");
    }
  }
  const std::size_t limit = request.limit() == 0 ? 500 : request.limit();
  auto records = storage_.fetch_log(id, request.after(), limit + 1);
  kith::v1::ServerMessage out;
  out.set_request_id(request_id);
  auto* log = out.mutable_access_log();
  log->set_plan_id(request.plan_id());
  log->set_more(records.size() > limit);
  if (records.size() > limit) records.resize(limit);
  for (const FetchRecord& r : records) {
    auto* e = log->add_entries();
    e->set_account_id(as_string(r.account.bytes()));
    e->set_device_id(as_string(r.device.bytes()));
    e->set_section(r.section.name());
    e->set_up_to_seq(r.up_to_seq);
    e->set_at_ms(r.at_ms);
    e->set_kind(r.live ? kith::v1::AccessLogEntry::LIVE : kith::v1::AccessLogEntry::CATCH_UP);
  }
  log->set_next_after(records.empty() ? request.after() : records.back().id);
  return out;
}

void SyncService::device_seen(const Who& who, const Bytes& certificate) {
  WriteBatch batch;
  batch.devices.push_back(DeviceRecord{who.device, who.account, certificate, options_.now_ms()});
  committer_.submit(std::move(batch), [](const StorageError* error) {
    if (error) log::event("storage_failed", {{"what", "device record"}, {"error", error->what()}});
  });
}

}  // namespace kith::server
