// Durability through a real kithd: kill -9 while pushes are in flight loses no acknowledged op
// and stores none twice. (kithd_sync_test.cpp has the case where every push was acknowledged
// before the kill.)
#include <iostream>
#include <set>

#include "kithd_test_fixture.hpp"

namespace kith::test {
namespace {

using Clock = std::chrono::steady_clock;

std::chrono::milliseconds since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t);
}

// Sends the next op of one chain in `risk` (the ops in `sent` came before it), alone in a push,
// without waiting for its answer. Returns the push's request id (++next_id).
std::uint64_t push_next_risk_op(const Forge& f, client::Connection& conn,
                                std::vector<sync::Op>& sent, std::uint64_t& next_id) {
  const sync::OpHash prev = sent.empty() ? sync::OpHash{} : sent.back().hash();
  sent.push_back(f.op("risk", sent.size() + 1, prev));
  auto m = f.push({sent.back()});
  m.set_request_id(++next_id);
  conn.send(m);
  return next_id;
}

class UnthrottledKithd : public KithdTest {
  KithdOptions options() override {
    KithdOptions o;
    o.args = {"--requests-per-second", "100000", "--request-burst", "1000000"};
    return o;
  }
};

TEST_F(UnthrottledKithd, AcknowledgedOpsSurviveKill9MidStream) {
  owner_with_plan();
  auto f = forge(*owner);
  client::Connection& conn = *owner->conn;

  // One chain in `risk`, pushed one op per request, many requests in flight.
  std::vector<sync::Op> sent;
  std::map<std::uint64_t, std::string> in_flight;  // request id -> op id
  std::map<std::string, std::uint64_t> acked;      // op id -> server_seq
  std::uint64_t next_id = 1000;
  auto push_next = [&] {
    const std::uint64_t id = push_next_risk_op(f, conn, sent, next_id);
    in_flight[id] = str(sync::OpHeader::parse(sent.back().header).op_id.bytes());
  };
  auto take = [&](const kith::v1::ServerMessage& m) {
    if (!in_flight.count(m.request_id())) return;
    ASSERT_TRUE(m.has_push_ack()) << m.DebugString();
    for (const auto& a : m.push_ack().acked()) acked[a.op_id()] = a.server_seq();
    in_flight.erase(m.request_id());
  };

  // A steady stream with 64 requests in flight, until 300 ops are acknowledged.
  const auto t0 = Clock::now();
  while (acked.size() < 300 && since(t0) < 8s) {
    while (in_flight.size() < 64) push_next();
    auto m = conn.receive(5s);
    ASSERT_TRUE(m.has_value()) << "no answer with " << in_flight.size() << " pushes in flight";
    take(*m);
    if (HasFatalFailure()) return;
  }
  ASSERT_GE(acked.size(), 300u);
  // Another burst, and kill -9 while it is being committed.
  for (int i = 0; i < 200; ++i) push_next();
  server->kill9();
  // Acks that left the server before it died count: they were sent after their commit.
  try {
    while (auto m = conn.receive(1s)) take(*m);
  } catch (const client::TransportError&) {
  }
  ASSERT_FALSE(in_flight.empty()) << "every push was acknowledged before the kill; nothing "
                                     "was in flight (make the burst larger)";

  server->start();
  owner->connect(*server);
  auto c = raw_catch_up(*owner, plan, 0);
  ASSERT_TRUE(c.complete.has_value());
  std::set<std::string> seen;
  std::vector<sync::OpHeader> chain;
  std::uint64_t last_seq = 0;
  for (const auto& d : c.ops) {
    EXPECT_GT(d.server_seq(), last_seq) << "server sequence numbers out of order";
    last_seq = d.server_seq();
    const auto h = sync::OpHeader::parse(crypto::as_bytes(d.op().header()));
    const std::string id = str(h.op_id.bytes());
    EXPECT_TRUE(seen.insert(id).second) << "op " << h.op_id.short_hex() << " stored twice";
    if (auto a = acked.find(id); a != acked.end()) {
      EXPECT_EQ(d.server_seq(), a->second) << "an acknowledged op changed its sequence number";
    }
    if (h.section == sync::Section::parse("risk")) {
      ASSERT_LE(h.author_seq, sent.size()) << "an op the test never sent";
      // The chain is unbroken: op n follows op n-1 (its prev is that op's hash).
      const auto hash =
          sync::op_hash(crypto::as_bytes(d.op().header()), crypto::as_bytes(d.op().body()));
      EXPECT_EQ(h.author_seq, chain.size() + 1);
      EXPECT_EQ(h.prev, chain.empty() ? sync::OpHash{} : sent[chain.size() - 1].hash());
      EXPECT_EQ(hash, sent[h.author_seq - 1].hash());
      chain.push_back(h);
    }
  }
  for (const auto& [id, seq] : acked) {
    EXPECT_TRUE(seen.count(id)) << "acknowledged op at server_seq " << seq << " was lost";
  }
  EXPECT_GE(chain.size(), acked.size());
  EXPECT_LE(chain.size(), sent.size());
  std::cout << "[          ] pushed " << sent.size() << " ops; " << acked.size()
            << " acknowledged before kill -9; " << chain.size() << " stored after restart\n";

  // The restarted server continues the chain from what it stored.
  if (chain.size() < sent.size()) {
    auto reply = owner->request(f.push({sent[chain.size()]}));
    EXPECT_TRUE(reply.has_push_ack()) << reply.DebugString();
  } else {
    auto reply = owner->request(f.push({f.op("risk", sent.size() + 1, sent.back().hash())}));
    EXPECT_TRUE(reply.has_push_ack()) << reply.DebugString();
  }
}

