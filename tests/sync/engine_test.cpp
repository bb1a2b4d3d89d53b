// The client sync engine against an in-memory stand-in for the server: it stores and orders
// what devices push and serves catch-up in small batches, but checks nothing (the real kithd,
// with its checks, is tested over TLS in tests/server). Everything the engine does with what it
// receives — chains, heads, membership, keys, decryption, merge, cursors — is real.
#include "kith/sync/engine.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>

#include "kith/crypto/error.hpp"
#include "kith/crypto/key_store.hpp"
#include "kith/sync/error.hpp"

namespace kith::sync {
namespace {

namespace fs = std::filesystem;
using kith::v1::ClientMessage;
using kith::v1::ServerMessage;

std::string w(ByteView b) { return std::string(b.begin(), b.end()); }

class FakeServer {
 public:
  std::size_t batch_size = 10;
  bool tamper_next_op = false;

  // Handles one message from the device with encryption key `device_box`.
  std::vector<ServerMessage> handle(const ClientMessage& m,
                                    const crypto::BoxPublicKey& device_box) {
    std::vector<ServerMessage> out;
    if (m.has_subscribe()) {
      auto& p = plans_[m.subscribe().plan_id()];
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
        if (crypto::Envelope::parse(crypto::as_bytes(env)).recipient() == device_box) {
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
          auto* d = o->add_ops();
          d->set_server_seq(s + 1);
          *d->mutable_op() = p.ops[s];
          OpHeader h = OpHeader::parse(crypto::as_bytes(p.ops[s].header()));
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
        out.push_back(ob);
        cursor = end;
      }
      ServerMessage done;
      done.mutable_catch_up_complete()->set_plan_id(m.subscribe().plan_id());
      done.mutable_catch_up_complete()->set_server_seq(p.ops.size());
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
      for (const auto& e : m.push_membership().entries()) {
        auto entry = MembershipEntry::parse(crypto::as_bytes(e));
        if (entry.index == p.entries.size()) p.entries.push_back(e);
      }
      ServerMessage ack;
      ack.mutable_push_ack()->set_plan_id(m.push_membership().plan_id());
      ack.mutable_push_ack()->set_membership_count(p.entries.size());
      out.push_back(ack);
    } else if (m.has_push_envelopes()) {
      auto& p = plans_[m.push_envelopes().plan_id()];
      for (const auto& e : m.push_envelopes().envelopes()) p.envelopes.push_back(e);
      ServerMessage ack;
      ack.mutable_push_ack()->set_plan_id(m.push_envelopes().plan_id());
      ack.mutable_push_ack()->set_envelopes_stored(
          static_cast<std::uint32_t>(m.push_envelopes().envelopes_size()));
      out.push_back(ack);
    }
    return out;
  }

  std::size_t op_count(const PlanId& plan) { return plans_[w(plan.bytes())].ops.size(); }
  const kith::v1::WireOp& op(const PlanId& plan, std::size_t i) {
    return plans_[w(plan.bytes())].ops[i];
  }

