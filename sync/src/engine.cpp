#include "kith/sync/engine.hpp"

#include <algorithm>
#include <set>
#include <unordered_map>

#include "kith/crypto/error.hpp"
#include "kith/sync/error.hpp"
#include "kith/sync/record_types.hpp"
#include "kith/sync/wire.hpp"

namespace kith::sync {

namespace {

using Kind = MembershipEntry::Kind;

constexpr std::size_t kOpsPerPush = 500;
constexpr std::size_t kEntriesPerPush = 200;

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

Bytes to_bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }
std::string to_wire(ByteView b) { return std::string(b.begin(), b.end()); }

}  // namespace

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

struct SyncEngine::Plan {
  Plan(PlanId id_, std::string title_, const crypto::SigningKey& device)
      : id(id_),
        title(std::move(title_)),
        log(id_),
        keys(id_),
        verifier(id_),
        writer(id_, device) {}
  PlanId id;
  std::string title;
  MembershipLog log;
  KeyRing keys;
  ChainVerifier verifier;
  ChainWriter writer;
  PlanState state;
  HlcClock clock;
  std::uint64_t server_membership = 0;    // entries the server is known to hold
  std::map<OpId, std::uint64_t> pending;  // received ops waiting for a head: their server seq
  // Envelopes made here, not yet stored by the server. Kept in memory only: after a restart a
  // device re-wraps keys when asked again (add_device / rotate_key).
  std::vector<Bytes> outgoing_envelopes;
  std::optional<OpId> last_stored;  // the op most recently put in the store
  std::optional<OpId> saved_upto;   // last_stored when the state was last saved
  bool needs_reseal = false;
  bool needs_rebuild = false;  // an entry arrived that may refuse ops already merged here
};

SyncEngine::SyncEngine(LocalStore& store, DeviceIdentity me, std::function<std::uint64_t()> now_ms)
    : store_(store), me_(std::move(me)), now_ms_(std::move(now_ms)) {
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
  for (const Bytes& e : store_.membership(id)) p->log.append(MembershipEntry::parse(e));
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
      if (s.local_index > watermark) apply_op(*p, AcceptedOp{h, op, hash}, ignored);
    }
  }
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
  plans_[id] = std::move(p);
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

void SyncEngine::append_entry(Plan& p, MembershipEntry& e) {
  e.sign(me_.secrets.device.signing);
  p.log.append(e);
  store_.put_membership_entry(p.id, e.index, e.serialize());
}

void SyncEngine::rotate_key(const PlanId& plan, const Section& section) {
  Plan& p = plan_ref(plan);
  MembershipEntry e = p.log.next(Kind::kKeyRotation, me_.device(), now_ms_());
  e.section = section;
  e.epoch = p.log.epoch(section) + 1;
  for (const MemberView& m : p.log.members()) {
    for (const DeviceId& d : m.devices) {
      std::uint64_t seq = p.verifier.accepted_seq(ChainKey{d, section});
      if (seq > 0) e.cutoffs.push_back({d, section, seq});
    }
  }
  auto key = crypto::SectionKey::generate();
  MembershipLog before = p.log;
  try {
    auto tx = store_.begin();
    append_entry(p, e);
    store_.put_section_key(p.id, section.name(), e.epoch, key);
    tx.commit();
  } catch (...) {
    p.log = std::move(before);
    throw;
  }
  p.keys.add(section, e.epoch, key);
  for (const MemberView& m : p.log.members()) {
    if (p.log.permission(m.account, section, {}, now_ms_()) < Permission::kRead) continue;
    for (const DeviceId& d : m.devices) {
      if (d != me_.device()) wrap_for(p, section, e.epoch, *p.log.certificate(d));
    }
  }
  reseal_outbox(p);
  rebuild_state(p);
}

void SyncEngine::wrap_for(Plan& p, const Section& section, std::uint64_t epoch,
                          const crypto::DeviceCertificate& device) {
  if (!key_for(p, section, epoch)) return;
  p.outgoing_envelopes.push_back(
      p.keys.wrap(section, epoch, device.device_encryption(), me_.secrets.device.signing)
          .serialize());
}

void SyncEngine::add_device(const PlanId& plan, const crypto::DeviceCertificate& certificate) {
  Plan& p = plan_ref(plan);
  MembershipEntry e = p.log.next(Kind::kDeviceAdded, me_.device(), now_ms_());
  e.certificate = certificate;
  MembershipLog before = p.log;
  try {
    auto tx = store_.begin();
    append_entry(p, e);
    tx.commit();
  } catch (...) {
    p.log = std::move(before);
    throw;
  }
  for (std::string_view name : kKnownSections) {
    Section s = Section::parse(name);
    if (p.log.permission(me_.account(), s) < Permission::kRead) continue;
    for (std::uint64_t epoch = 1; epoch <= p.log.epoch(s); ++epoch) {
      wrap_for(p, s, epoch, certificate);
    }
  }
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
  kith::v1::ClientMessage m;
  m.set_request_id(next_request_++);
  auto* s = m.mutable_subscribe();
  s->set_plan_id(to_wire(p.id.bytes()));
  s->set_cursor(store_.cursor(p.id));
  s->set_membership_count(p.log.size());
  // Queued membership entries and envelopes go first: for a plan this device just created, the
  // server knows the plan (and this device as a member) only once its first entry is stored,
  // and it answers a Subscribe to a plan it does not know with NOT_MEMBER.
  std::vector<kith::v1::ClientMessage> out = pushes(plan, /*with_ops=*/false);
  out.push_back(std::move(m));
  return out;
}

