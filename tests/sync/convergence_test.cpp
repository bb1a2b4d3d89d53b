// Convergence property test: seeded random schedules through the real sync pipeline.
//
// Each replica is one device of one account. It authors ops with ChainWriter (stamp, seal_op
// under the section key, append), applies them to its own PlanState at once, and pushes them
// with one signed head per section per push to a simulated server: a total-order log of ops
// and heads. Pulling copies the log after the replica's cursor into its network inbox, where
// the ops of one pull are spread over a few batches in a random order, some twice, and some
// heads come one or two batches after the last op they cover (the ops wait as pending). Old
// entries are sometimes delivered again. Each delivered batch goes through the replica's
// ChainVerifier; every accepted op is opened with open_op and applied to the PlanState.
//
// The schedule mixes creating records (health, support, outcome), editing fields of records
// the replica can see (naming `current_versions` as seen, so edits of replicas that have not
// synced are concurrent and conflict), appending activity records and notes, deleting
// (`_deleted` = "1"), resolving conflicts, going offline, pushing, pulling and delivering.
//
// Rights come from the real membership log. The owner's first device creates the plan; every
// other account joins through an invite granting every section (write, or append for family);
// further devices are added by their account's first device. Each replica keeps its own copy of
// the log, brought up to the server's before each pull (as the server sends membership before
// ops). An op carries the log size its author had seen and every replica judges it with
// MembershipLog::check_op. A rights drop is a real grant entry per section (write -> append)
// written by the owner's first device, with cut-offs from what that device has accepted: ops of
// the member beyond them are refused everywhere, the author's own view included, so a replica
// that learns of such an entry re-judges every op it holds. Every member holds every section's
// key (epoch 1).
//
// At the end every replica comes online and pushes, pulls and delivers until nothing moves.
// Then every replica's canonical() bytes and conflicts() must be equal, nothing may be left
// pending, and no ChainProblem (nor an open or apply failure) may have been reported.
//
// Environment:
//   KITH_CONVERGENCE_SCHEDULES=N    play N schedules (default 200); seeds FIRST..FIRST+N-1
//   KITH_CONVERGENCE_FIRST_SEED=S   first seed (default 1)
//   KITH_CONVERGENCE_SEED=S         play only seed S (what a failure message tells you to run)
//   KITH_CONVERGENCE_STEPS=K        steps per schedule (default 160), to shrink a failing one
//   KITH_CONVERGENCE_TRACE=1        print every step of the schedules played
// Every id and key is drawn from the seed, so a seed replays the same schedule and ends in
// the same canonical bytes (only the AEAD nonces, which no decision depends on, differ).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "kith/crypto/aead.hpp"
#include "kith/crypto/sign.hpp"
#include "kith/sync/chain.hpp"
#include "kith/sync/error.hpp"
#include "kith/sync/ids.hpp"
#include "kith/sync/membership.hpp"
#include "kith/sync/op.hpp"
#include "kith/sync/plan_state.hpp"
#include "kith/sync/record_types.hpp"
#include "kith/sync/section.hpp"

