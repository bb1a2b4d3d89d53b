// The convergence simulation (convergence_test.cpp has what it does and why): replicas of one
// plan that author, push, pull and deliver ops through the real sync pipeline in a schedule
// drawn from a seed. The simulation is split by what it plays: convergence_simulation.cpp sets
// up the accounts, devices and membership log and plays the server and the network;
// convergence_authoring.cpp plays what people do (create, edit, append, delete, resolve, and
// the owner taking someone's write access away).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <deque>
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

namespace kith::sync::convergence {

using Rng = std::mt19937_64;

inline constexpr const char* kSections[] = {"health", "support", "outcomes", "notes", "activity"};
inline constexpr const char* kEditableTypes[] = {"health", "support", "outcome"};
inline constexpr const char* kAppendOnlyTypes[] = {"activity", "note"};
inline constexpr int kDefaultSteps = 160;
inline constexpr std::uint64_t kDefaultSchedules = 200;

inline std::optional<std::uint64_t> env_number(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return std::nullopt;
  return std::strtoull(text, nullptr, 10);
}

inline std::string two(unsigned n) { return (n < 10 ? "0" : "") + std::to_string(n); }

inline std::string short_id(ByteView bytes) { return crypto::to_hex(bytes.first(3)); }

struct Options {
  int steps = kDefaultSteps;
  bool trace = false;
  // Faults that must break convergence, to show the check is not vacuous.
  std::optional<std::size_t> skip_one_apply_on;  // this replica drops one op it accepted
  std::optional<std::size_t> lose_one_op_for;    // the network loses one op for this replica
};

// What the schedules did, by name ("ops authored", "duplicates", ...).
using Stats = std::map<std::string, std::uint64_t>;

inline Mutation create_of(const RecordId& id, std::string_view type) {
  return {Mutation::Kind::kCreate, id, std::string(type), "", "", {}};
}
inline Mutation set_of(const RecordId& id, std::string_view field, std::string value,
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

inline std::string conflicts_text(const std::vector<Conflict>& conflicts) {
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

class Simulation {
 public:
  Simulation(std::uint64_t seed, Options options);

  Outcome run();

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
  Bytes random_bytes(std::size_t n);
  template <class Id>
  Id make_id() {
    return Id::from_bytes(random_bytes(Id::kSize));
  }

  void add_account(const char* role, bool may_edit_any, std::size_t devices);
  void add_device(std::size_t account);

  // ---- membership: the real log, written by the owner's first device and the members

  crypto::DeviceCertificate certificate(const Replica& r) const;
  // Signs `e` with `author`'s device, appends it to the server's log and to the author's copy.
  void write_entry(Replica& author, MembershipEntry e);
  Replica* first_device(std::size_t account);

  // The plan is created by the owner's first device; every other account joins through an
  // invite granting every section (write or append); further devices are added by the first
  // device of their account. Every replica starts with the whole log.
  void build_membership();

  // Brings a replica's copy of the log up to the server's. An entry that reduces rights (or
  // rotates a key) may refuse ops the replica has already merged: it re-judges them all.
  void sync_membership(Replica& r);

  // Judges one op by the replica's log and merges it; false when the log refuses it.
  bool merge(Replica& r, const AcceptedOp& a);

  void rebuild(Replica& r);

  void trace(const Replica& r, const std::string& what);
  bool online(const Replica& r) const { return r.offline_steps == 0; }

  void step();

  // ---- authoring

  std::string value_for(const RecordType& type, const std::string& field);
  std::string random_field(const RecordType& type);

  void author(Replica& r, const Section& section, std::vector<Mutation> mutations,
              const std::string& what);

  void create(Replica& r);

  void append(Replica& r);

  // A visible record, mostly of an editable type; nullopt if the replica sees none.
  std::optional<RecordView> some_record(const Replica& r);

  void count_forbidden(const Replica& r, const RecordView& v);

  void edit(Replica& r);

  void remove(Replica& r);

  void resolve(Replica& r);

  void revoke();

  // ---- the server and the network

  void push(Replica& r);

  bool lost_for(std::size_t replica, const Entry& e);

  void pull(Replica& r);

  void deliver(Replica& r, std::size_t count);

  // Everyone online; push, pull and deliver until nothing moves.
  void settle();

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

// Plays the schedule of `seed` (KITH_CONVERGENCE_STEPS and KITH_CONVERGENCE_TRACE apply).
Outcome play(std::uint64_t seed, Options options = {});

}  // namespace kith::sync::convergence
