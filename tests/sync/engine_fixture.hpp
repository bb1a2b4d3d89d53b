// The sync engine's test harness: an in-memory stand-in for the server, a device (keys, store,
// engine and the events it saw), and a fixture with two devices of one account. The stand-in
// stores and orders what devices push and serves catch-up in small batches, ending with the
// section checksums kithd sends; of kithd's checks it makes only those the engine must react to
// (a membership entry whose place is taken, and on request a key rotation whose cut-offs leave
// out a stored op). On request it also plays a faulty server: an op dropped or two reordered in
// a catch-up, a wrong, short or missing checksum. Everything the engine does with what it
// receives — chains, heads, membership, keys, decryption, merge, cursors, checksums — is real.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kith/sync/engine.hpp"
#include "kith/sync/error.hpp"
#include "kith/sync/section_digest.hpp"
#include "kith/sync/wire.hpp"

namespace kith::sync::engine_test {

namespace fs = std::filesystem;
using kith::v1::ClientMessage;
using kith::v1::ServerMessage;

inline std::string w(ByteView b) { return std::string(b.begin(), b.end()); }

class FakeServer {
 public:
  std::size_t batch_size = 10;
  bool tamper_next_op = false;
  std::size_t refused_pushes = 0;  // membership pushes refused with MEMBERSHIP_INVALID
  // As kithd, refuse a key rotation whose cut-offs leave out an op already stored. Off by
  // default, so that a test can play a server that lets one through.
  bool refuse_cut_offs = false;
  // As kithd, send a device only the ops and checksums of sections its account may read. Off by
  // default: the stand-in sends every op to every device.
  bool readable_only = false;
  // A fault played in the next `fault_times` catch-ups it touches (SIZE_MAX: in every one).
  enum class Fault {
    kNone,
    kDropOp,        // the op at server seq `fault_seq` is not sent (its checksum still counts it)
    kSwapOps,       // the ops at `fault_seq` and the next are sent with each other's seq
    kWrongDigest,   // the checksum of `fault_section` has a bit flipped
    kShortDigest,   // ... is 31 bytes long
    kOmitChecksum,  // ... is left out
  };
  Fault fault = Fault::kNone;
  std::size_t fault_times = 1;
  std::uint64_t fault_seq = 0;
  std::string fault_section = "health";
  std::vector<std::uint64_t> subscribed_from;  // the cursor of each Subscribe, in order