namespace kith::sync {
namespace {

using Rng = std::mt19937_64;

constexpr const char* kSections[] = {"health", "support", "outcomes", "notes", "activity"};
constexpr const char* kEditableTypes[] = {"health", "support", "outcome"};
constexpr const char* kAppendOnlyTypes[] = {"activity", "note"};
constexpr int kDefaultSteps = 160;
constexpr std::uint64_t kDefaultSchedules = 200;

std::optional<std::uint64_t> env_number(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return std::nullopt;
  return std::strtoull(text, nullptr, 10);
}

std::string two(unsigned n) { return (n < 10 ? "0" : "") + std::to_string(n); }

std::string short_id(ByteView bytes) { return crypto::to_hex(bytes.first(3)); }

struct Options {
  int steps = kDefaultSteps;
  bool trace = false;
  // Faults that must break convergence, to show the check is not vacuous.
  std::optional<std::size_t> skip_one_apply_on;  // this replica drops one op it accepted
  std::optional<std::size_t> lose_one_op_for;    // the network loses one op for this replica
};

// What the schedules did, by name ("ops authored", "duplicates", ...).
using Stats = std::map<std::string, std::uint64_t>;

Mutation create_of(const RecordId& id, std::string_view type) {
  return {Mutation::Kind::kCreate, id, std::string(type), "", "", {}};
}
Mutation set_of(const RecordId& id, std::string_view field, std::string value,
                std::vector<VersionId> seen = {}) {
  return {Mutation::Kind::kSet, id, "", std::string(field), std::move(value), std::move(seen)};
}

struct Outcome {
  std::vector<std::string> names;      // per replica
  std::vector<Bytes> canonical;        // PlanState::canonical()
  std::vector<std::string> conflicts;  // PlanState::conflicts() as text
  std::vector<std::size_t> pending;    // ops still waiting in the ChainVerifier
  std::vector<std::size_t> versions;   // PlanState::version_count()
  std::vector<std::string> problems;   // ChainProblems and open/apply failures, as text
  Stats stats;
};

std::string conflicts_text(const std::vector<Conflict>& conflicts) {
  std::ostringstream s;
  for (const Conflict& c : conflicts) {
    s << c.record.short_hex() << "." << c.field << ":";
    for (const FieldCandidate& f : c.candidates) {
      s << " [" << f.version.text() << " '" << f.value << "' " << f.clock.text() << " "
        << f.device.short_hex() << " " << f.account.short_hex() << "]";
    }
    s << "\n";
  }
  return s.str();
}

// Empty if the outcome converged honestly; otherwise what went wrong.
std::string divergence(const Outcome& o) {
  std::ostringstream s;
  for (const std::string& p : o.problems) s << "problem: " << p << "\n";
  for (std::size_t i = 0; i < o.names.size(); ++i) {
    if (o.pending[i] != 0) s << o.names[i] << " still has " << o.pending[i] << " pending ops\n";
    if (o.canonical[i] != o.canonical[0]) {
      const Bytes& a = o.canonical[0];
      const Bytes& b = o.canonical[i];
      std::size_t at = 0;
      while (at < a.size() && at < b.size() && a[at] == b[at]) ++at;
      s << o.names[i] << "'s canonical state (" << b.size() << " bytes, " << o.versions[i]
        << " versions) differs from " << o.names[0] << "'s (" << a.size() << " bytes, "
        << o.versions[0] << " versions) from byte " << at << "\n";
    }
    if (o.conflicts[i] != o.conflicts[0]) {
      s << o.names[i] << "'s conflicts differ from " << o.names[0] << "'s:\n"
        << o.conflicts[i] << "versus\n"
        << o.conflicts[0];
    }
  }
  return s.str();
}

class Simulation {
 public:
  Simulation(std::uint64_t seed, Options options) : rng_(seed), options_(options) {
    plan_ = make_id<PlanId>();
    for (const char* name : kSections) {
      Section section = Section::parse(name);
      keys_.emplace(section, crypto::SectionKey::parse(random_bytes(crypto::kSectionKeySize)));
    }
    // An owner with two devices, a nurse (write), a family member (append) and sometimes a
    // provider (write): 3-4 accounts, at least 5 devices.
    add_account("owner", true, 2);
    add_account("nurse", true, 1 + pick(2));
    add_account("family", false, 1);
    if (pick(2) == 0) add_account("provider", true, 1);
    while (replicas_.size() < 5) add_device(1 + pick(accounts_.size() - 1));
    build_membership();
  }

  Outcome run() {
    for (int step = 0; step < options_.steps; ++step) this->step();
    settle();
    Outcome o;
    for (const auto& r : replicas_) {
      o.names.push_back(r->name);
      o.canonical.push_back(r->state.canonical());
      o.conflicts.push_back(conflicts_text(r->state.conflicts()));
      o.pending.push_back(r->verifier.pending_ops());
      o.versions.push_back(r->state.version_count());
    }
    o.problems = problems_;
    stats_["conflicts left at the end"] = replicas_[0]->state.conflicts().size();
    o.stats = stats_;
    return o;
  }

