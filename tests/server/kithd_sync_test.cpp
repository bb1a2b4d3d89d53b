// The sync conversation through a real kithd: convergence, catch-up, revocation, limits,
// shutdown and durability.
#include <csignal>
#include <thread>

#include "kithd_test_fixture.hpp"
#include "support/raw_clients.hpp"

namespace kith::test {
namespace {

using kith::v1::ClientMessage;
using kith::v1::ErrorCode;

std::string field(const sync::PlanState& state, const sync::RecordId& id, const std::string& f) {
  auto r = state.record(id);
  if (!r) return "<no record>";
  auto it = r->fields.find(f);
  return it == r->fields.end() ? "<no field>" : it->second.value;
}

TEST_F(KithdTest, TwoMembersConvergeThroughTheServer) {
  owner_with_plan();
  TestDevice family(dir.path(), "family");
  family.connect(*server);
  add_member(*owner, family, plan,
             {{sync::Section::parse("notes"), sync::Permission::kAppend, 0},
              {sync::Section::parse("profile"), sync::Permission::kRead, 0}});
  auto note = family.engine->add_record(plan, "note", {{"text", "Mum was cheerful today"}});
  ASSERT_TRUE(family.sync(plan).empty());
  ASSERT_TRUE(owner->sync(plan).empty());
  EXPECT_EQ(field(owner->engine->state(plan), note, "text"), "Mum was cheerful today");
  EXPECT_EQ(field(family.engine->state(plan), note, "text"), "Mum was cheerful today");
  // Live: the owner stays subscribed and receives the family's next note as it is stored.
  auto live = family.engine->add_record(plan, "note", {{"text", "GP visit booked"}});
  ASSERT_TRUE(family.sync(plan).empty());
  EXPECT_TRUE(owner->pump_until(
      [&] { return field(owner->engine->state(plan), live, "text") == "GP visit booked"; }));
}

TEST_F(KithdTest, ADeviceThatMissed1000OpsCatchesUpInOrder) {
  owner_with_plan();
  TestDevice nurse(dir.path(), "nurse");
  nurse.connect(*server);
  add_member(*owner, nurse, plan, {{sync::Section::parse("notes"), sync::Permission::kRead, 0}});
  nurse.conn.reset();  // offline
  std::vector<sync::RecordId> notes;
  for (int i = 0; i < 1000; ++i) {
    notes.push_back(owner->engine->add_record(plan, "note", {{"text", "note " + std::to_string(i)}}));
  }
  ASSERT_TRUE(owner->sync(plan).empty());
  nurse.connect(*server);
  const std::uint64_t cursor = nurse.engine->cursor(plan);
  auto raw = raw_catch_up(nurse, plan, cursor);
  ASSERT_TRUE(raw.complete);
  ASSERT_EQ(raw.ops.size(), 1000u);
  for (std::size_t i = 1; i < raw.ops.size(); ++i) {
    EXPECT_LT(raw.ops[i - 1].server_seq(), raw.ops[i].server_seq());
  }
  // Only the section the nurse may read, with its checksum.
  ASSERT_EQ(raw.complete->checksums_size(), 1);
  EXPECT_EQ(raw.complete->checksums(0).section(), "notes");
  EXPECT_EQ(raw.complete->checksums(0).op_count(), 1000u);
  ASSERT_TRUE(nurse.sync(plan).empty());
  EXPECT_EQ(field(nurse.engine->state(plan), notes.back(), "text"), "note 999");
  EXPECT_EQ(nurse.engine->cursor(plan), raw.complete->server_seq());
}

// A Prometheus counter of /metrics, 0 if absent.
std::uint64_t counter(const std::string& metrics, const std::string& name) {
  const auto at = metrics.find("\n" + name + " ");
  if (at == std::string::npos) return 0;
  return std::stoull(metrics.substr(at + name.size() + 2));
}

// Under load kithd gathers the acks and deliveries queued for a connection into shared socket
// writes; each is still its own message, acks come after their commit in request order, and
// deliveries come in sequence order, once each.
TEST_F(KithdTest, PipelinedPushesAreAckedAndDeliveredInOrderThroughSharedWrites) {
  owner_with_plan();
  TestDevice nurse(dir.path(), "nurse");
  nurse.connect(*server);
  add_member(*owner, nurse, plan, {{sync::Section::parse("notes"), sync::Permission::kRead, 0}});
  const std::string before =
      https_request(server->port(), server->ca_file(), "GET", "/metrics").body;
  auto f = forge(*owner);
  const auto epoch = owner->engine->membership(plan).epoch(sync::Section::parse("notes"));
  constexpr std::uint64_t kPushes = 150;  // within the connection's request burst (200)
  sync::OpHash prev{};
  std::vector<std::uint64_t> ids;
  for (std::uint64_t i = 1; i <= kPushes; ++i) {  // all sent before any ack is read
    auto op = f.op("notes", i, prev, epoch);
    prev = op.hash();
    auto m = f.push({op});
    m.set_request_id(owner->next_request++);
    ids.push_back(m.request_id());
    owner->conn->send(m);
  }
  std::vector<std::uint64_t> acked_seq;
  while (acked_seq.size() < kPushes) {
    auto m = owner->conn->receive(10s);
    ASSERT_TRUE(m) << "acks missing after " << acked_seq.size();
    ASSERT_FALSE(m->has_error()) << m->DebugString();
    if (!m->has_push_ack()) continue;
    ASSERT_EQ(m->request_id(), ids[acked_seq.size()]) << "acks out of request order";
    ASSERT_EQ(m->push_ack().acked_size(), 1);
    acked_seq.push_back(m->push_ack().acked(0).server_seq());
  }
  for (std::size_t i = 1; i < acked_seq.size(); ++i) EXPECT_EQ(acked_seq[i], acked_seq[i - 1] + 1);
  std::vector<std::uint64_t> delivered;
  while (delivered.size() < kPushes) {
    auto m = nurse.conn->receive(10s);
    ASSERT_TRUE(m) << "deliveries missing after " << delivered.size();
    for (const auto& d : m->ops_batch().ops()) delivered.push_back(d.server_seq());
  }
  EXPECT_EQ(delivered, acked_seq);  // every op once, in sequence order
  const std::string after =
      https_request(server->port(), server->ca_file(), "GET", "/metrics").body;
  const auto messages =
      counter(after, "kithd_messages_sent_total") - counter(before, "kithd_messages_sent_total");
  const auto writes =
      counter(after, "kithd_send_flushes_total") - counter(before, "kithd_send_flushes_total");
  EXPECT_GE(messages, 2 * kPushes);
  EXPECT_LT(writes, messages) << "no two queued messages shared a write";
}

TEST_F(KithdTest, RevokedMemberGetsNothingNew) {
  owner_with_plan();
  TestDevice nurse(dir.path(), "nurse");
  nurse.connect(*server);
  const auto health = sync::Section::parse("health");
  add_member(*owner, nurse, plan, {{health, sync::Permission::kRead, 0}});
  owner->engine->add_record(plan, "health", {{"text", "Blood pressure 130/85"}});
  ASSERT_TRUE(owner->sync(plan).empty());
  ASSERT_TRUE(nurse.sync(plan).empty());
  const std::uint64_t cursor = nurse.engine->cursor(plan);

  // The owner revokes the nurse's access to health: the revocation entry is pushed by hand
  // (the engine's revoke command belongs to the circle-of-support work).
  sync::MembershipLog log = owner->engine->membership(plan);
  auto revoke = log.next(sync::MembershipEntry::Kind::kRevoke, owner->device(), 10);
  revoke.member = nurse.account();
  revoke.section = health;
  revoke.sign(owner->secrets().device.signing);
  auto ack = owner->request(message_with(0, [&](ClientMessage& m) {
    m.mutable_push_membership()->set_plan_id(str(plan.bytes()));
    m.mutable_push_membership()->add_entries(str(revoke.serialize()));
  }));
  ASSERT_TRUE(ack.has_push_ack()) << ack.DebugString();
  ASSERT_TRUE(owner->sync(plan).empty());
  owner->engine->rotate_key(plan, health);
  owner->engine->add_record(plan, "health", {{"text", "New medication: amlodipine"}});
  ASSERT_TRUE(owner->sync(plan).empty());

  auto after = raw_catch_up(nurse, plan, cursor);
  ASSERT_TRUE(after.error.has_value());
  EXPECT_EQ(after.error->code(), ErrorCode::NOT_MEMBER);
  EXPECT_TRUE(after.ops.empty());
  EXPECT_TRUE(after.envelopes.empty());
}

class RateLimitedKithd : public KithdTest {
  KithdOptions options() override {
    KithdOptions o;
    o.args = {"--requests-per-second", "2", "--request-burst", "5"};
    return o;
  }
};

TEST_F(RateLimitedKithd, FloodBeyondTheRateLimitIsRefused) {
  auto conn = server->connect();
  for (int i = 1; i <= 20; ++i) {
    conn->send(message_with(i, [](ClientMessage& m) { m.mutable_ping()->set_client_time_ms(1); }));
  }
  int pongs = 0, limited = 0;
  std::uint64_t retry_after = 0;
  while (auto m = conn->receive(2s)) {
    if (m->has_pong()) ++pongs;
    if (m->has_error() && m->error().code() == ErrorCode::RATE_LIMITED) {
      ++limited;
      retry_after = m->error().retry_after_ms();
    }
  }
  EXPECT_GE(pongs, 5);
  EXPECT_GE(limited, 1);
  EXPECT_GT(retry_after, 0u);
  std::this_thread::sleep_for(std::chrono::milliseconds(retry_after + 600));
  conn->send(message_with(99, [](ClientMessage& m) { m.mutable_ping()->set_client_time_ms(1); }));
  auto pong = conn->receive(5s);
  ASSERT_TRUE(pong);
  EXPECT_TRUE(pong->has_pong()) << pong->DebugString();
}

class SmallQueueKithd : public KithdTest {
 protected:
  KithdOptions options() override {
    KithdOptions o;
    // Unthrottled: one test pushes as fast as acks come back.
    o.args = {"--max-pending-send-bytes", "65536", "--requests-per-second", "100000"};
    o.args.insert(o.args.end(), {"--request-burst", "1000000"});
    return o;
  }

