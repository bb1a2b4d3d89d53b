// SyncService: subscriptions, catch-up and live fan-out.
#include <algorithm>
#include <set>

#include "kith/crypto/recovery.hpp"
#include "kith/sync/wire.hpp"
#include "sync_service.hpp"
#include "sync_service_plan.hpp"

namespace kith::server {

using kith::v1::ErrorCode;
using sync::Permission;

namespace {

constexpr std::size_t kEntriesPerBatch = 256;
constexpr std::size_t kEnvelopesPerBatch = 256;

}  // namespace

struct CatchUp::State {
  enum class Phase { kMembership, kEnvelopes, kOps, kDone };
  SyncService* service;
  std::shared_ptr<SyncService::Plan> plan;
  const Peer* key;  // identifies the subscription; never dereferenced (no ownership cycle)
  Who who;
  std::uint64_t request_id;
  std::string plan_bytes;
  Phase phase = Phase::kMembership;
  std::uint64_t next_entry;   // membership index to send next
  std::uint64_t cursor;       // ops sent up to here
  std::uint64_t target;       // committed seq to reach
  std::vector<Section> sections;
  // Whose envelopes to send: the device's encryption key, and the account's recovery box key
  // when the Subscribe proved it.
  std::vector<Bytes> recipients;
  // As strings: GCC 12 at -O3 warns falsely (-Wstringop-overread) on std::set<std::vector<
  // std::uint8_t>>'s comparison.
  std::set<std::string> envelopes_sent;
  std::set<Section> sections_sent;
  std::size_t batch_ops;
};

CatchUp::CatchUp(std::unique_ptr<State> state) : s_(std::move(state)) {}
CatchUp::~CatchUp() = default;

std::unique_ptr<CatchUp> SyncService::subscribe(const std::shared_ptr<Peer>& peer,
                                                std::uint64_t request_id,
                                                const kith::v1::Subscribe& sub) {
  const Who& who = peer->who();
  const PlanId id = PlanId::from_bytes(crypto::as_bytes(sub.plan_id()));
  auto p = plan(id);
  std::lock_guard lock(p->mu);
  ensure_loaded(*p);
  // A device not yet in the log may still read what its account may: a member's new device
  // needs the log before it can add itself (membership kind 2, by the certified device).
  const auto members = p->log ? p->log->members() : std::vector<sync::MemberView>{};
  const bool account_is_member =
      std::any_of(members.begin(), members.end(),
                  [&](const sync::MemberView& m) { return m.account == who.account; });
  if (!p->log || !(p->log->account_of(who.device) || account_is_member)) {
    throw Refusal(ErrorCode::NOT_MEMBER, "this device is not a member of plan " + id.short_hex() +
                                             " (or there is no such plan)");
  }
  const std::uint64_t now = options_.now_ms();
  auto sections = readable_sections(*p, who.account, now);
  const bool owner = p->log->owner() && *p->log->owner() == who.account;
  if (sections.empty() && !owner) {
    bool expired = false;
    for (const auto& m : p->log->members()) {
      if (m.account != who.account) continue;
      for (const auto& [s, g] : m.grants) expired |= g.permission >= Permission::kRead;
    }
    if (expired) {
      throw Refusal(ErrorCode::GRANT_EXPIRED,
                    "your access to plan " + id.short_hex() + " has expired; ask its owner");
    }
    throw Refusal(ErrorCode::NOT_MEMBER,
                  "you no longer have access to plan " + id.short_hex() +
                      "; what you synced before stays on your device");
  }
  std::vector<Bytes> recipients{who.box};
  if (!sub.recovery_box_key().empty()) {
    const auto box = crypto::BoxPublicKey::parse(crypto::as_bytes(sub.recovery_box_key()));
    if (!crypto::verify_recovery_box(crypto::VerifyKey::parse(who.account.bytes()), box,
                                     crypto::as_bytes(sub.recovery_proof()))) {
      throw Refusal(ErrorCode::BAD_SIGNATURE,
                    "the recovery proof is not your identity key's signature over that recovery "
                    "key; subscribe without it or sign it again");
    }
    recipients.emplace_back(sub.recovery_box_key().begin(), sub.recovery_box_key().end());
  }
  auto st = std::make_unique<CatchUp::State>();
  st->service = this;
  st->plan = p;
  st->key = peer.get();
  st->who = who;
  st->request_id = request_id;
  st->plan_bytes = sub.plan_id();
  st->next_entry = std::min<std::uint64_t>(sub.membership_count(), p->committed_entries);
  st->cursor = std::min(sub.cursor(), p->committed_seq);
  st->target = p->committed_seq;
  st->sections = std::move(sections);
  st->recipients = std::move(recipients);
  st->batch_ops = options_.catch_up_batch_ops;
  // Registered now, live only when the catch-up ends (see CatchUp::next).
  auto& subs = p->subscribers;
  subs.erase(std::remove_if(subs.begin(), subs.end(),
                            [&](const Plan::Subscriber& s) { return s.key == peer.get(); }),
             subs.end());
  subs.push_back(Plan::Subscriber{peer, peer.get(), who, false});
  {
    std::lock_guard plans_lock(plans_mu_);  // order: a plan's mu, then plans_mu_
    auto& mine = peer_plans_[peer.get()];
    if (std::find(mine.begin(), mine.end(), id) == mine.end()) mine.push_back(id);
  }
  return std::unique_ptr<CatchUp>(new CatchUp(std::move(st)));
}

std::optional<kith::v1::ServerMessage> CatchUp::next() {
  State& s = *s_;
  Storage& storage = s.service->storage_;
  const PlanId& id = s.plan->id;
  kith::v1::ServerMessage m;
  m.set_request_id(s.request_id);

  while (true) {
    switch (s.phase) {
      case State::Phase::kMembership: {
        std::uint64_t committed;
        {
          std::lock_guard lock(s.plan->mu);
          committed = s.plan->committed_entries;
        }
        if (s.next_entry >= committed) {
          s.phase = State::Phase::kEnvelopes;
          continue;
        }
        auto entries = storage.membership_from(id, s.next_entry, kEntriesPerBatch);
        if (entries.empty()) {
          s.phase = State::Phase::kEnvelopes;
          continue;
        }
        auto* b = m.mutable_membership_batch();
        b->set_plan_id(s.plan_bytes);
        b->set_first_index(s.next_entry);
        for (const Bytes& e : entries) b->add_entries(as_string(e));
        s.next_entry += entries.size();
        return m;
      }
      case State::Phase::kEnvelopes: {
        auto* b = m.mutable_envelope_batch();
        b->set_plan_id(s.plan_bytes);
        for (const Bytes& recipient : s.recipients) {
          for (const StoredEnvelope& e : storage.envelopes_for(id, recipient)) {
            if (b->envelopes_size() >= static_cast<int>(kEnvelopesPerBatch)) break;
            if (std::find(s.sections.begin(), s.sections.end(), e.section) == s.sections.end()) {
              continue;
            }
            if (!s.envelopes_sent.insert(as_string(e.envelope)).second) continue;
            b->add_envelopes(as_string(e.envelope));
          }
        }
        if (b->envelopes_size() > 0) return m;
        m.clear_envelope_batch();
        s.phase = State::Phase::kOps;
        continue;
      }
      case State::Phase::kOps: {
        if (s.cursor >= s.target) {
          // Caught up to the target; finish under the plan's lock so no commit slips between
          // the last batch and going live.
          std::lock_guard lock(s.plan->mu);
          if (s.plan->committed_seq > s.target) {
            s.target = s.plan->committed_seq;
            continue;
          }
          if (s.plan->committed_entries > s.next_entry) {
            s.phase = State::Phase::kMembership;
            continue;
          }
          for (auto& sub : s.plan->subscribers) {
            if (sub.key == s.key) sub.live = true;
          }
          s.phase = State::Phase::kDone;
          auto* done = m.mutable_catch_up_complete();
          done->set_plan_id(s.plan_bytes);
          done->set_server_seq(s.target);
          auto sums = storage.checksums_at(id, s.target);
          const std::uint64_t now = s.service->options_.now_ms();
          for (const Section& section : s.sections) {
            auto it = sums.find(section);
            if (it == sums.end()) continue;
            auto* c = done->add_checksums();
            c->set_section(section.name());
            c->set_op_count(it->second.op_count);
            c->set_digest(as_string(it->second.digest));
            s.service->log_fetch(s.plan, FetchRecord{0, s.who.account, s.who.device, section,
                                                     s.target, now, false});
          }
          return m;
        }
        auto ops = storage.ops_after(id, s.cursor, s.target, s.sections, s.batch_ops);
        auto* b = m.mutable_ops_batch();
        b->set_plan_id(s.plan_bytes);
        std::map<ChainKey, std::uint64_t> top;
        for (const StoredOp& op : ops) {
          auto* d = b->add_ops();
          d->set_server_seq(op.seq);
          d->mutable_op()->set_header(as_string(op.header));
          d->mutable_op()->set_body(as_string(op.body));
          auto& t = top[ChainKey{op.author, op.section}];
          t = std::max(t, op.author_seq);
        }
        for (const auto& [chain, seq] : top) {
          if (auto head = storage.head_at_or_below(id, chain, seq)) {
            auto* h = b->add_heads();
            h->set_head(as_string(head->head));
            h->set_signature(std::string(head->signature.begin(), head->signature.end()));
          }
        }
        const bool full = ops.size() >= s.batch_ops;
        s.cursor = full ? ops.back().seq : s.target;
        b->set_up_to_seq(s.cursor);
        b->set_more(s.cursor < s.target);
        if (ops.empty()) {
          m.clear_ops_batch();
          continue;
        }
        s.service->metrics_.catch_up_bytes += m.ByteSizeLong();
        return m;
      }
      case State::Phase::kDone:
        return std::nullopt;
    }
  }
}

SyncService::Deliveries SyncService::to_subscribers(Plan& p,
                                                    const kith::v1::ServerMessage& message,
                                                    const std::function<bool(const Who&)>& want) {
  Deliveries out;
  Encoded bytes;  // serialized once, for the first subscriber that wants it
  for (const auto& sub : p.subscribers) {
    if (!sub.live || !want(sub.who)) continue;
    auto peer = sub.peer.lock();
    if (!peer) continue;
    if (!bytes) bytes = encode(message);
    out.emplace_back(std::move(peer), bytes);
  }
  return out;
}

SyncService::FanOut SyncService::fan_out_ops(const std::shared_ptr<Plan>& plan,
                                             const DeviceId& from,
                                             const std::vector<Section>& touched,
                                             std::uint64_t up_to_seq) {
  Plan& p = *plan;
  FanOut out;
  if (!p.log || touched.empty()) return out;
  const std::uint64_t now = options_.now_ms();
  for (const auto& sub : p.subscribers) {
    if (!sub.live || sub.who.device == from) continue;
    auto peer = sub.peer.lock();
    if (!peer) continue;
    std::vector<Section> readable;
    for (const Section& s : touched) {
      if (p.log->permission(sub.who.account, s, {}, now) >= Permission::kRead) {
        readable.push_back(s);
      }
    }
    if (readable.empty()) continue;
    for (const Section& s : readable) {
      log_fetch(plan, FetchRecord{0, sub.who.account, sub.who.device, s, up_to_seq, now, true});
    }
    metrics_.fanout_deliveries += 1;
    auto view = std::find_if(out.views.begin(), out.views.end(),
                             [&](const FanOut::View& v) { return v.sections == readable; });
    if (view == out.views.end()) {
      out.views.push_back(FanOut::View{std::move(readable), {}});
      view = std::prev(out.views.end());
    }
    view->peers.push_back(std::move(peer));
  }
  return out;
}

void SyncService::send_ops(LiveOps& live, const FanOut& fan_out) {
  for (const FanOut::View& view : fan_out.views) {
    auto reads = [&](const Section& s) {
      return std::binary_search(view.sections.begin(), view.sections.end(), s);
    };
    Encoded bytes;
    if (std::ranges::all_of(live.all_sections, reads)) {
      if (!live.bytes) live.bytes = encode(live.message);
      bytes = live.bytes;
    } else {
      const auto& all = live.message.ops_batch();
      kith::v1::ServerMessage m;
      auto* b = m.mutable_ops_batch();
      b->set_plan_id(all.plan_id());
      for (int i = 0; i < all.ops_size(); ++i) {
        if (reads(live.op_sections[static_cast<std::size_t>(i)])) *b->add_ops() = all.ops(i);
      }
      for (int i = 0; i < all.heads_size(); ++i) {
        if (reads(live.head_sections[static_cast<std::size_t>(i)])) *b->add_heads() = all.heads(i);
      }
      b->set_up_to_seq(all.up_to_seq());
      bytes = encode(m);
    }
    for (const auto& peer : view.peers) peer->deliver_encoded(bytes);
  }
}

void SyncService::log_fetch(const std::shared_ptr<Plan>& p, const FetchRecord& record) {
  auto [at, fresh] =
      p->unsent_fetches.try_emplace({record.device, record.section, record.live}, record);
  if (!fresh) {
    // The device had everything up to the higher sequence by the later time.
    at->second.up_to_seq = std::max(at->second.up_to_seq, record.up_to_seq);
    at->second.at_ms = std::max(at->second.at_ms, record.at_ms);
  }
  if (p->fetches_queued) return;
  p->fetches_queued = true;
  // One batch per plan per group commit: every record logged until the writer takes it.
  // A failed write loses the records, as a failed fetch-log write always has: the deliveries
  // they describe were made, and the log is not worth failing a push for.
  committer_.submit_deferred(
      [p] {
        WriteBatch batch;
        batch.plan = p->id;
        std::lock_guard lock(p->mu);
        p->fetches_queued = false;
        batch.fetches.reserve(p->unsent_fetches.size());
        for (auto& [key, r] : p->unsent_fetches) batch.fetches.push_back(std::move(r));
        p->unsent_fetches.clear();
        return batch;
      },
      {});
}

void SyncService::send(Deliveries& out) {
  for (auto& [peer, message] : out) peer->deliver_encoded(std::move(message));
  out.clear();
}

Encoded encode(const kith::v1::ServerMessage& message) {
  auto bytes = std::make_shared<std::string>();
  message.SerializeToString(bytes.get());
  return bytes;
}

void SyncService::unsubscribe(const Peer& peer, const PlanId& id) {
  std::shared_ptr<Plan> p;
  {
    std::lock_guard lock(plans_mu_);
    auto mine = peer_plans_.find(&peer);
    if (mine == peer_plans_.end()) return;
    auto& ids = mine->second;
    auto at = std::find(ids.begin(), ids.end(), id);
    if (at == ids.end()) return;  // not subscribed: nothing to do
    ids.erase(at);
    if (ids.empty()) peer_plans_.erase(mine);
    if (auto it = plans_.find(id); it != plans_.end()) p = it->second;
  }
  if (!p) return;
  std::lock_guard lock(p->mu);
  auto& subs = p->subscribers;
  subs.erase(std::remove_if(subs.begin(), subs.end(),
                            [&](const Plan::Subscriber& s) { return s.key == &peer; }),
             subs.end());
}

void SyncService::disconnected(const Peer& peer) {
  std::vector<std::shared_ptr<Plan>> subscribed;
  {
    std::lock_guard lock(plans_mu_);
    auto mine = peer_plans_.find(&peer);
    if (mine == peer_plans_.end()) return;
    for (const PlanId& id : mine->second) {
      if (auto it = plans_.find(id); it != plans_.end()) subscribed.push_back(it->second);
    }
    peer_plans_.erase(mine);
  }
  for (auto& p : subscribed) {
    std::lock_guard lock(p->mu);
    auto& subs = p->subscribers;
    subs.erase(std::remove_if(subs.begin(), subs.end(),
                              [&](const Plan::Subscriber& s) {
                                return s.key == &peer || s.peer.expired();
                              }),
               subs.end());
  }
}

}  // namespace kith::server