 private:
  struct Account {
    std::string role;
    crypto::SigningKey identity;
    AccountId id;
    bool may_edit_any = false;  // what the membership log grants in every section, for now
  };
  struct Entry {  // one item of the server's log
    bool is_head = false;
    Op op;
    SignedHead head;
    ChainKey chain;
    std::uint64_t seq = 0;
    OpId op_id;
  };
  struct Batch {
    std::vector<Op> ops;
    std::vector<SignedHead> heads;
  };
  struct Replica {
    Replica(std::string n, std::size_t a, crypto::SigningKey k, crypto::BoxSecretKey b, PlanId plan)
        : name(std::move(n)),
          account(a),
          key(std::move(k)),
          box(std::move(b)),
          device(DeviceId::from_bytes(key.public_key().bytes())),
          writer(plan, key),
          verifier(plan),
          log(plan) {}
    std::string name;
    std::size_t account;
    crypto::SigningKey key;  // ChainWriter keeps a pointer to it: Replica never moves
    crypto::BoxSecretKey box;
    DeviceId device;
    ChainWriter writer;
    ChainVerifier verifier;
    MembershipLog log;                // this replica's copy of the plan's membership log
    std::vector<AcceptedOp> history;  // every op it authored or accepted, to re-judge
    bool needs_rebuild = false;
    PlanState state;
    HlcClock clock;
    std::int64_t skew_ms = 0;
    int offline_steps = 0;  // > 0: offline
    std::vector<Entry> outbox;
    std::set<Section> unpushed;  // sections with ops no pushed head covers yet
    std::size_t cursor = 0;      // server log entries already pulled
    std::deque<Batch> inbox;     // pulled, not yet delivered
  };

  std::size_t pick(std::size_t n) { return static_cast<std::size_t>(rng_() % n); }
  bool chance(int percent) { return pick(100) < static_cast<std::size_t>(percent); }
  Bytes random_bytes(std::size_t n) {
    Bytes b(n);
    for (auto& x : b) x = static_cast<std::uint8_t>(rng_());
    return b;
  }
  template <class Id>
  Id make_id() {
    return Id::from_bytes(random_bytes(Id::kSize));
  }

  void add_account(const char* role, bool may_edit_any, std::size_t devices) {
    auto identity = crypto::SigningKey::parse(random_bytes(crypto::kSeedSize));
    AccountId id = AccountId::from_bytes(identity.public_key().bytes());
    accounts_.push_back({role, std::move(identity), id, may_edit_any});
    for (std::size_t d = 0; d < devices; ++d) add_device(accounts_.size() - 1);
  }
  void add_device(std::size_t account) {
    std::size_t n = 0;
    for (const auto& r : replicas_) n += r->account == account;
    auto key = crypto::SigningKey::parse(random_bytes(crypto::kSeedSize));
    auto box = crypto::BoxSecretKey::parse(random_bytes(crypto::kBoxKeySize));
    replicas_.push_back(std::make_unique<Replica>(accounts_[account].role + "#" + std::to_string(n),
                                                  account, std::move(key), std::move(box), plan_));
    replicas_.back()->skew_ms = static_cast<std::int64_t>(pick(4001)) - 2000;
  }

  // ---- membership: the real log, written by the owner's first device and the members

  crypto::DeviceCertificate certificate(const Replica& r) const {
    return crypto::DeviceCertificate::issue(accounts_[r.account].identity, r.key.public_key(),
                                            r.box.public_key(), 1);
  }
  // Signs `e` with `author`'s device, appends it to the server's log and to the author's copy.
  void write_entry(Replica& author, MembershipEntry e) {
    e.sign(author.key);
    author.log.append(e);
    entries_.push_back(std::move(e));
  }
  Replica* first_device(std::size_t account) {
    for (auto& r : replicas_) {
      if (r->account == account) return r.get();
    }
    return nullptr;
  }

