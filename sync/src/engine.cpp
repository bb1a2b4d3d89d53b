#include "kith/sync/engine.hpp"

#include <algorithm>
#include <set>
#include <unordered_map>

#include "engine_plan.hpp"
#include "kith/crypto/error.hpp"
#include "kith/sync/error.hpp"
#include "kith/sync/record_types.hpp"
#include "kith/sync/wire.hpp"

namespace kith::sync {

namespace {

using Kind = MembershipEntry::Kind;

constexpr std::size_t kOpsPerPush = 500;

// The state blob the store keeps: u64(local index of the last op it includes) || canonical.
Bytes state_blob(std::uint64_t watermark, const PlanState& state) {
  crypto::ByteWriter w;
  w.u64(watermark).raw(state.canonical());
  return std::move(w).take();
}

[[noreturn]] void no_plan(const PlanId& plan) {
  throw SyncError(SyncErrorCode::kMalformed,
                  "this device has no plan " + plan.hex() + "; check the id with 'plan list'");
}

}  // namespace

using engine_detail::to_bytes;
using engine_detail::to_wire;

SyncEvent SyncEvent::record_changed(const PlanId& plan, const RecordId& record) {
  SyncEvent e;
  e.kind = Kind::kRecordChanged;
  e.plan = plan;
  e.record = record;
  return e;
}
SyncEvent SyncEvent::conflict(const PlanId& plan, const RecordId& record, std::string field) {
  SyncEvent e = record_changed(plan, record);
  e.kind = Kind::kConflict;
  e.field = std::move(field);
  return e;
}
SyncEvent SyncEvent::problem(const PlanId& plan, SyncErrorCode code, std::string message) {
  SyncEvent e;
  e.kind = Kind::kProblem;
  e.plan = plan;
  e.code = code;
  e.message = std::move(message);
  return e;
}
SyncEvent SyncEvent::progress(const PlanId& plan, std::uint64_t server_seq, bool more) {
  SyncEvent e;
  e.kind = Kind::kProgress;
  e.plan = plan;
  e.server_seq = server_seq;
  e.more = more;
  return e;
}
SyncEvent SyncEvent::acked(const PlanId& plan, std::uint64_t count) {
  SyncEvent e;
  e.kind = Kind::kAcked;
  e.plan = plan;
  e.count = count;
  return e;
}

DeviceIdentity DeviceIdentity::create(crypto::DeviceSecrets secrets, std::uint64_t issued_at) {
  auto cert =
      crypto::DeviceCertificate::issue(secrets.identity, secrets.device.signing.public_key(),
                                       secrets.device.encryption.public_key(), issued_at);
  return DeviceIdentity{std::move(secrets), cert};
}

AccountId DeviceIdentity::account() const {
  return AccountId::from_bytes(secrets.identity.public_key().bytes());
}

crypto::SectionKey DeviceIdentity::storage_key() const {
  static constexpr crypto::KdfContext kStorageContext{"kithstor"};
  return crypto::SectionKey::derive(secrets.device.encryption.secret(), 1, kStorageContext);
}

DeviceId DeviceIdentity::device() const {
  return DeviceId::from_bytes(secrets.device.signing.public_key().bytes());
}

SyncEngine::SyncEngine(LocalStore& store, DeviceIdentity me, std::function<std::uint64_t()> now_ms)
    : store_(store),
      me_(std::move(me)),
      recovery_box_(crypto::recovery_box_key(me_.secrets.identity)),
      recovery_proof_(crypto::sign_recovery_box(me_.secrets.identity, recovery_box_.public_key())),
      now_ms_(std::move(now_ms)) {
  for (auto& [id, title] : store_.plans()) load(id, title);
}

SyncEngine::~SyncEngine() {
  try {
    flush();
  } catch (...) {
    // The ops and cursors are already durable; the saved state is only a head start for the
    // next load, which replays whatever the state does not include.
  }
}

void SyncEngine::flush() {
  for (auto& [id, p] : plans_) {
    auto tx = store_.begin();
    save_state(*p);
    tx.commit();
  }
}

SyncEngine::Plan& SyncEngine::plan_ref(const PlanId& plan) const {
  auto it = plans_.find(plan);
  if (it == plans_.end()) no_plan(plan);
  return *it->second;
}

void SyncEngine::load(const PlanId& id, std::string title) {
  auto p = std::make_unique<Plan>(id, std::move(title), me_.secrets.device.signing);
  for (const Bytes& bytes : store_.membership(id)) {
    MembershipEntry e = MembershipEntry::parse(bytes);
    p->log.append(e);
    // Another device's entry came from the server, and so did everything before it. This
    // device's own ones after it may never have reached it.
    if (e.author != me_.device()) p->server_membership = e.index + 1;
  }
  p->digest_seq = store_.digest_seq(id);
  for (const StoredSectionDigest& d : store_.section_digests(id)) {
    p->digests[Section::parse(d.section)] = d.digest;
  }
  std::uint64_t watermark = 0;
  if (auto blob = store_.load_plan_state(id)) {
    crypto::ByteReader r(blob->view(), "saved plan state");
    watermark = r.u64();
    p->state = PlanState::parse(r.raw(r.remaining()));
  }
  std::vector<SyncEvent> ignored;
  std::uint64_t after = 0;
  for (;;) {
    auto batch = store_.ops(id, after, 1000);
    if (batch.empty()) break;
    for (const StoredOp& s : batch) {
      after = s.local_index;
      p->last_stored = s.op_id;
      Op op{s.header, s.body};
      OpHeader h = OpHeader::parse(s.header);
      OpHash hash = op.hash();
      p->verifier.restore(h, hash);
      if (h.author == me_.device()) p->writer.restore(h.section, h.author_seq, hash);
      p->clock.observe(h.clock);
      p->hold_for_digest(s.server_seq, h.section, hash);
      if (s.local_index > watermark) apply_op(*p, AcceptedOp{h, op, hash}, ignored);
    }
  }
  // Usually nothing to add: the digests were stored with the cursor. A plan stored before the
  // store kept digests (schema 4) gets them here, from its ops; they are saved with the next
  // cursor.
  p->fold_digests(store_.cursor(id));
  plans_[id] = std::move(p);
}

const crypto::SectionKey* SyncEngine::key_for(Plan& p, const Section& section,
                                              std::uint64_t epoch) {
  if (const auto* k = p.keys.find(section, epoch)) return k;
  if (auto k = store_.section_key(p.id, section.name(), epoch)) {
    p.keys.add(section, epoch, *k);
    return p.keys.find(section, epoch);
  }
  return nullptr;
}

void SyncEngine::problem(const PlanId& plan, SyncErrorCode code, const std::string& message) const {
  emit(SyncEvent::problem(plan, code, message));
}

PlanId SyncEngine::create_plan(std::string_view title) {
  PlanId id = PlanId::random();
  auto p = std::make_unique<Plan>(id, std::string(title), me_.secrets.device.signing);
  auto tx = store_.begin();
  store_.put_plan(id, title);
  MembershipEntry e = p->log.next(Kind::kPlanCreated, me_.device(), now_ms_());
  e.certificate = me_.certificate;
  e.sign(me_.secrets.device.signing);
  p->log.append(e);
  store_.put_membership_entry(id, 0, e.serialize());
  for (std::string_view name : kKnownSections) {
    Section s = Section::parse(name);
    auto key = crypto::SectionKey::generate();
    store_.put_section_key(id, s.name(), 1, key);
    p->keys.add(s, 1, key);
  }
  store_.save_plan_state(id, state_blob(0, p->state));
  tx.commit();
  Plan& made = *p;
  plans_[id] = std::move(p);
  share_name_if_unshared(made);
  return id;
}

void SyncEngine::follow(const PlanId& plan, std::string_view title) {
  if (plans_.count(plan)) return;
  store_.put_plan(plan, title);
  plans_[plan] = std::make_unique<Plan>(plan, std::string(title), me_.secrets.device.signing);
}

void SyncEngine::author(Plan& p, const Section& section, std::vector<Mutation> mutations) {
  OpHeader h;
  h.plan = p.id;
  h.op_id = OpId::random();
  h.section = section;
  h.epoch = p.log.epoch(section);
  h.clock = p.clock.tick(now_ms_());
  h.membership_index = p.log.size();
  p.writer.stamp(h);
  AuthorRights rights = p.log.check_op(h);
  const crypto::SectionKey* key = key_for(p, section, h.epoch);
  if (!key) {
    throw SyncError(SyncErrorCode::kUnknownEpoch,
                    "this device has no key for " + section.name() + "; sync to receive it");
  }
  OpBody body{std::move(mutations)};
  Op op = seal_op(h, body, *key);
  p.state.apply(h, body, rights);  // checks the whole op before it changes anything
  try {
    auto tx = store_.begin();
    store_.put_op(
        StoredOp{p.id, section.name(), h.author, h.author_seq, h.op_id, 0, op.header, op.body, 0});
    store_.outbox_add(p.id, h.op_id);
    tx.commit();
    p.last_stored = h.op_id;
  } catch (...) {
    // The store refused the write: rebuild this plan from what is stored (`p` goes with it).
    PlanId id = p.id;
    std::string title = p.title;
    plans_.erase(id);
    load(id, std::move(title));
    throw;
  }
  p.writer.append(h, op);
  p.verifier.restore(h, op.hash());
  std::set<RecordId> changed;
  for (const Mutation& m : body.mutations) changed.insert(m.record);
  for (const RecordId& r : changed) emit(SyncEvent::record_changed(p.id, r));
}

RecordId SyncEngine::add_record(const PlanId& plan, std::string_view type_name,
                                const Fields& fields) {
  Plan& p = plan_ref(plan);
  const RecordType* type = find_record_type(type_name);
  if (!type) {
    std::string known;
    for (const auto& t : record_types()) {
      if (!known.empty()) known.append(", ");
      known.append(t.name);
    }
    throw SyncError(SyncErrorCode::kInvalidField,
                    "'" + std::string(type_name) + "' is not a record type; use one of: " + known);
  }
  RecordId id = RecordId::random();
  std::vector<Mutation> muts{{Mutation::Kind::kCreate, id, std::string(type_name), "", "", {}}};
  for (const auto& [field, value] : fields) {
    if (auto bad = check_field(*type, field, value))
      throw SyncError(SyncErrorCode::kInvalidField, *bad);
    muts.push_back({Mutation::Kind::kSet, id, "", field, value, {}});
  }
  author(p, Section::parse(type->section), std::move(muts));
  return id;
}

void SyncEngine::set_fields(const PlanId& plan, const RecordId& record, const Fields& fields) {
  Plan& p = plan_ref(plan);
  auto r = p.state.record(record);
  if (!r) {
    throw SyncError(SyncErrorCode::kMalformed,
                    "this device has no record " + record.hex() + " in the plan");
  }
  const RecordType* type = find_record_type(r->type);
  if (type && type->append_only) {
    throw SyncError(SyncErrorCode::kForbidden,
                    "a " + r->type + " is kept as written and cannot be edited; add a new one");
  }
  std::vector<Mutation> muts;
  for (const auto& [field, value] : fields) {
    if (field != kDeletedField && type) {
      if (auto bad = check_field(*type, field, value))
        throw SyncError(SyncErrorCode::kInvalidField, *bad);
    }
    muts.push_back(
        {Mutation::Kind::kSet, record, "", field, value, p.state.current_versions(record, field)});
  }
  author(p, r->section, std::move(muts));
}

void SyncEngine::delete_record(const PlanId& plan, const RecordId& record) {
  set_fields(plan, record, {{std::string(kDeletedField), "1"}});
}

std::vector<std::pair<PlanId, std::string>> SyncEngine::plans() const {
  std::vector<std::pair<PlanId, std::string>> out;
  for (const auto& [id, p] : plans_) out.emplace_back(id, p->title);
  return out;
}

const PlanState& SyncEngine::state(const PlanId& plan) const { return plan_ref(plan).state; }
const MembershipLog& SyncEngine::membership(const PlanId& plan) const { return plan_ref(plan).log; }
std::size_t SyncEngine::outbox_size(const PlanId& plan) const {
  plan_ref(plan);
  return store_.outbox(plan).size();
}
std::uint64_t SyncEngine::cursor(const PlanId& plan) const {
  plan_ref(plan);
  return store_.cursor(plan);
}

std::vector<kith::v1::ClientMessage> SyncEngine::subscribe(const PlanId& plan) {
  Plan& p = plan_ref(plan);
  // A new conversation: answers to pushes made before it will not come.
  p.sent.clear();
  p.envelopes_in_flight.clear();
  p.caught_up = false;
  kith::v1::ClientMessage m;
  m.set_request_id(next_request_++);
  auto* s = m.mutable_subscribe();
  s->set_plan_id(to_wire(p.id.bytes()));
  s->set_cursor(store_.cursor(p.id));
  // The log from the first entry the server may not hold as it is here: if it kept another entry
  // at the place of one of this device's, that one comes back, and this device's is made again.
  s->set_membership_count(p.server_membership);
  // The catch-up then also brings this account's recovery envelopes.
  s->set_recovery_box_key(to_wire(recovery_box_.public_key().bytes()));
  s->set_recovery_proof(to_wire(crypto::ByteView(recovery_proof_.data(), recovery_proof_.size())));
  std::vector<kith::v1::ClientMessage> out;
  // For a plan of which the server may hold nothing (one this device just created), its entries
  // go first: the server answers a Subscribe to a plan it does not know with NOT_MEMBER.
  // Otherwise they wait for the catch-up, which may bring entries that came first.
  // The same holds for a plan this device joined, until the server has its join entry.
  if (p.server_membership == 0 || !p.log.account_of(me_.device(), p.server_membership)) {
    push_entries(p, out, /*remake=*/false);
  }
  out.push_back(std::move(m));
  return out;
}

std::vector<kith::v1::ClientMessage> SyncEngine::pushes(const PlanId& plan, bool with_ops) {
  Plan& p = plan_ref(plan);
  std::vector<kith::v1::ClientMessage> out;
  push_entries(p, out, /*remake=*/true);
  push_envelopes(p, out);
  if (with_ops) push_ops(p, out);
  return out;
}

// Ops go only once the server holds every membership entry of this device: an op sealed under
// the key of a rotation that then lost a race for its place in the log would be stored under an
// epoch that names another key. They follow the acknowledgement (handle_ack).
void SyncEngine::push_ops(Plan& p, std::vector<kith::v1::ClientMessage>& out) {
  if (p.server_membership < p.log.size()) return;
  auto queued = store_.outbox_ops(p.id, 100000);
  for (std::size_t i = 0; i < queued.size(); i += kOpsPerPush) {
    kith::v1::ClientMessage m;
    m.set_request_id(next_request_++);
    auto* po = m.mutable_push_ops();
    po->set_plan_id(to_wire(p.id.bytes()));
    std::map<std::string, const StoredOp*> last;  // the op each head of this push covers
    for (std::size_t k = i; k < std::min(queued.size(), i + kOpsPerPush); ++k) {
      const StoredOp& s = queued[k];
      auto* w = po->add_ops();
      w->set_header(to_wire(s.header));
      w->set_body(to_wire(s.body));
      const StoredOp*& covered = last[s.section];
      if (!covered || covered->author_seq < s.author_seq) covered = &s;
    }
    for (const auto& [name, s] : last) {
      Section section = Section::parse(name);
      // Usually the push ends at the chain's tip, whose hash the writer holds; a push split
      // before the tip hashes the op it ends at.
      SignedHead signed_head =
          p.writer.tip_seq(section) == s->author_seq
              ? *p.writer.head(section)
              : SignedHead::sign(ChainHead{p.id, section, me_.device(), s->author_seq,
                                           op_hash(s->header, s->body)},
                                 me_.secrets.device.signing);
      auto* h = po->add_heads();
      h->set_head(to_wire(signed_head.head));
      h->set_signature(to_wire(signed_head.signature));
    }
    out.push_back(std::move(m));
  }
}

void SyncEngine::apply_op(Plan& p, const AcceptedOp& a, std::vector<SyncEvent>& events) {
  try {
    AuthorRights rights = p.log.check_op(a.header);
    const crypto::SectionKey* key = key_for(p, a.header.section, a.header.epoch);
    if (!key) {
      throw SyncError(SyncErrorCode::kUnknownEpoch, "no key for " + a.header.section.name() +
                                                        " epoch " + std::to_string(a.header.epoch) +
                                                        " on this device");
    }
    auto body = open_op(a.op, *key);
    if (!body) {
      throw SyncError(SyncErrorCode::kDecryptFailed,
                      "an op in " + a.header.section.name() + " did not decrypt; it was ignored");
    }
    // The records and fields it touches, for the events: sorted vectors, since an op usually
    // has one or two mutations and a set would allocate per entry.
    std::vector<RecordId> changed;
    std::vector<std::pair<RecordId, std::string>> fields;
    changed.reserve(body->mutations.size());
    for (const Mutation& m : body->mutations) {
      changed.push_back(m.record);
      if (m.kind == Mutation::Kind::kSet) fields.emplace_back(m.record, m.field);
    }
    std::sort(changed.begin(), changed.end());
    changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
    std::sort(fields.begin(), fields.end());
    fields.erase(std::unique(fields.begin(), fields.end()), fields.end());
    p.state.apply(a.header, std::move(*body), rights);
    for (const RecordId& r : changed) events.push_back(SyncEvent::record_changed(p.id, r));
    for (const auto& [r, field] : fields) {
      if (p.state.in_conflict(r, field)) events.push_back(SyncEvent::conflict(p.id, r, field));
    }
  } catch (const SyncError& e) {
    events.push_back(SyncEvent::problem(p.id, e.code(), e.what()));
  }
}

void SyncEngine::handle_ops(const kith::v1::OpsBatch& batch) {
  PlanId id = PlanId::from_bytes(crypto::as_bytes(batch.plan_id()));
  Plan& p = plan_ref(id);
  std::vector<SyncEvent> events;
  // Each header is parsed (and each op hashed) once, here; the verifier works on the result.
  std::vector<ParsedOp> ops;
  ops.reserve(static_cast<std::size_t>(batch.ops_size()));
  // Each op's server sequence, and what the section digests need once the op is held.
  struct Received {
    std::uint64_t seq;
    ChainKey chain;
    std::uint64_t author_seq;
    OpHash hash;
  };
  std::unordered_map<OpId, Received, IdHash> seqs;
  seqs.reserve(static_cast<std::size_t>(batch.ops_size()));
  std::vector<std::pair<OpId, std::uint64_t>> own;  // this device's ops, echoed back
  for (const auto& d : batch.ops()) {
    try {
      ParsedOp op = ParsedOp::parse(Op{to_bytes(d.op().header()), to_bytes(d.op().body())});
      seqs.emplace(op.header.op_id,
                   Received{d.server_seq(), ChainKey{op.header.author, op.header.section},
                            op.header.author_seq, op.hash});
      if (op.header.author == me_.device()) own.emplace_back(op.header.op_id, d.server_seq());
      ops.push_back(std::move(op));
    } catch (const SyncError& e) {
      events.push_back(SyncEvent::problem(p.id, SyncErrorCode::kMalformed, e.what()));
    }
  }
  std::vector<SignedHead> heads;
  heads.reserve(static_cast<std::size_t>(batch.heads_size()));
  for (const auto& h : batch.heads()) {
    SignedHead s;
    s.head = to_bytes(h.head());
    if (h.signature().size() == s.signature.size()) {
      std::copy(h.signature().begin(), h.signature().end(), s.signature.begin());
    }
    heads.push_back(std::move(s));
  }
  ChainOutcome outcome = p.verifier.add_parsed(std::move(ops), heads);
  const bool received_again = outcome.duplicates > 0;
  for (const ChainProblem& pr : outcome.problems) {
    events.push_back(SyncEvent::problem(p.id, pr.code, pr.message));
  }
  std::uint64_t acked = 0;
  // Everything in a batch can be fetched again: relaxed durability, with the cursor in the same
  // transaction, so a power cut can only roll both back together.
  auto tx = store_.begin(LocalStore::Durability::kRelaxed);
  if (!own.empty()) {
    auto queued = store_.outbox(p.id);
    std::set<OpId> in_outbox(queued.begin(), queued.end());
    for (const auto& [op_id, seq] : own) {
      // The server has our op (its ack may have been lost): it leaves the outbox.
      store_.set_server_seq(p.id, op_id, seq);
      if (in_outbox.count(op_id)) {
        store_.outbox_remove(p.id, op_id);
        ++acked;
      }
    }
  }
  for (AcceptedOp& a : outcome.accepted) {
    if (a.header.author == me_.device()) continue;  // restored from our own store
    // Its server sequence: from this batch, or remembered while it waited for its head.
    std::uint64_t seq = 0;
    if (auto found = seqs.find(a.header.op_id); found != seqs.end()) {
      seq = found->second.seq;
      if (received_again) seqs.erase(found);  // held now; what is left below was held before
    } else if (auto waited = p.pending.find(a.header.op_id); waited != p.pending.end()) {
      seq = waited->second;
    }
    p.hold_for_digest(seq, a.header.section, a.hash);
    p.clock.observe(a.header.clock);
    apply_op(p, a, events);
    store_.put_op(StoredOp{p.id, a.header.section.name(), a.header.author, a.header.author_seq,
                           a.header.op_id, seq, std::move(a.op.header), std::move(a.op.body), 0});
    p.last_stored = a.header.op_id;
  }
  // Ops this device held already (its own echoed back, or a batch sent again: after a restart,
  // in a full re-fetch) count for the digests at the sequence the server gives them now, which
  // the store keeps for the next start.
  if (received_again) {
    for (const auto& [op_id, r] : seqs) {
      if (!p.verifier.holds(r.chain, r.author_seq, r.hash)) continue;  // waiting, or refused
      p.hold_for_digest(r.seq, r.chain.section, r.hash);
      if (r.chain.author != me_.device()) store_.set_server_seq(p.id, op_id, r.seq);
    }
  }
  // Remember the server sequence of every op still waiting for its head: the cursor must not
  // pass it, or a restart would never fetch it again. (Nothing to do in the usual case, where
  // every op of the batch was covered.)
  if (p.verifier.pending_ops() > 0 || !p.pending.empty()) {
    std::set<OpId> waiting = p.verifier.pending_op_ids();
    for (const auto& [op_id, r] : seqs) {
      if (waiting.count(op_id)) p.pending.emplace(op_id, r.seq);
    }
    for (auto it = p.pending.begin(); it != p.pending.end();) {
      it = waiting.count(it->first) ? std::next(it) : p.pending.erase(it);
    }
  }
  std::uint64_t cursor = std::max(store_.cursor(p.id), batch.up_to_seq());
  for (const auto& [op_id, seq] : p.pending) cursor = std::min(cursor, seq > 0 ? seq - 1 : 0);
  store_.set_cursor(p.id, cursor);
  // The digests move with the cursor, in its transaction: every op up to it is held.
  p.fold_digests(cursor);
  save_digests(p);
  tx.commit();
  for (const SyncEvent& e : events) emit(e);
  if (acked) emit(SyncEvent::acked(p.id, acked));
  emit(SyncEvent::progress(p.id, cursor, batch.more()));
}

// Merges every stored op again, each judged by the membership log as it stands now, so that
// this device shows exactly what every other device that applies the same log shows — even
// when a later entry refuses an op this device had already merged (its own ones included).
void SyncEngine::rebuild_state(Plan& p) {
  p.needs_rebuild = false;
  p.state = PlanState();
  std::vector<SyncEvent> ignored;
  std::uint64_t after = 0;
  for (;;) {
    auto batch = store_.ops(p.id, after, 1000);
    if (batch.empty()) break;
    for (const StoredOp& s : batch) {
      after = s.local_index;
      Op op{s.header, s.body};
      OpHeader h = OpHeader::parse(s.header);
      apply_op(p, AcceptedOp{h, op, op.hash()}, ignored);
    }
  }
  p.saved_upto.reset();
}

// Saves the merged state with the local index of the last op it includes, so a restart replays
// only the ops stored after it.
void SyncEngine::save_state(Plan& p) {
  if (!p.last_stored || p.saved_upto == p.last_stored) return;  // nothing new to save
  std::uint64_t watermark = 0;
  if (auto op = store_.op(p.id, *p.last_stored)) watermark = op->local_index;
  store_.save_plan_state(p.id, state_blob(watermark, p.state));
  p.saved_upto = p.last_stored;
}

void SyncEngine::reseal_outbox(Plan& p) {
  p.needs_reseal = false;
  auto queued = store_.outbox_ops(p.id, 100000);
  // Per section, the queued tail of this device's chain is re-stamped from its first op on.
  std::map<Section, std::vector<StoredOp>> tails;
  for (StoredOp& s : queued) tails[Section::parse(s.section)].push_back(std::move(s));
  for (auto& [section, ops] : tails) {
    std::uint64_t epoch = p.log.epoch(section);
    bool stale = std::any_of(ops.begin(), ops.end(), [&](const StoredOp& s) {
      return OpHeader::parse(s.header).epoch != epoch;
    });
    if (!stale) continue;
    const crypto::SectionKey* new_key = key_for(p, section, epoch);
    if (!new_key) {
      problem(p.id, SyncErrorCode::kUnknownEpoch,
              "queued changes in " + section.name() + " wait for the new key");
      continue;
    }
    for (auto it = ops.rbegin(); it != ops.rend(); ++it) {
      p.verifier.forget_last(OpHeader::parse(it->header));
    }
    OpHeader first = OpHeader::parse(ops.front().header);
    p.writer.restore(section, first.author_seq - 1, first.prev);
    auto tx = store_.begin();
    for (const StoredOp& s : ops) {
      OpHeader h = OpHeader::parse(s.header);
      const crypto::SectionKey* old_key = key_for(p, section, h.epoch);
      auto body = old_key ? open_op(Op{s.header, s.body}, *old_key) : std::nullopt;
      if (auto lost = p.lost_keys.find({section, h.epoch}); !body && lost != p.lost_keys.end()) {
        body = open_op(Op{s.header, s.body}, lost->second);
      }
      h.epoch = epoch;
      h.membership_index = p.log.size();
      p.writer.stamp(h);
      try {
        if (!body) throw SyncError(SyncErrorCode::kDecryptFailed, "a queued change did not open");
        p.log.check_op(h);
      } catch (const SyncError& e) {
        problem(p.id, e.code(),
                std::string("a change made offline could not be sent: ") + e.what());
        store_.outbox_remove(p.id, s.op_id);
        continue;
      }
      Op op = seal_op(h, *body, *new_key);
      store_.replace_op_body(p.id, s.op_id, op.header, op.body);
      p.writer.append(h, op);
      p.verifier.restore(h, op.hash());
    }
    tx.commit();
  }
}

std::vector<kith::v1::ClientMessage> SyncEngine::handle(const kith::v1::ServerMessage& message) {
  using M = kith::v1::ServerMessage;
  // Answers to a RedeemInvite belong to a join under way, for a plan not held yet.
  if (auto it = joins_.find(message.request_id()); it != joins_.end() && message.request_id()) {
    bool done = false;
    auto out = handle_join(*it->second, message, done);
    if (done) joins_.erase(it);
    return out;
  }
  switch (message.body_case()) {
    case M::kOpsBatch:
      handle_ops(message.ops_batch());
      break;
    case M::kMembershipBatch:
      handle_membership(message.membership_batch());
      break;
    case M::kEnvelopeBatch:
      handle_envelopes(message.envelope_batch());
      break;
    case M::kPushAck:
      return handle_ack(message.push_ack(), message.request_id());
    case M::kCatchUpComplete: {
      PlanId id = PlanId::from_bytes(crypto::as_bytes(message.catch_up_complete().plan_id()));
      Plan& p = plan_ref(id);
      p.caught_up = true;
      emit(SyncEvent::progress(id, store_.cursor(id), false));
      // A checksum that differs starts a full re-fetch; pushes wait for its end.
      if (auto again = check_checksums(p, message.catch_up_complete()); !again.empty()) {
        return again;
      }
      // Queued ops go up only now, once any key rotation they missed has been applied.
      if (p.needs_reseal) {
        reseal_outbox(p);
        rebuild_state(p);  // the re-stamped ops are judged at their new place in the log
      }
      share_name_if_unshared(p);
      return pushes(id);
    }
    case M::kError:
      handle_error(message);
      break;
    case M::kAccessLog:
      return handle_access_log(message.access_log());
    default:
      break;
  }
  return {};
}

}  // namespace kith::sync
