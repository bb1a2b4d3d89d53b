// The client sync engine against an in-memory stand-in for the server (engine_fixture.hpp; the
// real kithd, with its checks, is tested over TLS in tests/server): authoring, catch-up,
// conflicts, restarts, key rotations. Membership entries and the envelopes that depend on them:
// engine_membership_test.cpp.
#include "kith/sync/engine.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "engine_fixture.hpp"
#include "kith/crypto/error.hpp"
#include "kith/crypto/key_store.hpp"
#include "kith/sync/error.hpp"

namespace kith::sync::engine_test {
namespace {

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

TEST_F(Engine, EachOpIsCountedAcknowledgedOnce) {
  PlanId plan = a->engine->create_plan("Nia's plan");
  a->engine->add_record(plan, "health", {{"medicine", "Metformin"}});
  a->engine->add_record(plan, "note", {{"text", "Seemed brighter today"}});
  a->sync(server, plan);
  auto acked = [&] {
    std::uint64_t n = 0;
    for (const auto& e : a->events) {
      if (e.kind == SyncEvent::Kind::kAcked) n += e.count;
    }
    return n;
  };
  EXPECT_EQ(acked(), 2u);
  // The same acknowledgement again (late, or after the ops came back in a batch) counts nothing.
  kith::v1::ServerMessage again;
  again.mutable_push_ack()->set_plan_id(std::string(plan.bytes().begin(), plan.bytes().end()));
  for (const auto& op : a->store->ops(plan)) {
    auto* x = again.mutable_push_ack()->add_acked();
    x->set_op_id(std::string(op.op_id.bytes().begin(), op.op_id.bytes().end()));
    x->set_server_seq(op.server_seq);
  }
  a->engine->handle(again);
  EXPECT_EQ(acked(), 2u);
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
}  // namespace kith::sync::engine_test