  // The plan is created by the owner's first device; every other account joins through an
  // invite granting every section (write or append); further devices are added by the first
  // device of their account. Every replica starts with the whole log.
  void build_membership() {
    using Kind = MembershipEntry::Kind;
    Replica& owner = *replicas_[0];
    auto e = owner.log.next(Kind::kPlanCreated, owner.device, 1);
    e.certificate = certificate(owner);
    write_entry(owner, std::move(e));
    for (std::size_t a = 0; a < accounts_.size(); ++a) {
      Replica* first = first_device(a);
      sync_membership(owner);
      if (a > 0) {
        Bytes secret = random_bytes(32);
        auto invite = owner.log.next(Kind::kInviteCreated, owner.device, 2);
        invite.invite_id = make_id<OpId>();
        auto invite_key = invite_key_from_secret(secret);
        invite.invite_key.assign(invite_key.public_key().bytes().begin(),
                                 invite_key.public_key().bytes().end());
        invite.invite_expires_at_ms = UINT64_MAX;
        for (const char* name : kSections) {
          invite.grants.push_back(
              {Section::parse(name),
               accounts_[a].may_edit_any ? Permission::kWrite : Permission::kAppend, 0});
        }
        OpId invite_id = invite.invite_id;
        write_entry(owner, std::move(invite));
        sync_membership(*first);
        auto join = first->log.next(Kind::kInviteAccepted, first->device, 3);
        join.invite_id = invite_id;
        join.certificate = certificate(*first);
        join.invite_signature =
            invite_key.sign(crypto::labels::kInviteJoin, join.invite_join_message());
        write_entry(*first, std::move(join));
        sync_membership(owner);
      }
      for (auto& r : replicas_) {
        if (r->account != a || r.get() == first) continue;
        sync_membership(*first);
        auto added = first->log.next(Kind::kDeviceAdded, first->device, 4);
        added.certificate = certificate(*r);
        write_entry(*first, std::move(added));
      }
    }
    for (auto& r : replicas_) sync_membership(*r);
  }

  // Brings a replica's copy of the log up to the server's. An entry that reduces rights (or
  // rotates a key) may refuse ops the replica has already merged: it re-judges them all.
  void sync_membership(Replica& r) {
    while (r.log.size() < entries_.size()) {
      const MembershipEntry& e = entries_[r.log.size()];
      try {
        r.log.append(MembershipEntry::parse(e.serialize()));
      } catch (const SyncError& err) {
        problems_.push_back(r.name + ": membership entry " + std::to_string(e.index) +
                            " refused: " + err.what());
        return;
      }
      if (e.kind == MembershipEntry::Kind::kGrant || e.kind == MembershipEntry::Kind::kRevoke) {
        r.needs_rebuild = true;
      }
    }
    if (r.needs_rebuild) rebuild(r);
  }

  // Judges one op by the replica's log and merges it; false when the log refuses it.
  bool merge(Replica& r, const AcceptedOp& a) {
    AuthorRights rights;
    try {
      rights = r.log.check_op(a.header);
    } catch (const SyncError& err) {
      if (err.code() != SyncErrorCode::kForbidden) {
        problems_.push_back(r.name + ": op " + a.header.op_id.short_hex() +
                            " refused: " + err.what());
      }
      return false;
    }
    auto body = open_op(a.op, keys_.at(a.header.section));
    if (!body) {
      problems_.push_back(r.name + ": op " + a.header.op_id.short_hex() + " did not open");
      return false;
    }
    try {
      r.state.apply(a.header, *body, rights);
    } catch (const SyncError& e) {
      problems_.push_back(r.name + ": op " + a.header.op_id.short_hex() +
                          " did not apply: " + e.what());
      return false;
    }
    return true;
  }

  void rebuild(Replica& r) {
    r.needs_rebuild = false;
    r.state = PlanState();
    for (const AcceptedOp& a : r.history) merge(r, a);
    ++stats_["rebuilds after a rights change"];
  }

  void trace(const Replica& r, const std::string& what) {
    if (options_.trace) std::cout << "  t=" << now_ms_ << " " << r.name << ": " << what << "\n";
  }
  bool online(const Replica& r) const { return r.offline_steps == 0; }

  void step() {
    now_ms_ += pick(40);
    for (auto& r : replicas_) {
      if (r->offline_steps > 0 && --r->offline_steps == 0) trace(*r, "back online");
    }
    Replica& r = *replicas_[pick(replicas_.size())];
    std::size_t w = pick(1000);
    if (w < 140) {
      create(r);
    } else if (w < 360) {
      edit(r);
    } else if (w < 460) {
      append(r);
    } else if (w < 500) {
      remove(r);
    } else if (w < 560) {
      resolve(r);
    } else if (w < 590) {
      r.offline_steps = static_cast<int>(5 + pick(30));
      ++stats_["offline periods"];
      trace(r, "goes offline for " + std::to_string(r.offline_steps) + " steps");
    } else if (w < 710) {
      push(r);
    } else if (w < 830) {
      pull(r);
    } else if (w < 995) {
      deliver(r, 1 + pick(3));
    } else {
      revoke();
    }
  }

  // ---- authoring