  // Handles one message from the device with encryption key `device_box`.
  std::vector<ServerMessage> handle(const ClientMessage& m,
                                    const crypto::BoxPublicKey& device_box) {
    std::vector<ServerMessage> out;
    if (m.has_subscribe()) {
      auto& p = plans_[m.subscribe().plan_id()];
      subscribed_from.push_back(m.subscribe().cursor());
      std::optional<std::set<std::string>> readable;
      if (readable_only) readable = readable_sections(m.subscribe().plan_id(), device_box);
      bool faulted = false;
      ServerMessage mb;
      mb.set_request_id(m.request_id());
      auto* b = mb.mutable_membership_batch();
      b->set_plan_id(m.subscribe().plan_id());
      b->set_first_index(m.subscribe().membership_count());
      for (std::size_t i = m.subscribe().membership_count(); i < p.entries.size(); ++i) {
        b->add_entries(p.entries[i]);
      }
      out.push_back(mb);
      ServerMessage eb;
      auto* e = eb.mutable_envelope_batch();
      e->set_plan_id(m.subscribe().plan_id());
      for (const auto& env : p.envelopes) {
        // As kithd: the device's own, and (an honest server, so no proof check here) those
        // sealed to the recovery box the Subscribe names.
        const auto to = crypto::Envelope::parse(crypto::as_bytes(env)).recipient();
        if (to == device_box || w(to.bytes()) == m.subscribe().recovery_box_key()) {
          e->add_envelopes(env);
        }
      }
      out.push_back(eb);
      std::uint64_t cursor = m.subscribe().cursor();
      while (cursor < p.ops.size()) {
        ServerMessage ob;
        auto* o = ob.mutable_ops_batch();
        o->set_plan_id(m.subscribe().plan_id());
        std::uint64_t end = std::min<std::uint64_t>(p.ops.size(), cursor + batch_size);
        std::map<std::string, std::uint64_t> max_seq;  // chain -> highest seq in batch
        for (std::uint64_t s = cursor; s < end; ++s) {
          OpHeader h = OpHeader::parse(crypto::as_bytes(p.ops[s].header()));
          if (readable && !readable->count(h.section.name())) continue;
          std::uint64_t seq = s + 1;
          if (fault == Fault::kDropOp && seq == fault_seq) {
            faulted = true;
            continue;
          }
          if (fault == Fault::kSwapOps && (seq == fault_seq || seq == fault_seq + 1)) {
            seq = seq == fault_seq ? fault_seq + 1 : fault_seq;
            faulted = true;
          }
          auto* d = o->add_ops();
          d->set_server_seq(seq);
          *d->mutable_op() = p.ops[s];
          std::string chain = w(h.author.bytes()) + h.section.name();
          max_seq[chain] = std::max(max_seq[chain], h.author_seq);
        }
        // For each chain, the first head at or past the batch's last op: ops beyond an older
        // head wait for the next batch, as they may with a real server.
        for (const auto& [chain, seq] : max_seq) {
          const kith::v1::SignedHead* best = nullptr;
          std::uint64_t best_seq = 0;
          for (const auto& [key, head] : p.heads) {
            if (key.first != chain) continue;
            if (key.second <= seq && key.second > best_seq) {
              best = &head;
              best_seq = key.second;
            }
          }
          if (best) *o->add_heads() = *best;
        }
        o->set_up_to_seq(end);
        o->set_more(end < p.ops.size());
        if (o->ops_size() > 0) out.push_back(ob);  // as kithd, no batch without ops
        cursor = end;
      }
      ServerMessage done;
      *done.mutable_catch_up_complete() = complete(m.subscribe().plan_id(), readable);
      for (auto& c : *done.mutable_catch_up_complete()->mutable_checksums()) {
        if (c.section() != fault_section) continue;
        if (fault == Fault::kWrongDigest) {
          c.mutable_digest()->front() ^= 1;
          faulted = true;
        } else if (fault == Fault::kShortDigest) {
          c.mutable_digest()->pop_back();
          faulted = true;
        } else if (fault == Fault::kOmitChecksum) {
          c.set_section("");  // marked here, removed below
          faulted = true;
        }
      }
      auto* sums = done.mutable_catch_up_complete()->mutable_checksums();
      sums->erase(std::remove_if(sums->begin(), sums->end(),
                                 [](const auto& c) { return c.section().empty(); }),
                  sums->end());
      if (faulted && fault_times != SIZE_MAX && --fault_times == 0) fault = Fault::kNone;
      out.push_back(done);
    } else if (m.has_push_ops()) {
      auto& p = plans_[m.push_ops().plan_id()];
      ServerMessage ack;
      ack.set_request_id(m.request_id());
      auto* a = ack.mutable_push_ack();
      a->set_plan_id(m.push_ops().plan_id());
      for (const auto& op : m.push_ops().ops()) {
        OpHeader h = OpHeader::parse(crypto::as_bytes(op.header()));
        std::string id = w(h.op_id.bytes());
        if (!seq_of_.count(id)) {
          p.ops.push_back(op);
          if (tamper_next_op) {
            p.ops.back().mutable_body()->back() ^= 1;
            tamper_next_op = false;
          }
          seq_of_[id] = p.ops.size();
        }
        auto* acked = a->add_acked();
        acked->set_op_id(id);
        acked->set_server_seq(seq_of_[id]);
      }
      for (const auto& head : m.push_ops().heads()) {
        ChainHead h = ChainHead::parse(crypto::as_bytes(head.head()));
        p.heads[{w(h.author.bytes()) + h.section.name(), h.seq}] = head;
      }
      out.push_back(ack);
    } else if (m.has_push_membership()) {
      auto& p = plans_[m.push_membership().plan_id()];
      // As kithd: an entry whose place is taken by the same bytes is a retry; by other bytes, or
      // past the end of the log (or, with refuse_cut_offs, a key rotation whose cut-offs leave
      // out an op already stored), the push is refused and nothing of it is stored.
      std::vector<std::string> added;
      auto refuse = [&](const std::string& why) {
        ++refused_pushes;
        out.push_back(wire::make_error(m.request_id(), kith::v1::MEMBERSHIP_INVALID, why));
        return out;
      };
      for (const auto& e : m.push_membership().entries()) {
        auto entry = MembershipEntry::parse(crypto::as_bytes(e));
        const std::size_t next = p.entries.size() + added.size();
        if (entry.index < p.entries.size() && p.entries[entry.index] == e) continue;
        if (entry.index != next) {
          return refuse("membership entry " + std::to_string(entry.index) +
                        " is already taken by another change");
        }
        if (refuse_cut_offs && entry.kind == MembershipEntry::Kind::kKeyRotation) {
          for (const auto& op : p.ops) {
            OpHeader h = OpHeader::parse(crypto::as_bytes(op.header()));
            if (h.section != *entry.section) continue;
            auto cut = std::find_if(entry.cutoffs.begin(), entry.cutoffs.end(),
                                    [&](const Cutoff& c) { return c.device == h.author; });
            if (cut == entry.cutoffs.end() || cut->seq < h.author_seq) {
              return refuse("membership entry " + std::to_string(entry.index) +
                            " cuts off an op the server already stored");
            }
          }
        }
        added.push_back(e);
      }
      for (auto& e : added) p.entries.push_back(std::move(e));
      ServerMessage ack;
      ack.set_request_id(m.request_id());
      ack.mutable_push_ack()->set_plan_id(m.push_membership().plan_id());
      ack.mutable_push_ack()->set_membership_count(p.entries.size());
      out.push_back(ack);
    } else if (m.has_push_envelopes()) {
      auto& p = plans_[m.push_envelopes().plan_id()];
      for (const auto& e : m.push_envelopes().envelopes()) p.envelopes.push_back(e);
      ServerMessage ack;
      ack.set_request_id(m.request_id());
      ack.mutable_push_ack()->set_plan_id(m.push_envelopes().plan_id());
      ack.mutable_push_ack()->set_envelopes_stored(
          static_cast<std::uint32_t>(m.push_envelopes().envelopes_size()));
      out.push_back(ack);
    }
    return out;
  }

