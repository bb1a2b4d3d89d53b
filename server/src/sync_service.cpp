#include "sync_service.hpp"

#include <algorithm>
#include <set>

#include "kith/crypto/envelope.hpp"
#include "kith/crypto/error.hpp"
#include "kith/sync/error.hpp"
#include "kith/sync/key_ring.hpp"
#include "kith/sync/section_digest.hpp"
#include "kith/sync/wire.hpp"
#include "log.hpp"
#include "sync_service_plan.hpp"

namespace kith::server {

using kith::v1::ErrorCode;
using sync::MembershipEntry;
using sync::OpHeader;
using sync::Permission;
using sync::SyncError;

namespace {

PlanId plan_id(const std::string& bytes) { return PlanId::from_bytes(view(bytes)); }

[[noreturn]] void refuse(ErrorCode code, const std::string& message, const std::string& op = {}) {
  throw Refusal(code, message, op);
}

[[noreturn]] void refuse(const SyncError& e, const std::string& op = {}) {
  throw Refusal(sync::wire::wire_error_code(e.code()), e.what(), op);
}

std::string chain_name(const ChainKey& k) {
  return "device " + k.author.short_hex() + "'s chain in " + k.section.name();
}

}  // namespace

std::vector<Section> readable_sections(const SyncService::Plan& p, const AccountId& account,
                                       std::uint64_t now_ms) {
  std::set<Section> all;
  for (auto name : sync::kKnownSections) all.insert(Section::parse(name));
  for (const auto& [section, sum] : p.sections) all.insert(section);
  std::vector<Section> out;
  if (!p.log) return out;
  for (const Section& s : all) {
    if (p.log->permission(account, s, {}, now_ms) >= Permission::kRead) out.push_back(s);
  }
  return out;
}

SyncService::SyncService(Storage& storage, GroupCommitter& committer, Metrics& metrics,
                         ServiceOptions options)
    : storage_(storage),
      committer_(committer),
      metrics_(metrics),
      options_(std::move(options)),
      next_sweep_at_(options_.max_cached_plans),
      next_sweep_bytes_(options_.max_cached_op_id_bytes) {
  if (!options_.now_ms) {
    options_.now_ms = [] {
      return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count());
    };
  }
}

SyncService::~SyncService() = default;

std::shared_ptr<SyncService::Plan> SyncService::plan(const PlanId& id) {
  std::lock_guard lock(plans_mu_);
  if (auto it = plans_.find(id); it != plans_.end()) return it->second;
  if (plans_.size() >= next_sweep_at_ || cached_id_bytes_.load() >= next_sweep_bytes_) {
    sweep_idle_plans();
  }
  auto p = std::make_shared<Plan>(id);
  plans_.emplace(id, p);
  metrics_.plans_cached = static_cast<std::int64_t>(plans_.size());
  return p;
}

void SyncService::sweep_idle_plans() {
  for (auto it = plans_.begin(); it != plans_.end();) {
    // use_count() 1: nobody else holds it, so nobody holds its mutex either (see plans_).
    if (it->second.use_count() == 1 && it->second->subscribers.empty()) {
      cached_id_bytes_ -= it->second->counted_bytes;
      it = plans_.erase(it);
    } else {
      ++it;
    }
  }
  // If most plans are in use, the next sweep waits until the cache has doubled, so that
  // sweeping stays cheap per plan added.
  next_sweep_at_ = std::max(options_.max_cached_plans, 2 * plans_.size());
  next_sweep_bytes_ = std::max(options_.max_cached_op_id_bytes, 2 * cached_id_bytes_.load());
  metrics_.plans_cached = static_cast<std::int64_t>(plans_.size());
  metrics_.op_id_bytes_cached = static_cast<std::int64_t>(cached_id_bytes_.load());
}

void SyncService::count_id_bytes(Plan& p) {
  const std::size_t now = p.stored_ops.bytes();
  if (now == p.counted_bytes) return;
  cached_id_bytes_ += now - p.counted_bytes;  // modulo 2^64: a set that shrank subtracts
  p.counted_bytes = now;
  metrics_.op_id_bytes_cached = static_cast<std::int64_t>(cached_id_bytes_.load());
}

std::size_t SyncService::cached_plans() {
  std::lock_guard lock(plans_mu_);
  return plans_.size();
}