  std::string value_for(const RecordType& type, const std::string& field) {
    for (const FieldSpec& spec : type.fields) {
      if (spec.name != field) continue;
      unsigned a = static_cast<unsigned>(pick(12)) + 1, b = static_cast<unsigned>(pick(28)) + 1;
      switch (spec.kind) {
        case FieldKind::kText:
          break;
        case FieldKind::kDate:
          return "2026-" + two(a) + "-" + two(b);
        case FieldKind::kDateTime:
          return "2026-" + two(a) + "-" + two(b) + "T" + two(a + 7) + ":" + two(b * 2);
        case FieldKind::kTime:
          return two(a + 6) + ":" + two(b * 2);
        case FieldKind::kAmount:
          return std::to_string(pick(200)) + "." + two(b);
        case FieldKind::kChoice:
          return std::string(spec.choices[pick(spec.choices.size())]);
      }
    }
    return "v" + std::to_string(pick(100000));
  }
  std::string random_field(const RecordType& type) {
    return std::string(type.fields[pick(type.fields.size())].name);
  }

  void author(Replica& r, const Section& section, std::vector<Mutation> mutations,
              const std::string& what) {
    OpHeader h;
    h.plan = plan_;
    h.op_id = make_id<OpId>();
    h.section = section;
    h.epoch = r.log.epoch(section);
    h.membership_index = r.log.size();  // the log as this replica has seen it
    h.clock = r.clock.tick(
        static_cast<std::uint64_t>(static_cast<std::int64_t>(now_ms_) + r.skew_ms + 1'000'000));
    r.writer.stamp(h);
    AuthorRights rights;
    try {
      rights = r.log.check_op(h);
    } catch (const SyncError& e) {
      problems_.push_back(r.name + " could not author: " + e.what());
      return;
    }
    OpBody body{std::move(mutations)};
    Op op = seal_op(h, body, keys_.at(section));
    r.writer.append(h, op);
    r.verifier.restore(h, op.hash());  // its own ops come back from the server as duplicates
    r.state.apply(h, body, rights);
    r.history.push_back({h, op, op.hash()});
    r.outbox.push_back({false, std::move(op), {}, {h.author, section}, h.author_seq, h.op_id});
    r.unpushed.insert(section);
    ++stats_["ops authored"];
    trace(r, what + " (op " + short_id(h.op_id.bytes()) + ", " + section.name() + " #" +
                 std::to_string(h.author_seq) + (rights.may_edit_any ? ", write" : ", append") +
                 ")");
  }

  void create(Replica& r) {
    const RecordType& type = *find_record_type(kEditableTypes[pick(3)]);
    RecordId id = make_id<RecordId>();
    std::vector<Mutation> m{create_of(id, type.name), set_of(id, "text", value_for(type, "text"))};
    for (std::size_t extra = pick(3); extra > 0; --extra) {
      std::string field = random_field(type);
      if (field != "text") m.push_back(set_of(id, field, value_for(type, field)));
    }
    author(r, Section::parse(type.section), std::move(m),
           "creates " + std::string(type.name) + " " + short_id(id.bytes()));
  }

  void append(Replica& r) {
    const RecordType& type = *find_record_type(kAppendOnlyTypes[pick(2)]);
    RecordId id = make_id<RecordId>();
    std::vector<Mutation> m{create_of(id, type.name), set_of(id, "text", value_for(type, "text")),
                            set_of(id, "at", value_for(type, "at"))};
    if (type.name == "activity") m.push_back(set_of(id, "kind", value_for(type, "kind")));
    author(r, Section::parse(type.section), std::move(m),
           "appends " + std::string(type.name) + " " + short_id(id.bytes()));
  }

  // A visible record, mostly of an editable type; nullopt if the replica sees none.
  std::optional<RecordView> some_record(const Replica& r) {
    std::vector<RecordView> all = r.state.records();
    if (all.empty()) return std::nullopt;
    std::vector<RecordView> editable;
    for (auto& v : all) {
      if (!find_record_type(v.type)->append_only) editable.push_back(v);
    }
    if (!editable.empty() && chance(85)) return editable[pick(editable.size())];
    return all[pick(all.size())];
  }

  void count_forbidden(const Replica& r, const RecordView& v) {
    const Account& a = accounts_[r.account];
    if (find_record_type(v.type)->append_only || (!a.may_edit_any && v.created_by != a.id)) {
      ++stats_["edits every replica must ignore"];  // authored anyway: every replica must ignore it
                                                    // alike
    }
  }