std::vector<kith::v1::ClientMessage> SyncEngine::pushes(const PlanId& plan, bool with_ops) {
  Plan& p = plan_ref(plan);
  std::vector<kith::v1::ClientMessage> out;
  auto entries = store_.membership(p.id);
  for (std::size_t i = p.server_membership; i < entries.size(); i += kEntriesPerPush) {
    kith::v1::ClientMessage m;
    m.set_request_id(next_request_++);
    auto* pm = m.mutable_push_membership();
    pm->set_plan_id(to_wire(p.id.bytes()));
    for (std::size_t k = i; k < std::min(entries.size(), i + kEntriesPerPush); ++k) {
      pm->add_entries(to_wire(entries[k]));
    }
    out.push_back(std::move(m));
  }
  if (!p.outgoing_envelopes.empty()) {
    kith::v1::ClientMessage m;
    m.set_request_id(next_request_++);
    auto* pe = m.mutable_push_envelopes();
    pe->set_plan_id(to_wire(p.id.bytes()));
    for (const Bytes& env : p.outgoing_envelopes) pe->add_envelopes(to_wire(env));
    out.push_back(std::move(m));
  }
  if (!with_ops) return out;
  auto queued = store_.outbox_ops(p.id, 100000);
  for (std::size_t i = 0; i < queued.size(); i += kOpsPerPush) {
    kith::v1::ClientMessage m;
    m.set_request_id(next_request_++);
    auto* po = m.mutable_push_ops();
    po->set_plan_id(to_wire(p.id.bytes()));
    std::map<Section, const StoredOp*> last;  // the op each head of this push covers
    for (std::size_t k = i; k < std::min(queued.size(), i + kOpsPerPush); ++k) {
      const StoredOp& s = queued[k];
      auto* w = po->add_ops();
      w->set_header(to_wire(s.header));
      w->set_body(to_wire(s.body));
      Section section = Section::parse(s.section);
      if (!last.count(section) || last[section]->author_seq < s.author_seq) last[section] = &s;
    }
    for (const auto& [section, s] : last) {
      ChainHead head{p.id, section, me_.device(), s->author_seq, op_hash(s->header, s->body)};
      SignedHead signed_head = SignedHead::sign(head, me_.secrets.device.signing);
      auto* h = po->add_heads();
      h->set_head(to_wire(signed_head.head));
      h->set_signature(to_wire(signed_head.signature));
    }
    out.push_back(std::move(m));
  }
  return out;
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
    std::set<RecordId> changed;
    std::set<std::pair<RecordId, std::string>> fields;
    for (const Mutation& m : body->mutations) {
      changed.insert(m.record);
      if (m.kind == Mutation::Kind::kSet) fields.emplace(m.record, m.field);
    }
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
  std::vector<Op> ops;
  std::unordered_map<OpId, std::uint64_t, IdHash> seqs;
  std::vector<std::pair<OpId, std::uint64_t>> own;  // this device's ops, echoed back
  for (const auto& d : batch.ops()) {
    ops.push_back(Op{to_bytes(d.op().header()), to_bytes(d.op().body())});
    try {
      OpHeader h = OpHeader::parse(ops.back().header);
      seqs[h.op_id] = d.server_seq();
      if (h.author == me_.device()) own.emplace_back(h.op_id, d.server_seq());
    } catch (const SyncError&) {
      // Reported by the verifier below.
    }
  }
  std::vector<SignedHead> heads;
  for (const auto& h : batch.heads()) {
    SignedHead s;
    s.head = to_bytes(h.head());
    if (h.signature().size() == s.signature.size()) {
      std::copy(h.signature().begin(), h.signature().end(), s.signature.begin());
    }
    heads.push_back(std::move(s));
  }
  ChainOutcome outcome = p.verifier.add(std::move(ops), heads);
  std::vector<SyncEvent> events;
  for (const ChainProblem& pr : outcome.problems) {
    events.push_back(SyncEvent::problem(p.id, pr.code, pr.message));
  }
  // Remember the server sequence of every op still waiting for its head: the cursor must not
  // pass it, or a restart would never fetch it again.
  std::set<OpId> waiting = p.verifier.pending_op_ids();
  for (const auto& [op_id, seq] : seqs) {
    if (waiting.count(op_id)) p.pending.emplace(op_id, seq);
  }
  for (auto it = p.pending.begin(); it != p.pending.end();) {
    it = waiting.count(it->first) ? std::next(it) : p.pending.erase(it);
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
    auto found = seqs.find(a.header.op_id);
    std::uint64_t seq = found == seqs.end() ? 0 : found->second;
    if (a.header.author == me_.device()) continue;  // restored from our own store
    p.clock.observe(a.header.clock);
    apply_op(p, a, events);
    store_.put_op(StoredOp{p.id, a.header.section.name(), a.header.author, a.header.author_seq,
                           a.header.op_id, seq, std::move(a.op.header), std::move(a.op.body), 0});
    p.last_stored = a.header.op_id;
  }
  std::uint64_t cursor = std::max(store_.cursor(p.id), batch.up_to_seq());
  for (const auto& [op_id, seq] : p.pending) cursor = std::min(cursor, seq > 0 ? seq - 1 : 0);
  store_.set_cursor(p.id, cursor);
  tx.commit();
  for (const SyncEvent& e : events) emit(e);
  if (acked) emit(SyncEvent::acked(p.id, acked));
  emit(SyncEvent::progress(p.id, cursor, batch.more()));
}