// The uniqueness check of a pushed op reads from memory which op ids a plan holds (loaded from
// the database with the plan): after kill -9 and a restart, every op sent again (a device that
// never saw its ack retries the whole push) is acknowledged with its first sequence number and
// stored once, whether or not it was acknowledged before the kill.
TEST_F(UnthrottledKithd, OpsSentAgainAfterKill9AreAcknowledgedAgainNotStoredTwice) {
  owner_with_plan();
  auto f = forge(*owner);
  std::vector<sync::Op> sent;
  std::map<std::string, std::uint64_t> acked;  // op id -> server_seq
  std::uint64_t next_id = 1000;
  auto push_next = [&] { push_next_risk_op(f, *owner->conn, sent, next_id); };
  auto take = [&](const kith::v1::ServerMessage& m) {
    for (const auto& a : m.push_ack().acked()) acked[a.op_id()] = a.server_seq();
  };
  for (int i = 0; i < 60; ++i) push_next();
  while (acked.size() < 60) {
    auto m = owner->conn->receive(5s);
    ASSERT_TRUE(m.has_value()) << acked.size() << " of 60 acknowledged";
    take(*m);
  }
  for (int i = 0; i < 60; ++i) push_next();
  server->kill9();  // with these in flight
  try {
    while (auto m = owner->conn->receive(1s)) take(*m);
  } catch (const client::TransportError&) {
  }
  server->start();
  owner->connect(*server);
  const std::size_t stored_before = stored_ops();

  // Everything again in one push, as a device that never saw its acks retries its outbox: the
  // stored ops are repeats, the rest continue the chain (the head covers the last).
  auto all = f.push(sent);
  all.set_request_id(++next_id);
  auto reply = owner->request(all);
  ASSERT_TRUE(reply.has_push_ack()) << reply.DebugString();
  std::map<std::string, std::uint64_t> again;
  for (const auto& a : reply.push_ack().acked()) again[a.op_id()] = a.server_seq();
  for (const auto& [id, seq] : acked) {
    EXPECT_EQ(again[id], seq) << "an op acknowledged before the kill got another sequence number";
  }
  EXPECT_EQ(again.size(), sent.size());
  EXPECT_EQ(stored_ops(), 1 + sent.size());  // the profile record and each op, once
  EXPECT_GE(stored_before, 1 + acked.size());
  std::cout << "[          ] " << acked.size() << " of " << sent.size()
            << " acknowledged before kill -9; " << stored_before - 1 << " stored\n";
}

}  // namespace
}  // namespace kith::test