  void edit(Replica& r) {
    auto v = some_record(r);
    if (!v) return create(r);
    const RecordType& type = *find_record_type(v->type);
    std::vector<Mutation> m;
    std::set<std::string> fields{random_field(type)};
    if (chance(25)) fields.insert(random_field(type));
    std::string what = "edits " + short_id(v->id.bytes());
    for (const std::string& field : fields) {
      auto seen = r.state.current_versions(v->id, field);
      what += " " + field + " (seen " + std::to_string(seen.size()) + ")";
      m.push_back(set_of(v->id, field, value_for(type, field), seen));
    }
    count_forbidden(r, *v);
    // Now and then an edit sent in the wrong section, which every replica must ignore.
    Section section = Section::parse(chance(3) ? kSections[pick(5)] : std::string(type.section));
    author(r, section, std::move(m), what);
  }

  void remove(Replica& r) {
    auto v = some_record(r);
    if (!v) return create(r);
    count_forbidden(r, *v);
    ++stats_["deletes"];
    author(r, v->section,
           {set_of(v->id, kDeletedField, "1", r.state.current_versions(v->id, kDeletedField))},
           "deletes " + short_id(v->id.bytes()));
  }

  void resolve(Replica& r) {
    auto conflicts = r.state.conflicts();
    stats_["conflicts on offer when resolving"] += conflicts.size();
    if (conflicts.empty()) return edit(r);
    const Conflict& c = conflicts[pick(conflicts.size())];
    auto v = r.state.record(c.record);
    std::string value = c.candidates[pick(c.candidates.size())].value;
    auto seen = r.state.current_versions(c.record, c.field);
    ++stats_["resolves"];
    author(r, v->section, {set_of(c.record, c.field, value, seen)},
           "resolves " + short_id(c.record.bytes()) + "." + c.field + " over " +
               std::to_string(seen.size()) + " versions");
  }

  void revoke() {
    std::vector<std::size_t> writers;
    for (std::size_t a = 1; a < accounts_.size(); ++a) {
      if (accounts_[a].may_edit_any) writers.push_back(a);
    }
    if (writers.empty()) return;
    std::size_t member = writers[pick(writers.size())];
    Account& a = accounts_[member];
    a.may_edit_any = false;
    // The owner's first device writes the reduction, one grant entry per section, each with
    // the cut-off of every device of the member: the last op of theirs it has accepted.
    Replica& owner = *replicas_[0];
    sync_membership(owner);
    for (const char* name : kSections) {
      Section section = Section::parse(name);
      auto e = owner.log.next(MembershipEntry::Kind::kGrant, owner.device, now_ms_);
      e.member = a.id;
      e.grants = {{section, Permission::kAppend, 0}};
      for (const auto& r : replicas_) {
        if (r->account != member) continue;
        std::uint64_t seq = owner.verifier.accepted_seq({r->device, section});
        if (seq > 0) e.cutoffs.push_back({r->device, section, seq});
      }
      write_entry(owner, std::move(e));
    }
    ++stats_["rights drops"];
    if (options_.trace) std::cout << "  t=" << now_ms_ << " " << a.role << " loses write\n";
  }

  // ---- the server and the network

  void push(Replica& r) {
    if (!online(r) || r.outbox.empty()) return;
    trace(r, "pushes " + std::to_string(r.outbox.size()) + " ops");
    for (Entry& e : r.outbox) log_.push_back(std::move(e));
    r.outbox.clear();
    for (const Section& section : r.unpushed) {
      Entry e;
      e.is_head = true;
      e.head = *r.writer.head(section);
      ChainHead h = *e.head.verify();
      e.chain = {h.author, h.section};
      e.seq = h.seq;
      log_.push_back(std::move(e));
    }
    r.unpushed.clear();
  }

  bool lost_for(std::size_t replica, const Entry& e) {
    if (options_.lose_one_op_for != replica || e.is_head) return false;
    if (lost_.empty() && e.chain.author != replicas_[replica]->device) lost_.insert(e.op_id);
    return lost_.count(e.op_id) > 0;
  }

