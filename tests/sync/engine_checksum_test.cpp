// The sync engine checks the section checksums that end each catch-up (docs/PROTOCOL.md,
// "Section checksums") against the stand-in server of engine_fixture.hpp: nothing happens when
// they match; a server that drops, reorders or withholds an op, or sends a wrong, short or no
// checksum, is reported and the plan fetched again from the start, once; a difference that
// persists is reported as such and not retried. The digests survive a restart and are computed
// for a store migrated from before they were kept.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "engine_fixture.hpp"
#include "kith/sync/engine.hpp"
#include "kith/sync/section_digest.hpp"
#include "local_store_fixtures.hpp"

namespace kith::sync::engine_test {
namespace {

using Fault = FakeServer::Fault;

// Checksums as "section op_count digest", in section order, to compare in one line.
std::vector<std::string> text_of(const kith::v1::CatchUpComplete& done) {
  std::vector<std::string> out;
  for (const auto& c : done.checksums()) {
    out.push_back(c.section() + " " + std::to_string(c.op_count()) + " " +
                  crypto::to_hex(crypto::as_bytes(c.digest())));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The digests a device stored with its cursor, in the same form.
std::vector<std::string> stored(const Device& d, const PlanId& plan) {
  std::vector<std::string> out;
  for (const StoredSectionDigest& s : d.store->section_digests(plan)) {
    if (s.digest.op_count == 0) continue;
    out.push_back(s.section + " " + std::to_string(s.digest.op_count) + " " +
                  crypto::to_hex(s.digest.digest));
  }
  return out;
}

std::vector<const SyncEvent*> problems(const Device& d, SyncErrorCode code) {
  std::vector<const SyncEvent*> out;
  for (const SyncEvent& e : d.events) {
    if (e.kind == SyncEvent::Kind::kProblem && e.code == code) out.push_back(&e);
  }
  return out;
}

// The cursors of the Subscribes the server saw since `from`.
std::vector<std::uint64_t> subscribes_since(const FakeServer& server, std::size_t from) {
  return {server.subscribed_from.begin() + static_cast<std::ptrdiff_t>(from),
          server.subscribed_from.end()};
}

TEST_F(Engine, MatchingChecksumsNeitherReportNorFetchAgain) {
  PlanId plan = shared_plan();
  a->engine->add_record(plan, "health", {{"dose", "5 mg"}});
  a->engine->add_record(plan, "note", {{"text", "Seemed brighter today"}});
  a->sync(server, plan);
  b->engine->add_record(plan, "health", {{"medicine", "Metformin"}});
  b->engine->add_record(plan, "risk", {{"text", "Falls at night"}});
  b->sync(server, plan);
  const std::size_t before = server.subscribed_from.size();
  a->sync(server, plan);
  b->sync(server, plan);
  EXPECT_EQ(server.subscribed_from.size(), before + 2);  // one Subscribe each, none again from 0
  a->expect_no_problems();
  b->expect_no_problems();
  // Each device's stored digests are the server's checksums, section by section.
  const auto expected = text_of(server.complete(plan));
  ASSERT_EQ(expected.size(), 3u);  // health, notes, risk
  EXPECT_EQ(stored(*a, plan), expected);
  EXPECT_EQ(stored(*b, plan), expected);
  EXPECT_EQ(b->store->digest_seq(plan), b->engine->cursor(plan));
}

// --- A faulty server, once: reported, fetched again from the start, then in agreement. ---

struct FaultCase {
  const char* name;
  Fault fault;
  std::uint64_t seq;   // for kDropOp and kSwapOps
  const char* reason;  // in the event's message

  friend void PrintTo(const FaultCase& c, std::ostream* os) { *os << c.name; }
};

class EngineChecksumFault : public Engine, public ::testing::WithParamInterface<FaultCase> {
 protected:
  // a writes three health ops and a note, each pushed on its own (server seqs 1 to 4); b holds
  // the first, so its next catch-up brings seqs 2 to 4.
  PlanId plan_with_ops() {
    PlanId plan = shared_plan();
    a->engine->add_record(plan, "health", {{"dose", "5 mg"}});
    a->sync(server, plan);
    b->sync(server, plan);
    a->engine->add_record(plan, "health", {{"dose", "10 mg"}});
    a->sync(server, plan);
    a->engine->add_record(plan, "health", {{"time", "08:00"}});
    a->sync(server, plan);
    a->engine->add_record(plan, "note", {{"text", "Seemed brighter today"}});
    a->sync(server, plan);
    EXPECT_EQ(server.op_count(plan), 4u);
    EXPECT_EQ(b->engine->cursor(plan), 1u);
    b->events.clear();
    return plan;
  }
};

TEST_P(EngineChecksumFault, IsReportedAndFetchedAgainOnce) {
  PlanId plan = plan_with_ops();
  server.fault = GetParam().fault;
  server.fault_seq = GetParam().seq;
  const std::size_t before = server.subscribed_from.size();
  b->sync(server, plan);
  // Once from b's cursor, once again from the start; then the checksums agree.
  EXPECT_EQ(subscribes_since(server, before), (std::vector<std::uint64_t>{1, 0}));
  auto reported = problems(*b, SyncErrorCode::kChecksumMismatch);
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_NE(reported[0]->message.find("section health"), std::string::npos) << reported[0]->message;
  EXPECT_NE(reported[0]->message.find(GetParam().reason), std::string::npos)
      << reported[0]->message;
  EXPECT_NE(reported[0]->message.find("fetching the whole plan again"), std::string::npos);
  EXPECT_TRUE(problems(*b, SyncErrorCode::kServerDiverged).empty());
  for (const SyncEvent& e : b->events) {
    if (e.kind == SyncEvent::Kind::kProblem && e.code != SyncErrorCode::kChecksumMismatch) {
      ADD_FAILURE() << e.message;
    }
  }
  EXPECT_EQ(b->engine->state(plan).canonical(), a->engine->state(plan).canonical());
  EXPECT_EQ(stored(*b, plan), text_of(server.complete(plan)));
  EXPECT_EQ(b->engine->cursor(plan), 4u);
  // And the next catch-up is an ordinary one.
  b->events.clear();
  b->sync(server, plan);
  EXPECT_EQ(subscribes_since(server, before), (std::vector<std::uint64_t>{1, 0, 4}));
  b->expect_no_problems();
}

INSTANTIATE_TEST_SUITE_P(
    Server, EngineChecksumFault,
    ::testing::Values(
        // The last health op, silently: b has the head of the one before it.
        FaultCase{"DropsAnOp", Fault::kDropOp, 3,
                  "holds 3 changes in section health and this "
                  "device received 2"},
        FaultCase{"ReordersTwoOps", Fault::kSwapOps, 2, "in another order"},
        FaultCase{"SendsAWrongDigest", Fault::kWrongDigest, 0, "in another order"},
        FaultCase{"SendsADigestOfTheWrongLength", Fault::kShortDigest, 0, "is malformed"},
        FaultCase{"LeavesOutAReadableSection", Fault::kOmitChecksum, 0, "sent no checksum"}),
    [](const auto& test) { return std::string(test.param.name); });

TEST_F(EngineChecksumFault, ThatPersistsIsReportedOnceAndNotRetried) {
  PlanId plan = plan_with_ops();
  server.fault = Fault::kWrongDigest;
  server.fault_times = SIZE_MAX;
  b->engine->add_record(plan, "health", {{"time", "09:00"}});  // queued offline
  const std::size_t before = server.subscribed_from.size();
  b->sync(server, plan);  // returns: the engine does not fetch again and again
  EXPECT_EQ(subscribes_since(server, before), (std::vector<std::uint64_t>{1, 0}));
  EXPECT_EQ(problems(*b, SyncErrorCode::kChecksumMismatch).size(), 1u);
  auto diverged = problems(*b, SyncErrorCode::kServerDiverged);
  ASSERT_EQ(diverged.size(), 1u);
  EXPECT_NE(diverged[0]->message.find("section health"), std::string::npos);
  EXPECT_NE(diverged[0]->message.find("even after fetching the whole plan again"),
            std::string::npos)
      << diverged[0]->message;
  // What b holds stays, and its queued change still goes up.
  EXPECT_EQ(b->engine->outbox_size(plan), 0u);
  EXPECT_EQ(b->engine->state(plan).records().size(), 5u);
  // The next catch-up compares again and reports again, without a re-fetch.
  b->events.clear();
  b->sync(server, plan);
  ASSERT_EQ(server.subscribed_from.size(), before + 3);
  EXPECT_NE(server.subscribed_from.back(), 0u);
  EXPECT_TRUE(problems(*b, SyncErrorCode::kChecksumMismatch).empty());
  EXPECT_EQ(problems(*b, SyncErrorCode::kServerDiverged).size(), 1u);
  // Once the server is right again, so is everything.
  server.fault = Fault::kNone;
  b->events.clear();
  b->sync(server, plan);
  b->expect_no_problems();
  EXPECT_EQ(stored(*b, plan), text_of(server.complete(plan)));
}

TEST_F(EngineChecksumFault, WithheldHeadIsReported) {
  // a's next two health ops go up in one push with one head; the server sends them without it
  // (a batch that ends before the head, and then none): b cannot accept them.
  PlanId plan = plan_with_ops();
  a->engine->add_record(plan, "health", {{"dose", "12 mg"}});
  a->engine->add_record(plan, "health", {{"dose", "15 mg"}});
  a->sync(server, plan);
  ASSERT_EQ(server.op_count(plan), 6u);
  server.fault = Fault::kDropOp;
  server.fault_seq = 6;  // the second one; the head over it is not sent either
  server.fault_times = SIZE_MAX;
  b->sync(server, plan);
  EXPECT_EQ(problems(*b, SyncErrorCode::kChecksumMismatch).size(), 1u);
  EXPECT_EQ(problems(*b, SyncErrorCode::kServerDiverged).size(), 1u);
  EXPECT_LT(b->engine->cursor(plan), 5u);  // held before the op that waits for its head
}

// --- Ops held back while waiting for their head, and this device's own ops. ---

TEST_F(Engine, OpsHeldBackForTheirHeadAreDigestedInServerOrder) {
  PlanId plan = shared_plan();
  auto c = another("c", owner);
  a->engine->add_device(plan, c->engine->identity().certificate);
  a->sync(server, plan);
  // X: a's first health op (seq 1); Y: b's (seq 2). Different chains of one section.
  a->engine->add_record(plan, "health", {{"dose", "5 mg"}});
  a->sync(server, plan);
  b->engine->add_record(plan, "health", {{"dose", "10 mg"}});
  b->sync(server, plan);
  ASSERT_EQ(server.op_count(plan), 2u);
  OpHeader x = OpHeader::parse(crypto::as_bytes(server.op(plan, 0).header()));
  OpHeader y = OpHeader::parse(crypto::as_bytes(server.op(plan, 1).header()));

  // c catches up, but X's head comes only in a second batch: Y is accepted before X.
  c->engine->follow(plan, "Nia's plan");
  for (const ClientMessage& m : c->engine->subscribe(plan)) {
    for (const ServerMessage& reply : server.handle(m, c->box())) {
      if (reply.has_ops_batch() || reply.has_catch_up_complete()) continue;
      c->engine->handle(reply);
    }
  }
  ServerMessage first;
  auto* b1 = first.mutable_ops_batch();
  b1->set_plan_id(w(plan.bytes()));
  for (std::uint64_t seq : {1, 2}) {
    auto* d = b1->add_ops();
    d->set_server_seq(seq);
    *d->mutable_op() = server.op(plan, seq - 1);
  }
  *b1->add_heads() = *server.head(plan, y.author, y.section, 1);
  b1->set_up_to_seq(2);
  b1->set_more(true);
  EXPECT_TRUE(c->engine->handle(first).empty());
  EXPECT_EQ(c->engine->cursor(plan), 0u);  // not past X, which waits
  ServerMessage second;
  auto* b2 = second.mutable_ops_batch();
  b2->set_plan_id(w(plan.bytes()));
  *b2->add_heads() = *server.head(plan, x.author, x.section, 1);
  b2->set_up_to_seq(2);
  c->engine->handle(second);
  EXPECT_EQ(c->engine->cursor(plan), 2u);
  ServerMessage done;
  *done.mutable_catch_up_complete() = server.complete(plan);
  c->engine->handle(done);
  c->expect_no_problems();
  EXPECT_EQ(stored(*c, plan), text_of(server.complete(plan)));
}

TEST_F(Engine, OwnOpAcknowledgedAfterTheCursorPassedItIsDigestedAtItsPlace) {
  PlanId plan = shared_plan();
  a->engine->add_record(plan, "health", {{"dose", "5 mg"}});
  a->sync(server, plan);  // seq 1
  // a pushes an op (seq 2); its acknowledgement is late.
  a->engine->add_record(plan, "health", {{"dose", "10 mg"}});
  std::vector<ServerMessage> late;
  for (const ClientMessage& m : a->engine->pushes(plan)) {
    for (const ServerMessage& reply : server.handle(m, a->box())) late.push_back(reply);
  }
  // Meanwhile b's op (seq 3) reaches a live, and a's cursor passes 2.
  b->sync(server, plan);
  b->engine->add_record(plan, "health", {{"time", "08:00"}});
  b->sync(server, plan);
  ASSERT_EQ(server.op_count(plan), 3u);
  OpHeader h = OpHeader::parse(crypto::as_bytes(server.op(plan, 2).header()));
  ServerMessage live;
  auto* batch = live.mutable_ops_batch();
  batch->set_plan_id(w(plan.bytes()));
  auto* d = batch->add_ops();
  d->set_server_seq(3);
  *d->mutable_op() = server.op(plan, 2);
  *batch->add_heads() = *server.head(plan, h.author, h.section, h.author_seq);
  batch->set_up_to_seq(3);
  a->engine->handle(live);
  ASSERT_EQ(a->engine->cursor(plan), 3u);
  for (const ServerMessage& reply : late) a->engine->handle(reply);
  EXPECT_EQ(stored(*a, plan), text_of(server.complete(plan)));
  const std::size_t before = server.subscribed_from.size();
  a->sync(server, plan);
  EXPECT_EQ(subscribes_since(server, before), (std::vector<std::uint64_t>{3}));
  a->expect_no_problems();
}

// --- A section that becomes readable: its older ops are fetched, without a report. ---

TEST_F(Engine, SectionGrantedLaterIsFetchedFromTheStartWithoutAReport) {
  server.readable_only = true;
  PlanId plan = a->engine->create_plan("Nia's plan");
  a->engine->add_record(plan, "note", {{"text", "Seemed brighter today"}});  // seq 1, notes
  a->sync(server, plan);
  // A nurse joins with read on health only.
  auto nurse = another("nurse", crypto::SigningKey::generate());
  MembershipLog log = a->engine->membership(plan);
  const Bytes secret(32, 7);
  auto invite = log.next(MembershipEntry::Kind::kInviteCreated, a->id(), clock);
  invite.invite_id = OpId::random();
  auto invite_key = invite_key_from_secret(secret);
  invite.invite_key.assign(invite_key.public_key().bytes().begin(),
                           invite_key.public_key().bytes().end());
  invite.invite_expires_at_ms = clock + 1'000'000;
  invite.grants = {{Section::parse("health"), Permission::kRead, 0}};
  invite.sign(a->secrets.device.signing);
  log.append(invite);
  push_entry(server, invite, a->box());
  auto join = log.next(MembershipEntry::Kind::kInviteAccepted, nurse->id(), clock);
  join.invite_id = invite.invite_id;
  join.certificate = nurse->engine->identity().certificate;
  join.invite_signature = invite_key.sign(crypto::labels::kInviteJoin, join.invite_join_message());
  join.sign(nurse->secrets.device.signing);
  log.append(join);
  push_entry(server, join, nurse->box());
  a->sync(server, plan);
  a->engine->add_record(plan, "health", {{"dose", "5 mg"}});  // seq 2, health
  a->sync(server, plan);
  nurse->engine->follow(plan, "Nia's plan");
  nurse->sync(server, plan);
  ASSERT_EQ(nurse->engine->cursor(plan), 2u);
  ASSERT_EQ(nurse->store->ops(plan).size(), 1u);  // the note was not hers to read

  // The owner grants her notes: the server sends notes ops after her cursor only.
  auto grant = log.next(MembershipEntry::Kind::kGrant, a->id(), clock);
  grant.member = nurse->engine->identity().account();
  grant.grants = {{Section::parse("notes"), Permission::kRead, 0}};
  grant.sign(a->secrets.device.signing);
  log.append(grant);
  push_entry(server, grant, a->box());
  nurse->events.clear();
  const std::size_t before = server.subscribed_from.size();
  nurse->sync(server, plan);
  EXPECT_EQ(subscribes_since(server, before), (std::vector<std::uint64_t>{2, 0}));
  EXPECT_EQ(nurse->store->ops(plan).size(), 2u);  // the note, from before her cursor
  EXPECT_TRUE(problems(*nurse, SyncErrorCode::kChecksumMismatch).empty());
  EXPECT_TRUE(problems(*nurse, SyncErrorCode::kServerDiverged).empty());
}

// --- Restarts and stores from before the digests were kept. ---

TEST_F(Engine, DigestsSurviveARestart) {
  PlanId plan = shared_plan();
  for (int i = 0; i < 25; ++i) {
    a->engine->add_record(plan, i % 2 ? "health" : "activity",
                          {{"text", "visit " + std::to_string(i)}});
    if (i % 10 == 9) a->sync(server, plan);
  }
  a->sync(server, plan);
  b->sync(server, plan);
  const auto at_sync = stored(*b, plan);
  EXPECT_EQ(at_sync, text_of(server.complete(plan)));
  b->open();
  EXPECT_EQ(stored(*b, plan), at_sync);
  // The reloaded digests go on from where they were: more ops, no difference, no re-fetch.
  a->engine->add_record(plan, "health", {{"dose", "5 mg"}});
  a->sync(server, plan);
  const std::size_t before = server.subscribed_from.size();
  b->sync(server, plan);
  EXPECT_EQ(subscribes_since(server, before), (std::vector<std::uint64_t>{25}));
  b->expect_no_problems();
  EXPECT_EQ(stored(*b, plan), text_of(server.complete(plan)));
}

TEST_F(Engine, StoreFromBeforeDigestsGetsThemFromItsOps) {
  PlanId plan = shared_plan();
  for (int i = 0; i < 12; ++i) {
    a->engine->add_record(plan, i % 3 ? "health" : "note", {{"text", std::to_string(i)}});
  }
  a->sync(server, plan);
  b->sync(server, plan);
  // b's file goes back to schema version 3, as that version left it: no digests anywhere.
  b->engine.reset();
  b->store.reset();
  {
    store_test::RawDb raw(b->path);
    raw.exec("DROP TABLE names");  // version 7
    raw.exec("DROP TABLE recovery_sealed");  // version 6
    raw.exec("ALTER TABLE outgoing_envelopes DROP COLUMN recovery");
    raw.exec("DROP TABLE verified_accounts");  // version 5
    raw.exec("ALTER TABLE outgoing_envelopes DROP COLUMN invite_id");
    raw.exec("DROP TABLE section_digests");
    raw.exec("ALTER TABLE cursors DROP COLUMN digest_seq");
    raw.exec("PRAGMA user_version = 3");
  }
  b->open();
  EXPECT_EQ(b->store->schema_version(), LocalStore::kSchemaVersion);
  EXPECT_EQ(b->store->digest_seq(plan), 0u);
  a->engine->add_record(plan, "health", {{"dose", "5 mg"}});
  a->sync(server, plan);
  const std::size_t before = server.subscribed_from.size();
  b->sync(server, plan);
  EXPECT_EQ(subscribes_since(server, before), (std::vector<std::uint64_t>{12}));
  b->expect_no_problems();
  EXPECT_EQ(stored(*b, plan), text_of(server.complete(plan)));
  EXPECT_EQ(b->store->digest_seq(plan), 13u);
}

}  // namespace
}  // namespace kith::sync::engine_test