  // What an honest server ends a catch-up of `plan` with: a checksum per section that has ops
  // (of those in `readable`, when given), computed with the sync library's function.
  kith::v1::CatchUpComplete complete(const std::string& plan,
                                     const std::optional<std::set<std::string>>& readable = {}) {
    const auto& p = plans_[plan];
    std::map<std::string, SectionDigest> sums;
    for (const auto& op : p.ops) {
      OpHeader h = OpHeader::parse(crypto::as_bytes(op.header()));
      sums[h.section.name()].add(
          op_hash(crypto::as_bytes(op.header()), crypto::as_bytes(op.body())));
    }
    kith::v1::CatchUpComplete done;
    done.set_plan_id(plan);
    done.set_server_seq(p.ops.size());
    for (const auto& [section, sum] : sums) {
      if (readable && !readable->count(section)) continue;
      auto* c = done.add_checksums();
      c->set_section(section);
      c->set_op_count(sum.op_count);
      c->set_digest(w(sum.digest));
    }
    return done;
  }
  kith::v1::CatchUpComplete complete(const PlanId& plan) { return complete(w(plan.bytes())); }
  // The stored head of a chain at `seq`, if any.
  std::optional<kith::v1::SignedHead> head(const PlanId& plan, const DeviceId& author,
                                           const Section& section, std::uint64_t seq) {
    const auto& heads = plans_[w(plan.bytes())].heads;
    auto it = heads.find({w(author.bytes()) + section.name(), seq});
    if (it == heads.end()) return std::nullopt;
    return it->second;
  }

  std::size_t op_count(const PlanId& plan) { return plans_[w(plan.bytes())].ops.size(); }
  std::size_t entry_count(const PlanId& plan) { return plans_[w(plan.bytes())].entries.size(); }
  // How many stored envelopes are sealed to `box`.
  std::size_t envelopes_to(const PlanId& plan, const crypto::BoxPublicKey& box) {
    const auto& all = plans_[w(plan.bytes())].envelopes;
    return std::count_if(all.begin(), all.end(), [&](const std::string& e) {
      return crypto::Envelope::parse(crypto::as_bytes(e)).recipient() == box;
    });
  }
  const kith::v1::WireOp& op(const PlanId& plan, std::size_t i) {
    return plans_[w(plan.bytes())].ops[i];
  }

 private:
  // The sections the account of the device with encryption key `box` may read, by the plan's
  // membership log (expiry not applied).
  std::set<std::string> readable_sections(const std::string& plan,
                                          const crypto::BoxPublicKey& box) {
    const auto& p = plans_[plan];
    MembershipLog log(PlanId::from_bytes(crypto::as_bytes(plan)));
    for (const auto& e : p.entries) log.append(MembershipEntry::parse(crypto::as_bytes(e)));
    std::set<std::string> out;
    for (const MemberView& m : log.members()) {
      for (const DeviceId& d : m.devices) {
        const crypto::DeviceCertificate* cert = log.certificate(d);
        if (!cert || !(cert->device_encryption() == box)) continue;
        std::set<std::string> names(kKnownSections.begin(), kKnownSections.end());
        for (const auto& op : p.ops) {
          names.insert(OpHeader::parse(crypto::as_bytes(op.header())).section.name());
        }
        for (const auto& name : names) {
          if (log.permission(m.account, Section::parse(name)) >= Permission::kRead) {
            out.insert(name);
          }
        }
      }
    }
    return out;
  }