 private:
  struct Plan {
    std::vector<std::string> entries;
    std::vector<kith::v1::WireOp> ops;
    std::map<std::pair<std::string, std::uint64_t>, kith::v1::SignedHead> heads;
    std::vector<std::string> envelopes;
  };
  std::map<std::string, Plan> plans_;
  std::map<std::string, std::uint64_t> seq_of_;
};

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

TEST_F(Engine, OfflineEditsQueueThenUploadAndAreAcknowledged) {
  PlanId plan = a->engine->create_plan("Nia's plan");
  RecordId r = a->engine->add_record(plan, "health", {{"medicine", "Metformin"}, {"dose", "5 mg"}});
  a->engine->set_fields(plan, r, {{"dose", "10 mg"}});
  EXPECT_EQ(a->engine->outbox_size(plan), 2u);
  EXPECT_EQ(text(*a, plan, r, "dose"), "10 mg");
  a->sync(server, plan);
  EXPECT_EQ(a->engine->outbox_size(plan), 0u);
  EXPECT_EQ(server.op_count(plan), 2u);
  EXPECT_GE(a->count(SyncEvent::Kind::kAcked), 1u);
}

TEST_F(Engine, BadInputIsRefusedWithClearErrors) {
  PlanId plan = a->engine->create_plan("Nia's plan");
  auto code = [](auto f) {
    try {
      f();
    } catch (const SyncError& e) {
      return e.code();
    }
    return SyncErrorCode::kStore;
  };
  EXPECT_EQ(code([&] { a->engine->add_record(plan, "spaceship", {}); }),
            SyncErrorCode::kInvalidField);
  EXPECT_EQ(code([&] {
              a->engine->add_record(plan, "outcome", {{"target_date", "tomorrow"}});
            }),
            SyncErrorCode::kInvalidField);
  EXPECT_EQ(code([&] {
              a->engine->set_fields(plan, RecordId::random(), {{"text", "x"}});
            }),
            SyncErrorCode::kMalformed);
  EXPECT_EQ(code([&] { a->engine->state(PlanId::random()); }), SyncErrorCode::kMalformed);
  RecordId note = a->engine->add_record(plan, "note", {{"text", "Seemed brighter today"}});
  EXPECT_EQ(code([&] {
              a->engine->set_fields(plan, note, {{"text", "edited"}});
            }),
            SyncErrorCode::kForbidden);
  EXPECT_EQ(a->engine->outbox_size(plan), 1u);  // only the note
}

TEST_F(Engine, SecondDeviceReceivesKeysAndConverges) {
  PlanId plan = a->engine->create_plan("Nia's plan");
  RecordId r = a->engine->add_record(plan, "support", {{"text", "Shopping on Tuesdays"}});
  a->engine->add_device(plan, b->engine->identity().certificate);
  a->sync(server, plan);
  b->engine->follow(plan, "Nia's plan");
  b->sync(server, plan);
  EXPECT_EQ(b->count(SyncEvent::Kind::kProblem), 0u);
  EXPECT_EQ(text(*b, plan, r), "Shopping on Tuesdays");
  EXPECT_EQ(b->engine->state(plan).canonical(), a->engine->state(plan).canonical());
}

TEST_F(Engine, ConcurrentOfflineEditsAreFlaggedThenResolved) {
  PlanId plan = shared_plan();
  RecordId r = a->engine->add_record(plan, "health", {{"dose", "5 mg"}});
  a->sync(server, plan);
  b->sync(server, plan);
  // Both offline: the nurse at the visit and the owner at home change the same dose.
  a->engine->set_fields(plan, r, {{"dose", "7 mg"}});
  clock += 1000;
  b->engine->set_fields(plan, r, {{"dose", "10 mg"}});
  a->sync(server, plan);
  b->sync(server, plan);
  a->sync(server, plan);
  for (Device* d : {a.get(), b.get()}) {
    auto conflicts = d->engine->state(plan).conflicts();
    ASSERT_EQ(conflicts.size(), 1u);
    EXPECT_EQ(conflicts[0].field, "dose");
    EXPECT_EQ(text(*d, plan, r, "dose"), "10 mg");  // the later edit is shown meanwhile
  }
  EXPECT_GE(a->count(SyncEvent::Kind::kConflict), 1u);
  a->engine->set_fields(plan, r, {{"dose", "7 mg"}});  // a person resolves it
  a->sync(server, plan);
  b->sync(server, plan);
  EXPECT_TRUE(b->engine->state(plan).conflicts().empty());
  EXPECT_EQ(text(*b, plan, r, "dose"), "7 mg");
  EXPECT_EQ(b->engine->state(plan).canonical(), a->engine->state(plan).canonical());
}

TEST_F(Engine, InterruptedCatchUpResumesFromItsCursor) {
  PlanId plan = shared_plan();
  for (int i = 0; i < 95; ++i) {
    a->engine->add_record(plan, "activity", {{"text", "visit " + std::to_string(i)}});
    if (i % 20 == 19) a->sync(server, plan);  // several pushes, several heads
  }
  a->sync(server, plan);
  // b's link drops after a few batches; the app is killed and started again.
  b->sync(server, plan, 5);
  std::uint64_t cursor = b->engine->cursor(plan);
  EXPECT_GT(cursor, 0u);
  EXPECT_LT(cursor, 95u);
  b->open();
  EXPECT_EQ(b->engine->cursor(plan), cursor);
  b->sync(server, plan);
  for (const auto& e : b->events) {
    if (e.kind == SyncEvent::Kind::kProblem) ADD_FAILURE() << e.message;
  }
  EXPECT_EQ(b->engine->cursor(plan), 95u);
  EXPECT_EQ(b->engine->state(plan).records().size(), 95u);
  EXPECT_EQ(b->engine->state(plan).canonical(), a->engine->state(plan).canonical());
}

TEST_F(Engine, RestartKeepsStateOutboxAndChain) {
  PlanId plan = a->engine->create_plan("Nia's plan");
  RecordId r = a->engine->add_record(plan, "outcome", {{"text", "Walk to the shop"}});
  Bytes before = a->engine->state(plan).canonical();
  a->open();
  EXPECT_EQ(a->engine->state(plan).canonical(), before);
  EXPECT_EQ(a->engine->outbox_size(plan), 1u);
  a->engine->set_fields(plan, r, {{"status", "in-progress"}});  // continues its chain
  a->sync(server, plan);
  EXPECT_EQ(a->engine->outbox_size(plan), 0u);
  // The op written after the restart is the chain's second, linked to the first.
  ASSERT_EQ(server.op_count(plan), 2u);
  OpHeader first = OpHeader::parse(crypto::as_bytes(server.op(plan, 0).header()));
  OpHeader second = OpHeader::parse(crypto::as_bytes(server.op(plan, 1).header()));
  EXPECT_EQ(first.author_seq, 1u);
  EXPECT_EQ(second.author_seq, 2u);
  EXPECT_EQ(second.prev, op_hash(crypto::as_bytes(server.op(plan, 0).header()),
                                 crypto::as_bytes(server.op(plan, 0).body())));
}

TEST_F(Engine, KeyRotationResealsOpsQueuedOffline) {
  PlanId plan = shared_plan();
  RecordId r = a->engine->add_record(plan, "health", {{"dose", "5 mg"}});
  a->sync(server, plan);
  b->sync(server, plan);
  b->engine->set_fields(plan, r, {{"time", "08:00"}});  // queued offline under epoch 1
  a->engine->rotate_key(plan, Section::parse("health"));
  a->sync(server, plan);
  b->sync(server, plan);  // receives the rotation and the new key, re-seals, uploads
  EXPECT_EQ(b->engine->outbox_size(plan), 0u);
  const auto& last = server.op(plan, server.op_count(plan) - 1);
  EXPECT_EQ(OpHeader::parse(crypto::as_bytes(last.header())).epoch, 2u);
  a->sync(server, plan);
  EXPECT_EQ(text(*a, plan, r, "time"), "08:00");
  EXPECT_EQ(a->count(SyncEvent::Kind::kProblem), 0u);
  EXPECT_EQ(b->count(SyncEvent::Kind::kProblem), 0u);
}

TEST_F(Engine, OpRefusedByALaterRotationLeavesItsAuthorsViewToo) {
  PlanId plan = shared_plan();
  RecordId r = a->engine->add_record(plan, "health", {{"dose", "5 mg"}});
  a->sync(server, plan);
  b->sync(server, plan);
  // b's edit reaches the server, but a rotates the key without having seen it: the rotation's
  // cut-off for b is below that edit, so every device must refuse it — b included, which had
  // already merged its own edit.
  b->engine->set_fields(plan, r, {{"dose", "10 mg"}});
  b->sync(server, plan);
  EXPECT_EQ(text(*b, plan, r, "dose"), "10 mg");
  a->engine->rotate_key(plan, Section::parse("health"));
  a->sync(server, plan);
  b->sync(server, plan);
  EXPECT_EQ(text(*a, plan, r, "dose"), "5 mg");
  EXPECT_EQ(text(*b, plan, r, "dose"), "5 mg");
  EXPECT_EQ(b->engine->state(plan).canonical(), a->engine->state(plan).canonical());
  // A restart rebuilds the same view from the store.
  b->open();
  EXPECT_EQ(b->engine->state(plan).canonical(), a->engine->state(plan).canonical());
}

TEST(EngineAtRest, StoreOpensOnlyWithTheKeyFromTheDevicesPassphrase) {
  fs::path dir = fs::temp_directory_path() / ("kith-engine-at-rest-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  crypto::KeyStore keys(dir / "device.key");
  crypto::DeviceSecrets secrets{crypto::SigningKey::generate(), crypto::DeviceKeys::generate()};
  keys.save(secrets.serialize(), "correct horse", crypto::PwhashParams::minimum_for_tests());
  std::uint64_t now = 1'795'305'600'000;
  PlanId plan;
  {
    auto me =
        DeviceIdentity::create(crypto::DeviceSecrets::parse(keys.load("correct horse").view()), 1);
    LocalStore store(dir / "store.db", me.storage_key());
    SyncEngine engine(store, me, [&] { return now; });
    plan = engine.create_plan("Nia's plan");
    engine.add_record(plan, "health", {{"text", "CANARY-at-rest-7f3e"}});
  }
  // Nothing of the plan's text is in the files, whether in ops, the saved state or the WAL.
  const std::string canary = "CANARY-at-rest-7f3e";
  ASSERT_GT(fs::file_size(dir / "store.db"), 4096u);  // the scan reads a real database
  for (const char* name : {"store.db", "store.db-wal", "store.db-shm"}) {
    std::ifstream in(dir / name, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(bytes.find(canary), std::string::npos) << name;
    EXPECT_EQ(bytes.find("Nia's plan"), std::string::npos) << name;
  }
  // The same passphrase gives the same key: the plan is there after a restart.
  {
    auto me =
        DeviceIdentity::create(crypto::DeviceSecrets::parse(keys.load("correct horse").view()), 1);
    LocalStore store(dir / "store.db", me.storage_key());
    SyncEngine engine(store, me, [&] { return now; });
    ASSERT_EQ(engine.state(plan).records().size(), 1u);
  }
  // Another device's key does not open it, and a wrong passphrase yields no key at all.
  auto other = DeviceIdentity::create(
      crypto::DeviceSecrets{crypto::SigningKey::generate(), crypto::DeviceKeys::generate()}, 1);
  EXPECT_THROW(LocalStore(dir / "store.db", other.storage_key()), SyncError);
  EXPECT_THROW(keys.load("wrong horse"), crypto::KeyStoreError);
  fs::remove_all(dir);
}

TEST_F(Engine, TamperedOpIsReportedAndNotApplied) {
  PlanId plan = shared_plan();
  server.tamper_next_op = true;
  RecordId r = a->engine->add_record(plan, "health", {{"dose", "5 mg"}});
  a->sync(server, plan);
  b->sync(server, plan);
  EXPECT_FALSE(b->engine->state(plan).record(r).has_value());
  EXPECT_GE(b->count(SyncEvent::Kind::kProblem), 1u);
}

}  // namespace
}  // namespace kith::sync
