// kithd's resource limits through a real kithd on loopback, each set small by its flag so the
// test is quick: the TLS handshake deadline, the cap on connections per account, the WebSocket
// idle timeout, the message size, the catch-up batch size and the drain timeout.
#include <iostream>
#include <regex>
#include <thread>

#include "kithd_test_fixture.hpp"
#include "support/raw_clients.hpp"

namespace kith::test {
namespace {

using Clock = std::chrono::steady_clock;
using kith::v1::ClientMessage;
using kith::v1::ErrorCode;

std::chrono::milliseconds since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t);
}

ClientMessage ping(std::uint64_t request_id) {
  return message_with(request_id,
                      [](ClientMessage& m) { m.mutable_ping()->set_client_time_ms(1); });
}

// True when `conn` answers a Ping (the connection is open and served).
bool answers_ping(client::Connection& conn, std::uint64_t request_id) {
  conn.send(ping(request_id));
  while (auto m = conn.receive(5s)) {
    if (m->request_id() == request_id) return m->has_pong();
  }
  return false;
}

// "kithd_connections N" from /metrics: WebSocket sessions open now.
long open_sessions(const KithdProcess& kithd) {
  const auto body = https_request(kithd.port(), kithd.ca_file(), "GET", "/metrics").body;
  std::smatch m;
  if (!std::regex_search(body, m, std::regex("\nkithd_connections ([0-9]+)\n"))) return -1;
  return std::stol(m[1]);
}

// --- TLS handshake deadline ------------------------------------------------------------------

class HandshakeDeadlineKithd : public KithdTest {
  KithdOptions options() override {
    KithdOptions o;
    o.args = {"--tls-handshake-timeout-ms", "100"};  // the smallest allowed
    return o;
  }
};

TEST_F(HandshakeDeadlineKithd, ClientsThatStallBeforeTheSessionAreCutOff) {
  // Silent after TCP connect.
  const auto t0 = Clock::now();
  auto silent = RawConnection::connect(server->port());
  // Half a ClientHello: a TLS record header promising 512 bytes, and 11 of them.
  auto partial = RawConnection::connect(server->port());
  ASSERT_TRUE(partial->send(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11) +
                            std::string(5, '\x42')));
  // TLS done, then no HTTP request (the same deadline covers the upgrade request).
  auto no_request = RawConnection::connect(server->port());
  no_request->tls_handshake(server->ca_file(), 5s);

  // Meanwhile a well-behaved client is served.
  EXPECT_EQ(https_request(server->port(), server->ca_file(), "GET", "/healthz").status, 200);

  EXPECT_TRUE(silent->wait_closed(3s)) << "a silent TCP client was not disconnected";
  const auto silent_for = since(t0);
  EXPECT_GE(silent_for, 90ms) << "closed before the deadline";
  EXPECT_LT(silent_for, 2500ms) << "closed long after the 100 ms deadline";
  EXPECT_TRUE(partial->wait_closed(3s)) << "a partial ClientHello kept its connection";
  EXPECT_TRUE(no_request->wait_closed(3s)) << "a TLS client that sent no request was kept";
  EXPECT_LT(since(t0), 3s);

  // The half handshake got as far as TLS and was cut off there.
  EXPECT_TRUE(server->wait_for_event("tls_failed", 2s)) << server->log_tail();
  // And the server still serves, over HTTPS and WebSocket.
  EXPECT_EQ(https_request(server->port(), server->ca_file(), "GET", "/healthz").status, 200);
  auto conn = server->connect();
  EXPECT_TRUE(answers_ping(*conn, 1));
}

// --- Connections per account -----------------------------------------------------------------

class TwoConnectionsPerAccountKithd : public KithdTest {
  KithdOptions options() override {
    KithdOptions o;
    o.args = {"--max-connections-per-account", "2"};
    return o;
  }
};