// Called with p.mu held.
void SyncService::ensure_loaded(Plan& p) {
  if (p.loaded) return;
  auto snap = storage_.load_plan(p.id);
  p.log.reset();
  p.entries.clear();
  p.tips.clear();
  p.sections.clear();
  p.pending.clear();
  p.stored_ops = OpIdSet{};
  if (snap) {
    sync::MembershipLog log(p.id);
    for (const Bytes& e : snap->membership) {
      try {
        log.append(MembershipEntry::parse(e));
      } catch (const SyncError& err) {
        throw StorageError("the server database holds a membership entry of plan " +
                           p.id.short_hex() + " that does not verify (" + err.what() +
                           "); the database is damaged or was changed outside kithd");
      }
    }
    p.log = std::move(log);
    p.entries = std::move(snap->membership);
    for (const auto& [key, tip] : snap->chain_tips) {
      ChainTip t{tip.first, tip.second, {}};
      if (auto h = snap->tip_headers.find(key); h != snap->tip_headers.end()) t.header = h->second;
      p.tips.emplace(key, std::move(t));
    }
    p.sections = std::move(snap->sections);
    for (const OpId& op : snap->op_ids) p.stored_ops.insert(op);
    p.assigned_seq = p.committed_seq = snap->last_seq;
  } else {
    p.assigned_seq = p.committed_seq = 0;
  }
  p.committed_entries = p.entries.size();
  p.loaded = true;
  count_id_bytes(p);
}

void SyncService::storage_failed(const std::shared_ptr<Plan>& p, const StorageError& error,
                                 const std::weak_ptr<Peer>& requester, std::uint64_t request_id,
                                 const char* what, std::uint64_t generation) {
  log::event("storage_failed", {{"plan", p->id.short_hex()}, {"error", error.what()}});
  {
    std::lock_guard lock(p->mu);
    if (p->generation == generation) {
      // The first failure of what this view handed out: what is still queued rests on it and
      // is withdrawn (still_valid), and the view is reloaded from what is durable on next use.
      p->generation += 1;
      p->loaded = false;
    }
  }
  metrics_.rejected("INTERNAL");
  if (auto peer = requester.lock()) {
    peer->deliver(sync::wire::make_error(
        request_id, ErrorCode::INTERNAL,
        std::string("the server could not store the ") + what +
            " (a storage failure); nothing was stored, try again later"));
  }
}

GroupCommitter::StillValid SyncService::still_valid(const std::shared_ptr<Plan>& p) {
  return [p, generation = p->generation.load()] { return p->generation == generation; };
}

// --- Ops -------------------------------------------------------------------------------------