  void pull(Replica& r) {
    if (!online(r)) return;
    sync_membership(r);  // the server sends membership before ops
    if (r.cursor == log_.size()) return;
    std::size_t index = 0;
    while (replicas_[index].get() != &r) ++index;
    const std::size_t from = r.cursor;
    r.cursor = log_.size();
    std::vector<Batch> batches(1 + pick(4));
    // The first batch each op reaches, per chain and sequence number.
    std::map<ChainKey, std::map<std::uint64_t, std::size_t>> arrives;
    for (std::size_t i = from; i < log_.size(); ++i) {
      const Entry& e = log_[i];
      if (e.is_head) continue;
      if (lost_for(index, e)) {
        ++stats_["ops lost"];
        continue;
      }
      std::size_t b = pick(batches.size());
      batches[b].ops.push_back(e.op);
      if (chance(12)) {  // a duplicate
        std::size_t d = pick(batches.size());
        batches[d].ops.push_back(e.op);
        b = std::min(b, d);
      }
      arrives[e.chain][e.seq] = b;
    }
    for (std::size_t i = from; i < log_.size(); ++i) {
      const Entry& e = log_[i];
      if (!e.is_head) continue;
      std::size_t b = 0;  // after every op it covers that arrives in this pull
      for (const auto& [seq, batch] : arrives[e.chain]) {
        if (seq <= e.seq) b = std::max(b, batch);
      }
      if (chance(30)) b += 1 + pick(2);  // the head comes later: its ops wait as pending
      if (b >= batches.size()) batches.resize(b + 1);
      batches[b].heads.push_back(e.head);
    }
    // Old entries again; every op they cover has reached earlier batches already.
    for (std::size_t k = 0; from > 0 && k < 2; ++k) {
      if (!chance(20)) continue;
      const Entry& e = log_[pick(from)];
      if (lost_for(index, e)) continue;
      Batch& b = batches[pick(batches.size())];
      if (e.is_head) {
        b.heads.push_back(e.head);
      } else {
        b.ops.push_back(e.op);
      }
    }
    for (Batch& b : batches) {
      std::shuffle(b.ops.begin(), b.ops.end(), rng_);
      std::shuffle(b.heads.begin(), b.heads.end(), rng_);
      r.inbox.push_back(std::move(b));
    }
    trace(r, "pulls log " + std::to_string(from) + ".." + std::to_string(r.cursor) + " in " +
                 std::to_string(batches.size()) + " batches");
  }

  void deliver(Replica& r, std::size_t count) {
    if (!online(r)) return;
    for (; count > 0 && !r.inbox.empty(); --count) {
      Batch b = std::move(r.inbox.front());
      r.inbox.pop_front();
      ChainOutcome out = r.verifier.add(b.ops, b.heads);
      stats_["duplicates"] += out.duplicates;
      for (const ChainProblem& p : out.problems) {
        problems_.push_back(r.name + ": " + std::string(sync_error_code_name(p.code)) + ": " +
                            p.message);
      }
      for (const AcceptedOp& a : out.accepted) {
        if (options_.skip_one_apply_on && replicas_[*options_.skip_one_apply_on].get() == &r &&
            stats_["ops skipped"] == 0 && a.header.author != r.device) {
          ++stats_["ops skipped"];
          continue;
        }
        r.history.push_back(a);
        if (!merge(r, a)) ++stats_["ops refused by a cut-off"];
        r.clock.observe(a.header.clock);
        ++stats_["ops applied from the network"];
      }
      if (r.verifier.pending_ops() > 0) ++stats_["batches leaving ops pending"];
      trace(r, "delivers " + std::to_string(b.ops.size()) + " ops, " +
                   std::to_string(b.heads.size()) +
                   " heads: " + std::to_string(out.accepted.size()) + " accepted, " +
                   std::to_string(r.verifier.pending_ops()) + " pending");
    }
  }

  // Everyone online; push, pull and deliver until nothing moves.
  void settle() {
    if (options_.trace) std::cout << "  -- settling\n";
    for (auto& r : replicas_) r->offline_steps = 0;
    for (int round = 0; round < 100; ++round) {
      bool moved = false;
      for (auto& r : replicas_) {
        moved = moved || !r->outbox.empty();
        push(*r);
      }
      for (auto& r : replicas_) {
        moved = moved || r->cursor != log_.size() || !r->inbox.empty();
        pull(*r);
        deliver(*r, r->inbox.size());
      }
      if (!moved) return;
    }
    problems_.push_back("the replicas did not settle in 100 rounds");
  }