TEST_F(TwoConnectionsPerAccountKithd, ThirdConnectionIsRefusedUntilOneCloses) {
  TestDevice phone(dir.path(), "phone");
  TestDevice laptop(dir.path(), "laptop", &phone.secrets().identity);  // the same account
  TestDevice other(dir.path(), "other");
  ASSERT_EQ(phone.account(), laptop.account());

  auto first = server->connect();
  first->authenticate(phone.engine->identity(), "first");
  auto second = server->connect();
  second->authenticate(phone.engine->identity(), "second");
  // A third, from another device of the account: refused at Authenticate with RATE_LIMITED.
  auto third = server->connect();
  try {
    third->authenticate(laptop.engine->identity(), "third");
    FAIL() << "a third connection of the account was authenticated";
  } catch (const client::TransportError& e) {
    EXPECT_EQ(e.kind(), client::TransportError::Kind::kServerError) << e.what();
    EXPECT_EQ(e.server_code(), ErrorCode::RATE_LIMITED) << e.what();
    EXPECT_NE(std::string(e.what()).find("connections"), std::string::npos) << e.what();
  }
  // The cap is per account: another account is not affected.
  auto elsewhere = server->connect();
  EXPECT_NO_THROW(elsewhere->authenticate(other.engine->identity(), "other"));
  // The two earlier connections keep working.
  EXPECT_TRUE(answers_ping(*first, 100));
  EXPECT_TRUE(answers_ping(*second, 100));

  // Once one closes, the refused connection may authenticate (the count drops as the server
  // finishes with the closed session, so this may take a moment).
  first->close();
  bool accepted = false;
  const auto t0 = Clock::now();
  while (!accepted && since(t0) < 5s) {
    try {
      third->authenticate(laptop.engine->identity(), "third");
      accepted = true;
    } catch (const client::TransportError& e) {
      ASSERT_EQ(e.server_code(), ErrorCode::RATE_LIMITED) << e.what();
      std::this_thread::sleep_for(50ms);
    }
  }
  EXPECT_TRUE(accepted) << "a slot freed by a closed connection was not given back";
  EXPECT_TRUE(answers_ping(*second, 101));
  EXPECT_TRUE(answers_ping(*third, 102));
  // And the account is at its cap again.
  auto fourth = server->connect();
  EXPECT_THROW(fourth->authenticate(phone.engine->identity(), "fourth"), client::TransportError);
}

// --- Idle timeout ------------------------------------------------------------------------------

// With --idle-timeout-s N, Beast (keep_alive_pings) pings a connection from which nothing has
// been read for N/2 s, and closes it when nothing, not even the pong, has arrived N/2 s later;
// a read (any frame, a pong included) starts the count again. kith::client::Connection answers
// pings only while a call runs its I/O (receive, send), so a client that makes no call for
// longer than N is what a dead or frozen phone looks like to the server.
class IdleKithd : public KithdTest {
  KithdOptions options() override {
    KithdOptions o;
    o.args = {"--idle-timeout-s", "1"};  // the smallest allowed
    return o;
  }
};