void SyncService::push_ops(const std::shared_ptr<Peer>& peer, std::uint64_t request_id,
                           const kith::v1::PushOps& push) {
  const Who& who = peer->who();
  auto p = plan(plan_id(push.plan_id()));
  std::unique_lock lock(p->mu);
  ensure_loaded(*p);
  if (!p->log || !p->log->account_of(who.device)) {
    refuse(ErrorCode::NOT_MEMBER, "this device is not a member of plan " + p->id.short_hex() +
                                      " (or there is no such plan); ask its owner for an invite");
  }
  const AccountId account = *p->log->account_of(who.device);
  const std::uint64_t now = options_.now_ms();

  struct NewOp {
    OpHeader header;
    sync::OpHash hash;
    const kith::v1::WireOp* wire;
  };
  std::vector<NewOp> fresh;
  std::map<ChainKey, ChainTip> touched;
  std::unordered_map<OpId, std::size_t, sync::IdHash> fresh_index;  // op id -> fresh[i]
  std::vector<std::pair<OpId, std::optional<std::uint64_t>>> acks;  // nullopt: fresh
  bool wait_for_pending = false;

  // Parsed first, so that every op id the plan may already hold is looked up in one read.
  std::vector<NewOp> parsed;
  parsed.reserve(static_cast<std::size_t>(push.ops_size()));
  std::vector<OpId> maybe_stored;
  for (const auto& w : push.ops()) {
    OpHeader h;
    try {
      h = OpHeader::parse(view(w.header()));
    } catch (const SyncError& e) {
      refuse(e);
    }
    if (h.plan != p->id) {
      refuse(ErrorCode::MALFORMED, "an op names another plan", as_string(h.op_id.bytes()));
    }
    if (!p->pending.contains(h.op_id) && p->stored_ops.may_contain(h.op_id)) {
      maybe_stored.push_back(h.op_id);  // else certainly not stored: no read
    }
    parsed.push_back(NewOp{std::move(h), sync::op_hash(view(w.header()), view(w.body())), &w});
  }
  std::unordered_map<OpId, OpRef, sync::IdHash> stored;
  if (!maybe_stored.empty()) {
    auto refs = storage_.find_ops(p->id, maybe_stored);
    for (std::size_t i = 0; i < refs.size(); ++i) {
      if (refs[i]) stored.emplace(maybe_stored[i], std::move(*refs[i]));
    }
  }

  for (NewOp& in : parsed) {
    OpHeader& h = in.header;
    const auto& w = *in.wire;
    const auto& hash = in.hash;
    const std::string op = as_string(h.op_id.bytes());
    const ChainKey key{h.author, h.section};

    // A retried op: acknowledged with its original sequence number, never stored twice.
    std::optional<OpRef> existing;
    if (auto it = p->pending.find(h.op_id); it != p->pending.end()) {
      existing = it->second;
      wait_for_pending = true;
    } else if (auto f = fresh_index.find(h.op_id); f != fresh_index.end()) {
      const NewOp& n = fresh[f->second];
      existing = OpRef{0, n.header.section, n.header.author, n.header.author_seq, n.hash};
    } else if (auto st = stored.find(h.op_id); st != stored.end()) {
      existing = st->second;
    }
    if (existing) {
      if (existing->author != h.author || existing->section != h.section ||
          existing->author_seq != h.author_seq || existing->hash != hash) {
        refuse(ErrorCode::CHAIN_REPLAY,
               "op " + h.op_id.short_hex() + " is already stored with different content or "
               "position; an op id may be used once",
               op);
      }
      acks.emplace_back(h.op_id, existing->seq ? std::optional(existing->seq) : std::nullopt);
      continue;
    }

    if (h.author != who.device) {
      refuse(ErrorCode::FORBIDDEN, "ops must be pushed by the device that wrote them", op);
    }
    try {
      (void)p->log->check_op(h);
    } catch (const SyncError& e) {
      refuse(e, op);
    }
    if (p->log->permission(account, h.section, {}, now) < Permission::kAppend) {
      if (p->log->permission(account, h.section) >= Permission::kAppend) {
        refuse(ErrorCode::GRANT_EXPIRED,
               "your access to " + h.section.name() + " has expired; ask the plan's owner", op);
      }
      refuse(ErrorCode::FORBIDDEN, "you may not change " + h.section.name() + " in this plan", op);
    }
    if (h.epoch < p->log->epoch(h.section)) {
      refuse(ErrorCode::RETIRED_EPOCH,
             "the key of " + h.section.name() + " was rotated; sync to get the new key, re-seal "
             "the op and push it again",
             op);
    }

    ChainTip tip;
    if (auto t = touched.find(key); t != touched.end()) {
      tip = t->second;
    } else if (auto s = p->tips.find(key); s != p->tips.end()) {
      tip = s->second;
    }
    if (h.author_seq > tip.seq + 1) {
      refuse(ErrorCode::CHAIN_GAP,
             chain_name(key) + " skips from " + std::to_string(tip.seq) + " to " +
                 std::to_string(h.author_seq) + "; push the missing ops first",
             op);
    }
    if (h.author_seq <= tip.seq || h.prev != tip.hash) {
      refuse(ErrorCode::CHAIN_FORK,
             "op " + std::to_string(h.author_seq) + " of " + chain_name(key) +
                 " does not follow the op stored before it",
             op);
    }
    touched[key] = ChainTip{h.author_seq, hash, Bytes(w.header().begin(), w.header().end())};
    fresh_index[h.op_id] = fresh.size();
    fresh.push_back(NewOp{std::move(h), hash, &w});
    acks.emplace_back(fresh.back().header.op_id, std::nullopt);
  }

  // Heads: each must be the author's signature over an op of this push (or the stored tip), and
  // every chain this push extends must end in a signed head.
  std::vector<StoredHead> heads;
  std::map<ChainKey, std::uint64_t> covered;
  for (const auto& wh : push.heads()) {
    sync::SignedHead sh;
    sh.head = Bytes(wh.head().begin(), wh.head().end());
    std::copy(wh.signature().begin(), wh.signature().end(), sh.signature.begin());
    sync::ChainHead head;
    try {
      head = sync::ChainHead::parse(sh.head);
    } catch (const SyncError& e) {
      refuse(e);
    }
    const ChainKey key{head.author, head.section};
    if (head.plan != p->id) refuse(ErrorCode::BAD_HEAD, "a pushed head names another plan");
    if (!sh.verify()) {
      refuse(ErrorCode::BAD_SIGNATURE,
             "the signature on the head of " + chain_name(key) + " does not verify");
    }
    bool matches = false;
    if (auto t = touched.find(key); t != touched.end()) {
      for (const NewOp& n : fresh) {
        if (n.header.author == head.author && n.header.section == head.section &&
            n.header.author_seq == head.seq) {
          matches = n.hash == head.hash;
        }
      }
    }
    if (auto s = p->tips.find(key); !matches && s != p->tips.end()) {
      matches = s->second.seq == head.seq && s->second.hash == head.hash;
    }
    if (!matches) {
      refuse(ErrorCode::BAD_HEAD, "the head of " + chain_name(key) + " at " +
                                      std::to_string(head.seq) + " does not match the ops");
    }
    covered[key] = std::max(covered[key], head.seq);
    heads.push_back(StoredHead{head.author, head.section, head.seq, sh.head, sh.signature});
  }
  for (const auto& [key, tip] : touched) {
    if (covered[key] != tip.seq) {
      refuse(ErrorCode::BAD_HEAD, "the push has no signed head covering op " +
                                      std::to_string(tip.seq) + " of " + chain_name(key));
    }
  }

  // Accepted: hand out sequence numbers and queue the writes.
  WriteBatch batch;
  batch.plan = p->id;
  for (NewOp& n : fresh) {
    SectionChecksum& sum = p->sections[n.header.section];
    sum.op_count += 1;
    sum.digest = sync::next_section_digest(sum.digest, n.hash);
    StoredOp s;
    s.seq = ++p->assigned_seq;
    s.op_id = n.header.op_id;
    s.section = n.header.section;
    s.author = n.header.author;
    s.author_seq = n.header.author_seq;
    s.epoch = n.header.epoch;
    s.hash = n.hash;
    s.section_count = sum.op_count;
    s.section_digest = sum.digest;
    s.header = Bytes(n.wire->header().begin(), n.wire->header().end());
    s.body = Bytes(n.wire->body().begin(), n.wire->body().end());
    p->pending[s.op_id] = OpRef{s.seq, s.section, s.author, s.author_seq, s.hash};
    batch.ops.push_back(std::move(s));
  }
  for (auto& [key, tip] : touched) p->tips[key] = std::move(tip);
  batch.heads = heads;

  kith::v1::ServerMessage ack;
  ack.set_request_id(request_id);
  ack.mutable_push_ack()->set_plan_id(push.plan_id());
  for (auto& [id, seq] : acks) {
    auto* a = ack.mutable_push_ack()->add_acked();
    a->set_op_id(as_string(id.bytes()));
    if (seq) {
      a->set_server_seq(*seq);
    } else if (auto f = fresh_index.find(id); f != fresh_index.end()) {
      a->set_server_seq(batch.ops[f->second].seq);
    }
  }
  if (batch.ops.empty() && !wait_for_pending) {
    lock.unlock();
    peer->deliver(std::move(ack));
    return;
  }

  std::weak_ptr<Peer> weak = peer;
  const DeviceId from = who.device;
  const std::size_t accepted = batch.ops.size();
  auto live = std::make_shared<LiveOps>();
  {
    auto* b = live->message.mutable_ops_batch();
    b->set_plan_id(push.plan_id());
    for (const StoredOp& s : batch.ops) {
      auto* d = b->add_ops();
      d->set_server_seq(s.seq);
      d->mutable_op()->set_header(as_string(s.header));
      d->mutable_op()->set_body(as_string(s.body));
      live->op_sections.push_back(s.section);
      live->ids.emplace_back(s.op_id, s.seq);
    }
    for (const StoredHead& h : heads) {
      auto* wh = b->add_heads();
      wh->set_head(as_string(h.head));
      wh->set_signature(std::string(h.signature.begin(), h.signature.end()));
      live->head_sections.push_back(h.section);
    }
    if (!batch.ops.empty()) b->set_up_to_seq(batch.ops.back().seq);
    auto unique_sorted = [](std::vector<Section> v) {
      std::sort(v.begin(), v.end());
      v.erase(std::unique(v.begin(), v.end()), v.end());
      return v;
    };
    live->sections = unique_sorted(live->op_sections);
    live->all_sections = live->op_sections;
    live->all_sections.insert(live->all_sections.end(), live->head_sections.begin(),
                              live->head_sections.end());
    live->all_sections = unique_sorted(std::move(live->all_sections));
    // Serialized here unless nobody else listens now (one may subscribe before the commit:
    // send_ops serializes it then).
    const bool listened = std::ranges::any_of(p->subscribers, [&](const Plan::Subscriber& s) {
      return s.live && s.who.device != from;
    });
    if (listened && !batch.ops.empty()) live->bytes = encode(live->message);
  }
  const std::uint64_t generation = p->generation;
  committer_.submit(std::move(batch), [this, p, weak, ack = std::move(ack), from, accepted, live,
                                       generation](const StorageError* error) mutable {
    if (error) {
      return storage_failed(p, *error, weak, ack.request_id(), "ops", generation);
    }
    FanOut out;
    {
      // One critical section for the new high-water mark and the choice of recipients, so a
      // catch-up going live at the same moment gets these ops exactly once.
      std::lock_guard l(p->mu);
      for (const auto& [id, seq] : live->ids) {
        p->pending.erase(id);
        p->stored_ops.insert(id);
        p->committed_seq = std::max(p->committed_seq, seq);
      }
      count_id_bytes(*p);
      if (!live->ids.empty()) {
        out = fan_out_ops(p, from, live->sections, live->ids.back().second);
      }
    }
    metrics_.ops_accepted += accepted;
    if (auto peer_now = weak.lock()) peer_now->deliver(ack);
    send_ops(*live, out);
  }, still_valid(p));
}

}  // namespace kith::server