  // A reader, subscribed and live, that never reads again.
  std::unique_ptr<TestDevice> deaf_reader() {
    auto reader = std::make_unique<TestDevice>(dir.path(), "reader");
    reader->connect(*server);
    add_member(*owner, *reader, plan,
               {{sync::Section::parse("notes"), sync::Permission::kRead, 0}});
    EXPECT_TRUE(raw_catch_up(*reader, plan, reader->engine->cursor(plan)).complete);
    return reader;
  }
  // Whether kithd logged that it cut a slow reader off, waiting up to `wait` for it.
  bool cut_off(std::chrono::milliseconds wait) {
    return server->wait_for_log(
        [](const nlohmann::json& l) {
          return l.value("event", "") == "reject" && l.value("code", "") == "SLOW_READER";
        },
        wait).has_value();
  }
};

TEST_F(SmallQueueKithd, SlowReaderIsDisconnectedWithAReason) {
  owner_with_plan();
  auto reader = deaf_reader();
  const std::string text(12000, 'x');
  for (int round = 0; round < 12 && !cut_off(200ms); ++round) {
    for (int i = 0; i < 60; ++i) owner->engine->add_record(plan, "note", {{"text", text}});
    ASSERT_TRUE(owner->sync(plan).empty());
  }
  EXPECT_TRUE(cut_off(10s)) << server->log_tail();
  EXPECT_EQ(https_request(server->port(), server->ca_file(), "GET", "/healthz").status, 200);
}

// Live batches of one small op each, pushed as fast as they are acknowledged: while the
// reader's socket is full kithd gathers them many to a TLS record, and what it has gathered
// counts towards the limit too.
TEST_F(SmallQueueKithd, SlowReaderOfGatheredMessagesIsDisconnectedWithAReason) {
  owner_with_plan();
  auto reader = deaf_reader();
  auto f = forge(*owner);
  const auto epoch = owner->engine->membership(plan).epoch(sync::Section::parse("notes"));
  sync::OpHash prev{};
  std::uint64_t seq = 0;
  for (int round = 0; round < 300 && !cut_off(1ms); ++round) {
    for (int i = 0; i < 100; ++i) {
      auto op = f.op("notes", ++seq, prev, epoch);
      prev = op.hash();
      auto m = f.push({op});
      m.set_request_id(owner->next_request++);
      owner->conn->send(m);
    }
    for (int i = 0; i < 100; ++i) {
      auto m = owner->conn->receive(10s);
      ASSERT_TRUE(m && m->has_push_ack()) << (m ? m->DebugString() : "no answer");
    }
  }
  EXPECT_TRUE(cut_off(10s)) << "after " << seq << " ops\n" << server->log_tail();
  EXPECT_EQ(https_request(server->port(), server->ca_file(), "GET", "/healthz").status, 200);
}

TEST_F(KithdTest, SigtermDrainsAndExitsZero) {
  owner_with_plan();
  // The device keeps reading, as a connected phone does, so it sees the close frame.
  std::thread reader([&] {
    try {
      while (!owner->conn->close_reason()) owner->conn->receive_raw(1s);
    } catch (const client::TransportError&) {
    }
  });
  auto status = server->stop();
  reader.join();
  EXPECT_TRUE(status.clean()) << status.to_string() << "\n" << server->log_tail();
  auto reason = owner->conn->close_reason();
  ASSERT_TRUE(reason.has_value());
  EXPECT_EQ(reason->code, 1001);
  EXPECT_NE(reason->reason.find("SHUTTING_DOWN"), std::string::npos);
}

TEST_F(KithdTest, AcknowledgedOpsSurviveKill9) {
  owner_with_plan();
  for (int i = 0; i < 50; ++i) owner->engine->add_record(plan, "note", {{"text", "visit " + std::to_string(i)}});
  ASSERT_TRUE(owner->sync(plan).empty());
  ASSERT_EQ(owner->engine->outbox_size(plan), 0u);  // every op acknowledged
  server->kill9();
  server->start();
  owner->connect(*server);
  EXPECT_EQ(stored_ops(), 51u);
}

TEST_F(KithdTest, EveryLogLineIsJsonWithoutPlanText) {
  owner_with_plan();
  server->stop();
  for (const auto& line : server->log_lines()) {
    EXPECT_TRUE(line.is_object()) << line.dump();
    EXPECT_TRUE(line.contains("event"));
  }
  EXPECT_EQ(server->log_text().find("gardening"), std::string::npos);
}

}  // namespace
}  // namespace kith::test