void SyncEngine::handle_membership(const kith::v1::MembershipBatch& batch) {
  PlanId id = PlanId::from_bytes(crypto::as_bytes(batch.plan_id()));
  Plan& p = plan_ref(id);
  std::map<Section, std::uint64_t> epochs_before;
  for (std::string_view name : kKnownSections) {
    epochs_before[Section::parse(name)] = p.log.epoch(Section::parse(name));
  }
  auto tx = store_.begin();
  std::uint64_t index = batch.first_index();
  for (const std::string& bytes : batch.entries()) {
    if (index < p.log.size()) {
      ++index;
      continue;
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
      if (e.kind == Kind::kKeyRotation && e.section) epochs_before.try_emplace(*e.section, 0);
      // A reduction of rights or a rotation carries cut-offs: ops merged here before it
      // arrived (this device's own included) may now be refused everywhere.
      if (e.kind == Kind::kGrant || e.kind == Kind::kRevoke || e.kind == Kind::kKeyRotation) {
        p.needs_rebuild = true;
      }
    } catch (const SyncError& e) {
      problem(id, e.code(), e.what());
      break;
    }
    ++index;
  }
  tx.commit();
  p.server_membership = std::max(p.server_membership, index);
  for (const auto& [section, before] : epochs_before) {
    if (p.log.epoch(section) > before) p.needs_reseal = true;
  }
  if (p.needs_rebuild) rebuild_state(p);
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

void SyncEngine::handle_envelopes(const kith::v1::EnvelopeBatch& batch) {
  PlanId id = PlanId::from_bytes(crypto::as_bytes(batch.plan_id()));
  Plan& p = plan_ref(id);
  for (const std::string& bytes : batch.envelopes()) {
    try {
      auto env = crypto::Envelope::parse(crypto::as_bytes(bytes));
      auto [section, epoch] = p.keys.accept(env, p.log, me_.secrets.device.encryption);
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
}

void SyncEngine::handle_ack(const kith::v1::PushAck& ack) {
  PlanId id = PlanId::from_bytes(crypto::as_bytes(ack.plan_id()));
  Plan& p = plan_ref(id);
  auto tx = store_.begin();
  for (const auto& a : ack.acked()) {
    OpId op = OpId::from_bytes(crypto::as_bytes(a.op_id()));
    store_.set_server_seq(id, op, a.server_seq());
    store_.outbox_remove(id, op);
  }
  tx.commit();
  p.server_membership = std::max<std::uint64_t>(p.server_membership, ack.membership_count());
  if (ack.envelopes_stored() >= p.outgoing_envelopes.size()) p.outgoing_envelopes.clear();
  if (ack.acked_size() > 0) {
    emit(SyncEvent::acked(id, static_cast<std::uint64_t>(ack.acked_size())));
  }
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
      handle_ack(message.push_ack());
      break;
    case M::kCatchUpComplete: {
      PlanId id = PlanId::from_bytes(crypto::as_bytes(message.catch_up_complete().plan_id()));
      Plan& p = plan_ref(id);
      emit(SyncEvent::progress(id, store_.cursor(id), false));
      // Queued ops go up only now, once any key rotation they missed has been applied.
      if (p.needs_reseal) {
        reseal_outbox(p);
        rebuild_state(p);  // the re-stamped ops are judged at their new place in the log
      }
      return pushes(id);
    }
    case M::kError: {
      const auto& err = message.error();
      problem({}, SyncErrorCode::kMalformed,
              kith::v1::ErrorCode_Name(err.code()) + ": " + err.message());
      break;
    }
    default:
      break;
  }
  return {};
}

}  // namespace kith::sync