  Rng rng_;
  Options options_;
  PlanId plan_;
  std::map<Section, crypto::SectionKey> keys_;  // epoch 1; every member holds every section
  std::vector<MembershipEntry> entries_;        // the server's membership log
  std::vector<Account> accounts_;
  std::vector<std::unique_ptr<Replica>> replicas_;
  std::vector<Entry> log_;  // the server's total order
  std::set<OpId> lost_;
  std::vector<std::string> problems_;
  std::uint64_t now_ms_ = 0;
  Stats stats_;
};

Outcome play(std::uint64_t seed, Options options = {}) {
  if (auto steps = env_number("KITH_CONVERGENCE_STEPS")) options.steps = static_cast<int>(*steps);
  options.trace = options.trace || env_number("KITH_CONVERGENCE_TRACE").value_or(0) != 0;
  if (options.trace) std::cout << "schedule seed " << seed << "\n";
  return Simulation(seed, options).run();
}

TEST(Convergence, RandomSchedulesConverge) {
  std::uint64_t first = env_number("KITH_CONVERGENCE_FIRST_SEED").value_or(1);
  std::uint64_t count = env_number("KITH_CONVERGENCE_SCHEDULES").value_or(kDefaultSchedules);
  if (auto only = env_number("KITH_CONVERGENCE_SEED")) {
    first = *only;
    count = 1;
  }

  Stats total;
  int failures = 0;
  for (std::uint64_t seed = first; seed < first + count && failures < 5; ++seed) {
    Outcome o = play(seed);
    for (const auto& [name, n] : o.stats) total[name] += n;
    std::string why = divergence(o);
    if (!why.empty()) {
      ++failures;
      ADD_FAILURE() << "schedule seed " << seed << " did not converge:\n"
                    << why << "Replay it step by step with\n  KITH_CONVERGENCE_SEED=" << seed
                    << " KITH_CONVERGENCE_TRACE=1 <build>/tests/sync/kith_sync_tests"
                       " --gtest_filter=Convergence.RandomSchedulesConverge\n"
                    << "(KITH_CONVERGENCE_STEPS=K replays a shorter prefix of it).";
    }
  }
  std::cout << "[ schedules ] " << count << " from seed " << first << ":";
  for (const auto& [name, n] : total) std::cout << " " << name << " " << n << ";";
  std::cout << "\n";
  if (count >= 50) {
    // The schedules must exercise what they claim to, or passing says little.
    for (const char* what :
         {"duplicates", "batches leaving ops pending", "resolves", "conflicts left at the end",
          "deletes", "edits every replica must ignore", "rights drops", "ops refused by a cut-off",
          "rebuilds after a rights change"}) {
      EXPECT_GT(total[what], 0u) << what;
    }
  }
}

TEST(Convergence, SameSeedReplaysTheSameSchedule) {
  Outcome a = play(42), b = play(42);
  EXPECT_EQ(a.canonical, b.canonical);
  EXPECT_EQ(a.stats, b.stats);
}

TEST(Convergence, ReplicaThatSkipsAnOpDiverges) {
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    Options faulty;
    faulty.skip_one_apply_on = 2;
    Outcome o = play(seed, faulty);
    ASSERT_EQ(o.stats["ops skipped"], 1u) << "seed " << seed;
    EXPECT_TRUE(o.problems.empty()) << "seed " << seed;  // the chain was fine; the merge not
    EXPECT_NE(o.canonical[2], o.canonical[0]) << "seed " << seed;
    EXPECT_NE(divergence(o), "") << "seed " << seed;
  }
}

TEST(Convergence, OpLostByTheNetworkIsReportedAsAGap) {
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    Options faulty;
    faulty.lose_one_op_for = 1;
    Outcome o = play(seed, faulty);
    ASSERT_GT(o.stats["ops lost"], 0u) << "seed " << seed;
    EXPECT_NE(o.canonical[1], o.canonical[0]) << "seed " << seed;
    bool gap = std::any_of(o.problems.begin(), o.problems.end(), [](const std::string& p) {
      return p.find(sync_error_code_name(SyncErrorCode::kChainGap)) != std::string::npos;
    });
    EXPECT_TRUE(gap) << "seed " << seed;
  }
}

}  // namespace
}  // namespace kith::sync