TEST_F(IdleKithd, SilentConnectionIsClosedAfterTheIdleTimeout) {
  TestDevice phone(dir.path(), "phone");
  const auto t0 = Clock::now();  // before the session starts, so the bounds below are safe
  phone.connect(*server);
  ASSERT_EQ(open_sessions(*server), 1);
  // The client makes no call now: the server's pings go unanswered.
  std::chrono::milliseconds closed_after{-1};
  while (since(t0) < 4s) {
    if (open_sessions(*server) == 0) {
      closed_after = since(t0);
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_GE(closed_after.count(), 0) << "the idle connection was still open after 4 s";
  EXPECT_GE(closed_after, 1s) << "closed before the idle timeout";
  EXPECT_LT(closed_after, 3s);
  std::cout << "[          ] the idle session closed " << closed_after.count()
            << " ms after it was opened\n";
  // What the client then sees: the connection is over, without a close frame (Beast's idle
  // timeout closes the socket; it does not send a close).
  EXPECT_THROW(
      {
        while (true) phone.conn->receive(2s);
      },
      client::TransportError);
  EXPECT_FALSE(phone.conn->is_open());
  EXPECT_FALSE(phone.conn->close_reason().has_value());
  // A timeout is a normal end: it is not logged as an error.
  EXPECT_FALSE(server->wait_for_event("connection_error", 0ms)) << server->log_tail();
}

TEST_F(IdleKithd, ConnectionThatAnswersPingsOutlivesTheIdleTimeout) {
  TestDevice phone(dir.path(), "phone");
  phone.connect(*server);
  // Three idle timeouts without a request: the client only reads, which answers the pings.
  const auto t0 = Clock::now();
  while (since(t0) < 3s) {
    auto m = phone.conn->receive(200ms);
    EXPECT_FALSE(m.has_value()) << "the server sent a message to an idle client";
  }
  EXPECT_TRUE(phone.conn->is_open());
  EXPECT_TRUE(answers_ping(*phone.conn, 1));
  EXPECT_EQ(open_sessions(*server), 1);
}

// --- Message size, catch-up batches, drain ------------------------------------------------------

class SmallMessageKithd : public KithdTest {
  KithdOptions options() override {
    KithdOptions o;
    o.args = {"--max-message-bytes", "4096"};
    return o;
  }
};

TEST_F(SmallMessageKithd, MessageOverTheConfiguredLimitClosesWithTooBig) {
  auto conn = server->connect();
  // Under the limit: read and answered (it does not decode, so MALFORMED).
  conn->send_binary(crypto::Bytes(4000, 0xff));
  auto reply = conn->receive(5s);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->error().code(), ErrorCode::MALFORMED) << reply->DebugString();
  // Over it: the connection is closed with 1009 (message too big).
  conn->send_binary(crypto::Bytes(5000, 0xff));
  EXPECT_THROW(
      {
        while (true) conn->receive(5s);
      },
      client::TransportError);
  auto reason = conn->close_reason();
  ASSERT_TRUE(reason.has_value());
  EXPECT_EQ(reason->code, 1009);
  EXPECT_TRUE(server->wait_for_log(
      [](const nlohmann::json& l) {
        return l.value("event", "") == "reject" && l.value("code", "") == "TOO_LARGE";
      },
      2s))
      << server->log_tail();
}

class SmallBatchKithd : public KithdTest {
  KithdOptions options() override {
    KithdOptions o;
    o.args = {"--catch-up-batch-ops", "2"};
    return o;
  }
};

TEST_F(SmallBatchKithd, CatchUpComesInBatchesOfTheConfiguredSize) {
  owner_with_plan();  // one op
  for (int i = 0; i < 4; ++i) owner->engine->add_record(plan, "note", {{"text", "visit"}});
  ASSERT_TRUE(owner->sync(plan).empty());
  const std::uint64_t id = 77;
  owner->conn->send(message_with(
      id, [&](ClientMessage& m) { m.mutable_subscribe()->set_plan_id(str(plan.bytes())); }));
  std::vector<kith::v1::OpsBatch> batches;
  std::optional<kith::v1::CatchUpComplete> done;
  while (auto m = owner->conn->receive(5s)) {
    if (m->request_id() != id) continue;
    if (m->has_ops_batch()) batches.push_back(m->ops_batch());
    if (m->has_catch_up_complete()) {
      done = m->catch_up_complete();
      break;
    }
  }
  ASSERT_TRUE(done.has_value());
  ASSERT_EQ(batches.size(), 3u);  // 2 + 2 + 1
  std::uint64_t up_to = 0;
  for (std::size_t i = 0; i < batches.size(); ++i) {
    EXPECT_EQ(batches[i].ops_size(), i < 2 ? 2 : 1);
    EXPECT_EQ(batches[i].more(), i < 2) << "batch " << i;
    EXPECT_GT(batches[i].up_to_seq(), up_to);
    up_to = batches[i].up_to_seq();
  }
  EXPECT_EQ(up_to, done->server_seq());
}

class QuickDrainKithd : public KithdTest {
  KithdOptions options() override {
    KithdOptions o;
    o.args = {"--drain-timeout-ms", "300"};
    return o;
  }
};

// A device that does not answer the close frame keeps its session open; SIGTERM waits for it
// no longer than --drain-timeout-ms (without it, the 5 s close deadline would end the wait).
TEST_F(QuickDrainKithd, SigtermWaitsNoLongerThanTheDrainTimeout) {
  TestDevice phone(dir.path(), "phone");
  phone.connect(*server);  // and makes no call again
  const auto t0 = Clock::now();
  const auto status = server->stop();
  const auto took = since(t0);
  EXPECT_TRUE(status.clean()) << status.to_string() << "\n" << server->log_tail();
  EXPECT_GE(took, 300ms) << "did not wait for the open session";
  EXPECT_LT(took, 3s) << "waited past the drain timeout";
}

}  // namespace
}  // namespace kith::test