  struct Plan {
    std::vector<std::string> entries;
    std::vector<kith::v1::WireOp> ops;
    std::map<std::pair<std::string, std::uint64_t>, kith::v1::SignedHead> heads;
    std::vector<std::string> envelopes;
  };
  std::map<std::string, Plan> plans_;
  std::map<std::string, std::uint64_t> seq_of_;
};

// Stores `entry` on `server` as its author's device would push it.
inline void push_entry(FakeServer& server, const MembershipEntry& entry,
                       const crypto::BoxPublicKey& device_box) {
  ClientMessage m;
  m.set_request_id(1);
  m.mutable_push_membership()->set_plan_id(w(entry.plan.bytes()));
  m.mutable_push_membership()->add_entries(w(entry.serialize()));
  auto replies = server.handle(m, device_box);
  ASSERT_EQ(replies.size(), 1u);
  ASSERT_TRUE(replies[0].has_push_ack()) << replies[0].DebugString();
}

// One device: its keys, its store, its engine, and the events it saw.
struct Device {
  Device(const fs::path& dir, const crypto::SigningKey& identity, std::uint64_t* clock)
      : path(dir / "store.db"), secrets{identity, crypto::DeviceKeys::generate()}, now(clock) {
    open();
  }
  void open() {
    engine.reset();
    store.reset();
    store = std::make_unique<LocalStore>(path, storage_key);
    engine = std::make_unique<SyncEngine>(*store, DeviceIdentity::create(secrets, 1),
                                          [this] { return *now; });
    engine->on_event([this](const SyncEvent& e) { events.push_back(e); });
  }
  std::size_t count(SyncEvent::Kind k) const {
    return std::count_if(events.begin(), events.end(),
                         [&](const SyncEvent& e) { return e.kind == k; });
  }
  // Fails the test with the message of every problem this device reported.
  void expect_no_problems() const {
    for (const auto& e : events) {
      if (e.kind == SyncEvent::Kind::kProblem) ADD_FAILURE() << e.message;
    }
  }
  DeviceId id() const { return engine->identity().device(); }
  crypto::BoxPublicKey box() const { return secrets.device.encryption.public_key(); }
  // Subscribes and exchanges messages with `server` until nothing is left to say. Stops after
  // `max_server_messages` messages from the server when given (to simulate a dropped link).
  void sync(FakeServer& server, const PlanId& plan, std::size_t max_server_messages = SIZE_MAX) {
    std::vector<ClientMessage> queue = engine->subscribe(plan);
    std::size_t received = 0;
    while (!queue.empty()) {
      ClientMessage m = queue.front();
      queue.erase(queue.begin());
      for (const ServerMessage& reply : server.handle(m, secrets.device.encryption.public_key())) {
        if (received++ == max_server_messages) return;
        for (auto& next : engine->handle(reply)) queue.push_back(std::move(next));
      }
    }
  }

  fs::path path;
  crypto::SectionKey storage_key = crypto::SectionKey::generate();
  crypto::DeviceSecrets secrets;
  std::uint64_t* now;
  std::unique_ptr<LocalStore> store;
  std::unique_ptr<SyncEngine> engine;
  std::vector<SyncEvent> events;
};

class Engine : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() /
          ("kith-engine-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir / "a");
    fs::create_directories(dir / "b");
    a = std::make_unique<Device>(dir / "a", owner, &clock);
    b = std::make_unique<Device>(dir / "b", owner, &clock);
  }
  void TearDown() override {
    a.reset();
    b.reset();
    fs::remove_all(dir);
  }
  // A plan on device a, shared with device b of the same account, both synced.
  PlanId shared_plan() {
    PlanId plan = a->engine->create_plan("Nia's plan");
    a->engine->add_device(plan, b->engine->identity().certificate);
    a->sync(server, plan);
    b->engine->follow(plan, "Nia's plan");
    b->sync(server, plan);
    return plan;
  }
  // Another device, with its own folder and store.
  std::unique_ptr<Device> another(const std::string& name, const crypto::SigningKey& identity) {
    fs::create_directories(dir / name);
    return std::make_unique<Device>(dir / name, identity, &clock);
  }
  std::string text(Device& d, const PlanId& plan, const RecordId& r, const char* f = "text") {
    auto rec = d.engine->state(plan).record(r);
    return rec && rec->fields.count(f) ? rec->fields.at(f).value : "<none>";
  }

  fs::path dir;
  std::uint64_t clock = 1'795'305'600'000;
  crypto::SigningKey owner = crypto::SigningKey::generate();
  FakeServer server;
  std::unique_ptr<Device> a, b;
};

}  // namespace kith::sync::engine_test
