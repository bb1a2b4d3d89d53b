// The client transport (kith::client::Connection) against a scripted TLS WebSocket server that
// runs inside the test, on 127.0.0.1 with certificates made here: verification, deadlines,
// close handling, the channel binding and the authentication exchange. Needs no kithd.
//
// Each scenario's server side is a script run by support/scripted_server.hpp. What a script
// observes comes back to the test through a promise, and every wait on one is bounded.

#include "kith/client/transport.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <future>
#include <vector>

#include "kith/crypto/sign.hpp"
#include "kith/sync/engine.hpp"
#include "kith/sync/wire.hpp"
#include "support/scripted_server.hpp"
#include "support/temp_dir.hpp"
#include "support/test_certificate.hpp"

namespace kith::client {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using Kind = TransportError::Kind;
using test::ScriptedPeer;
using test::ScriptedServer;
using test::TestCertificate;

constexpr auto kWait = 10s;  // the most any test waits for anything

// A listening socket on 127.0.0.1 that never accepts: the kernel completes TCP handshakes into
// its backlog and nobody ever answers. Closed on destruction.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd_, 8) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::runtime_error("cannot listen on 127.0.0.1");
    }
    port_ = ntohs(addr.sin_port);
  }
  ~SilentListener() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

Endpoint loopback(std::uint16_t port) {
  Endpoint ep;
  ep.host = "127.0.0.1";
  ep.port = port;
  return ep;
}

// Waits for what a script reports; fails the test (and returns T{}) if it never does.
template <class T>
T await(std::future<T>& f) {
  if (f.wait_for(kWait) != std::future_status::ready) {
    ADD_FAILURE() << "the scripted server did not report within " << kWait.count() << " s";
    return T{};
  }
  return f.get();
}

template <class T>
std::shared_ptr<std::promise<T>> promise_of() {
  return std::make_shared<std::promise<T>>();
}

kith::v1::ServerMessage pong(std::uint64_t request_id, std::uint64_t client_time) {
  kith::v1::ServerMessage msg;
  msg.set_request_id(request_id);
  msg.mutable_pong()->set_client_time_ms(client_time);
  msg.mutable_pong()->set_server_time_ms(1700000000000);
  return msg;
}

kith::v1::ClientMessage ping(std::uint64_t request_id, std::uint64_t client_time) {
  kith::v1::ClientMessage msg;
  msg.set_request_id(request_id);
  msg.mutable_ping()->set_client_time_ms(client_time);
  return msg;
}

// Runs `f`, which must throw TransportError; returns it.
TransportError error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const TransportError& e) {
    return e;
  }
  ADD_FAILURE() << "no TransportError";
  return TransportError(Kind::kServerError, "none");
}

sync::DeviceIdentity make_identity() {
  return sync::DeviceIdentity::create(
      crypto::DeviceSecrets{crypto::SigningKey::generate(), crypto::DeviceKeys::generate()}, 1);
}

class TransportTest : public ::testing::Test {
 protected:
  TlsOptions trusting(const TestCertificate& cert, const std::string& name = "ca.pem") {
    TlsOptions o;
    o.ca_file = cert.write_cert(dir_ / name);
    o.timeout = 5s;
    return o;
  }

  test::TempDir dir_{"kith-transport-test"};
  TestCertificate cert_ = TestCertificate::localhost();
};

// --- Endpoint ------------------------------------------------------------------------------

TEST(Endpoint, ParsesWssUrls) {
  auto ep = Endpoint::parse("wss://127.0.0.1:8443");
  EXPECT_EQ(ep.host, "127.0.0.1");
  EXPECT_EQ(ep.port, 8443);
  EXPECT_EQ(ep.path, "/v1/sync");
  EXPECT_EQ(ep.url(), "wss://127.0.0.1:8443/v1/sync");

  ep = Endpoint::parse("wss://kith.example.org:443/other/path");
  EXPECT_EQ(ep.host, "kith.example.org");
  EXPECT_EQ(ep.port, 443);
  EXPECT_EQ(ep.path, "/other/path");

  ep = Endpoint::parse("wss://[::1]:65535/v1/sync");
  EXPECT_EQ(ep.host, "::1");
  EXPECT_EQ(ep.port, 65535);
  EXPECT_EQ(ep.url(), "wss://[::1]:65535/v1/sync");
}

TEST(Endpoint, RefusesAnythingElseSayingWhy) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"ws://127.0.0.1:8443", "only TLS"},
      {"https://127.0.0.1:8443", "wss://"},
      {"127.0.0.1:8443", "wss://"},
      {"wss://127.0.0.1", "no port"},
      {"wss://127.0.0.1:", "port"},
      {"wss://127.0.0.1:0", "1 to 65535"},
      {"wss://127.0.0.1:65536", "1 to 65535"},
      {"wss://127.0.0.1:84x3", "number"},
      {"wss://:8443", "no host"},
      {"wss://::1:8443", "[brackets]"},
      {"wss://[::1:8443", "closing"},
      {"wss://[not-v6]:8443", "IPv6"},
      {"wss://user@host:8443", "user names"},
      {"wss://host:8443/a b", "space"},
      {"", "wss://"},
  };
  for (const auto& [url, why] : bad) {
    try {
      Endpoint::parse(url);
      ADD_FAILURE() << url << " was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << url << ": " << e.what();
    }
  }
}

// --- Connecting ----------------------------------------------------------------------------

TEST_F(TransportTest, RoundTripsMessagesOverVerifiedTls) {
  auto got = promise_of<kith::v1::ClientMessage>();
  ScriptedServer server(cert_, [got](ScriptedPeer& peer) {
    auto msg = peer.read_message();
    if (!msg) throw std::runtime_error("no message");
    got->set_value(*msg);
    peer.send(pong(msg->request_id(), msg->ping().client_time_ms()));
  });
  auto conn = Connection::open(server.endpoint(), trusting(cert_));
  ASSERT_TRUE(conn->is_open());
  conn->send(ping(conn->next_request_id(), 42));

  auto future = got->get_future();
  const auto seen = await(future);
  EXPECT_EQ(seen.request_id(), 1u);
  EXPECT_EQ(seen.ping().client_time_ms(), 42u);

  const auto reply = conn->receive(kWait);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->request_id(), 1u);
  ASSERT_TRUE(reply->has_pong());
  EXPECT_EQ(reply->pong().client_time_ms(), 42u);
  EXPECT_EQ(reply->pong().server_time_ms(), 1700000000000u);
  EXPECT_EQ(sync::wire::encode(*reply), sync::wire::encode(pong(1, 42)));
  conn->close();
  EXPECT_FALSE(conn->is_open());
  EXPECT_TRUE(server.errors().empty());
}

TEST_F(TransportTest, ConnectsByHostNameAndSendsItAsSni) {
  auto sni = promise_of<std::string>();
  ScriptedServer server(cert_, [sni](ScriptedPeer& peer) { sni->set_value(peer.sni()); });
  auto conn = Connection::open(server.endpoint("localhost"), trusting(cert_));
  auto future = sni->get_future();
  EXPECT_EQ(await(future), "localhost");
}

TEST_F(TransportTest, SendsNoSniForAnIpAddress) {
  auto sni = promise_of<std::string>();
  ScriptedServer server(cert_, [sni](ScriptedPeer& peer) { sni->set_value(peer.sni()); });
  auto conn = Connection::open(server.endpoint("127.0.0.1"), trusting(cert_));
  auto future = sni->get_future();
  EXPECT_EQ(await(future), "");
}

TEST_F(TransportTest, WrongCaIsUntrusted) {
  ScriptedServer server(cert_, [](ScriptedPeer&) {});
  const auto other = TestCertificate::localhost();
  const auto e = error_of([&] { Connection::open(server.endpoint(), trusting(other)); });
  EXPECT_EQ(e.kind(), Kind::kTlsUntrusted) << e.what();
  EXPECT_NE(std::string(e.what()).find("not trusted"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("--ca"), std::string::npos) << e.what();
}

TEST_F(TransportTest, SystemStoreDoesNotTrustASelfSignedServer) {
  ScriptedServer server(cert_, [](ScriptedPeer&) {});
  TlsOptions no_ca;
  no_ca.timeout = 5s;
  const auto e = error_of([&] { Connection::open(server.endpoint(), no_ca); });
  EXPECT_EQ(e.kind(), Kind::kTlsUntrusted) << e.what();
}

TEST_F(TransportTest, CertificateForAnotherNameIsRefused) {
  const auto elsewhere = TestCertificate::generate({"DNS:kith.example.org"});
  ScriptedServer server(elsewhere, [](ScriptedPeer&) {});
  const auto e =
      error_of([&] { Connection::open(server.endpoint("localhost"), trusting(elsewhere)); });
  EXPECT_EQ(e.kind(), Kind::kTlsUntrusted) << e.what();
  EXPECT_NE(std::string(e.what()).find("not valid for localhost"), std::string::npos) << e.what();
}

TEST_F(TransportTest, IpAddressMustBeAnIpSanNotADnsName) {
  // "127.0.0.1" as a DNS name or a common name does not count; only an IP SAN does.
  const auto dns_only = TestCertificate::generate({"DNS:localhost", "DNS:127.0.0.1"}, "127.0.0.1");
  ScriptedServer server(dns_only, [](ScriptedPeer&) {});
  const auto e =
      error_of([&] { Connection::open(server.endpoint("127.0.0.1"), trusting(dns_only)); });
  EXPECT_EQ(e.kind(), Kind::kTlsUntrusted) << e.what();
  EXPECT_NE(std::string(e.what()).find("not valid for 127.0.0.1"), std::string::npos) << e.what();
}

TEST_F(TransportTest, MissingCaFileSaysSo) {
  TlsOptions o;
  o.ca_file = dir_ / "nope.pem";
  const auto e = error_of([&] { Connection::open(Endpoint::parse("wss://127.0.0.1:1"), o); });
  EXPECT_EQ(e.kind(), Kind::kTlsFailed) << e.what();
  EXPECT_NE(std::string(e.what()).find("nope.pem does not exist"), std::string::npos) << e.what();
}

TEST_F(TransportTest, NothingListeningIsUnreachable) {
  SilentListener closed;
  const std::uint16_t port = closed.port();
  closed.close();  // nothing listens there now
  const Endpoint ep = loopback(port);
  const auto e = error_of([&] { Connection::open(ep, trusting(cert_)); });
  EXPECT_EQ(e.kind(), Kind::kUnreachable) << e.what();
  EXPECT_EQ(std::string(e.what()),
            "cannot reach 127.0.0.1:" + std::to_string(port) + ": connection refused");
}

TEST_F(TransportTest, SilentServerTimesOutTheTlsHandshake) {
  SilentListener silent;
  const Endpoint ep = loopback(silent.port());
  TlsOptions o = trusting(cert_);
  o.timeout = 300ms;
  const auto start = Clock::now();
  const auto e = error_of([&] { Connection::open(ep, o); });
  const auto took = Clock::now() - start;
  EXPECT_EQ(e.kind(), Kind::kTimeout) << e.what();
  EXPECT_NE(std::string(e.what()).find("TLS handshake"), std::string::npos) << e.what();
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 3s);
}

TEST_F(TransportTest, RefusedUpgradeIsAHandshakeError) {
  ScriptedServer server(
      cert_, [](ScriptedPeer&) {}, 404);
  const auto e = error_of([&] { Connection::open(server.endpoint(), trusting(cert_)); });
  EXPECT_EQ(e.kind(), Kind::kHandshake) << e.what();
  EXPECT_NE(std::string(e.what()).find("HTTP 404"), std::string::npos) << e.what();
}

// --- Receiving -----------------------------------------------------------------------------

TEST_F(TransportTest, ReceiveTimeoutReturnsNothingAndKeepsTheConnection) {
  ScriptedServer server(cert_, [](ScriptedPeer& peer) {
    // Answers only once asked, after the client has already waited in vain.
    auto msg = peer.read_message();
    if (msg) peer.send(pong(msg->request_id(), msg->ping().client_time_ms()));
  });
  auto conn = Connection::open(server.endpoint(), trusting(cert_));
  const auto start = Clock::now();
  EXPECT_FALSE(conn->receive(200ms).has_value());
  const auto took = Clock::now() - start;
  EXPECT_GE(took, 190ms);
  EXPECT_LT(took, 3s);
  EXPECT_FALSE(conn->receive(0ms).has_value());
  EXPECT_TRUE(conn->is_open());

  conn->send(ping(conn->next_request_id(), 7));
  const auto reply = conn->receive(kWait);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->pong().client_time_ms(), 7u);
}

TEST_F(TransportTest, ServerCloseCodeAndReasonAreSeen) {
  ScriptedServer server(cert_, [](ScriptedPeer& peer) {
    peer.send(pong(0, 1));
    peer.close(4001, "shutting down for maintenance");
  });
  auto conn = Connection::open(server.endpoint(), trusting(cert_));
  // What came before the close frame first, then the close.
  const auto first = conn->receive(kWait);
  ASSERT_TRUE(first.has_value());
  EXPECT_TRUE(first->has_pong());
  const auto e = error_of([&] { conn->receive(kWait); });
  EXPECT_EQ(e.kind(), Kind::kClosed) << e.what();
  EXPECT_NE(std::string(e.what()).find("4001: shutting down for maintenance"), std::string::npos)
      << e.what();
  ASSERT_TRUE(conn->close_reason().has_value());
  EXPECT_EQ(conn->close_reason()->code, 4001);
  EXPECT_EQ(conn->close_reason()->reason, "shutting down for maintenance");
  EXPECT_FALSE(conn->is_open());
  // Every later call says the same.
  EXPECT_EQ(error_of([&] { conn->send(ping(2, 2)); }).kind(), Kind::kClosed);
  EXPECT_EQ(error_of([&] { conn->receive(10ms); }).kind(), Kind::kClosed);
  conn->close();  // harmless
}

TEST_F(TransportTest, ConnectionDroppedWithoutCloseFrameIsClosed) {
  ScriptedServer server(cert_, [](ScriptedPeer& peer) { peer.drop(); });
  auto conn = Connection::open(server.endpoint(), trusting(cert_));
  const auto e = error_of([&] { conn->receive(kWait); });
  EXPECT_EQ(e.kind(), Kind::kClosed) << e.what();
  EXPECT_NE(std::string(e.what()).find("without a close frame"), std::string::npos) << e.what();
  EXPECT_FALSE(conn->close_reason().has_value());
}

TEST_F(TransportTest, ClientCloseIsANormalClose) {
  auto code = promise_of<std::uint16_t>();
  ScriptedServer server(cert_, [code](ScriptedPeer& peer) {
    while (peer.read()) {
    }
    code->set_value(peer.client_close_code());
  });
  auto conn = Connection::open(server.endpoint(), trusting(cert_));
  conn->close();
  auto future = code->get_future();
  EXPECT_EQ(await(future), 1000);
  ASSERT_TRUE(conn->close_reason().has_value());
  EXPECT_EQ(conn->close_reason()->code, 1000);  // the server's echo
  EXPECT_EQ(error_of([&] { conn->send(ping(1, 1)); }).kind(), Kind::kClosed);
}

TEST_F(TransportTest, MalformedMessageIsAProtocolErrorAndTheConnectionSurvives) {
  ScriptedServer server(cert_, [](ScriptedPeer& peer) {
    peer.send_raw("\xff\xff\xff garbage");
    peer.send_raw("{\"json\": true}", /*binary=*/false);
    peer.send(pong(0, 3));
  });
  auto conn = Connection::open(server.endpoint(), trusting(cert_));
  auto e = error_of([&] { conn->receive(kWait); });
  EXPECT_EQ(e.kind(), Kind::kProtocol) << e.what();
  EXPECT_NE(std::string(e.what()).find("does not decode"), std::string::npos) << e.what();
  e = error_of([&] { conn->receive(kWait); });
  EXPECT_EQ(e.kind(), Kind::kProtocol) << e.what();
  EXPECT_NE(std::string(e.what()).find("text message"), std::string::npos) << e.what();
  const auto ok = conn->receive(kWait);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->pong().client_time_ms(), 3u);
}

TEST_F(TransportTest, RawSendAndReceiveKeepTextAndBinaryApart) {
  auto seen = promise_of<std::vector<std::pair<bool, std::string>>>();
  ScriptedServer server(cert_, [seen](ScriptedPeer& peer) {
    std::vector<std::pair<bool, std::string>> got;
    for (int i = 0; i < 2; ++i) {
      auto m = peer.read();
      if (!m) break;
      got.emplace_back(peer.got_text(), *m);
    }
    seen->set_value(got);
    peer.send_raw("text back", false);
    peer.send_raw(std::string("\x00\x01\x02", 3), true);
  });
  auto conn = Connection::open(server.endpoint(), trusting(cert_));
  const std::uint8_t raw[] = {0, 1, 2, 0xff};
  conn->send_binary(raw);
  conn->send_text("hello");
  auto future = seen->get_future();
  const auto got = await(future);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_FALSE(got[0].first);
  EXPECT_EQ(got[0].second, std::string("\x00\x01\x02\xff", 4));
  EXPECT_TRUE(got[1].first);
  EXPECT_EQ(got[1].second, "hello");

  auto m = conn->receive_raw(kWait);
  ASSERT_TRUE(m.has_value());
  EXPECT_FALSE(m->binary);
  EXPECT_EQ(std::string(m->data.begin(), m->data.end()), "text back");
  m = conn->receive_raw(kWait);
  ASSERT_TRUE(m.has_value());
  EXPECT_TRUE(m->binary);
  EXPECT_EQ(m->data, (crypto::Bytes{0, 1, 2}));
}

TEST_F(TransportTest, ReceivesAMessageOfExactlyTheLimit) {
  std::string big(sync::wire::Limits{}.max_message_bytes, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 % 251);
  ScriptedServer server(cert_, [big](ScriptedPeer& peer) {
    peer.send_raw(big);
    peer.send(pong(0, 9));
  });
  auto conn = Connection::open(server.endpoint(), trusting(cert_));
  const auto m = conn->receive_raw(kWait);
  ASSERT_TRUE(m.has_value());
  EXPECT_TRUE(m->binary);
  EXPECT_TRUE(std::string(m->data.begin(), m->data.end()) == big);
  const auto next = conn->receive(kWait);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->pong().client_time_ms(), 9u);
}

TEST_F(TransportTest, OversizedMessageIsRefusedWith1009) {
  auto code = promise_of<std::uint16_t>();
  ScriptedServer server(cert_, [code](ScriptedPeer& peer) {
    peer.send_raw(std::string(sync::wire::Limits{}.max_message_bytes + 1, 'x'));
    while (peer.read()) {
    }
    code->set_value(peer.client_close_code());
  });
  auto conn = Connection::open(server.endpoint(), trusting(cert_));
  const auto e = error_of([&] { conn->receive(kWait); });
  EXPECT_EQ(e.kind(), Kind::kProtocol) << e.what();
  EXPECT_NE(std::string(e.what()).find("over 1048576 bytes"), std::string::npos) << e.what();
  EXPECT_FALSE(conn->is_open());
  auto future = code->get_future();
  EXPECT_EQ(await(future), 1009);
  EXPECT_EQ(error_of([&] { conn->receive(10ms); }).kind(), Kind::kProtocol);
}

// --- Channel binding -----------------------------------------------------------------------

TEST_F(TransportTest, ChannelBindingIsTheSessionsExporterOutput) {
  auto server_side = std::make_shared<std::vector<std::promise<Connection::ChannelBinding>>>(2);
  auto next = std::make_shared<std::atomic<int>>(0);
  ScriptedServer server(cert_, [server_side, next](ScriptedPeer& peer) {
    (*server_side)[static_cast<std::size_t>(next->fetch_add(1))].set_value(peer.channel_binding());
  });
  auto a = Connection::open(server.endpoint(), trusting(cert_));
  auto fa = (*server_side)[0].get_future();
  const auto server_a = await(fa);
  auto b = Connection::open(server.endpoint(), trusting(cert_));
  auto fb = (*server_side)[1].get_future();
  const auto server_b = await(fb);

  EXPECT_EQ(a->channel_binding(), server_a);
  EXPECT_EQ(b->channel_binding(), server_b);
  EXPECT_EQ(a->channel_binding(), a->channel_binding());
  EXPECT_NE(a->channel_binding(), b->channel_binding());
  EXPECT_NE(a->channel_binding(), Connection::ChannelBinding{});
}

// --- Authentication ------------------------------------------------------------------------

// The server's half of authentication, as docs/PROTOCOL.md describes it, written here
// independently of the client. Reports whether the signature verified.
ScriptedServer::Script authenticating_server(
    std::shared_ptr<std::promise<bool>> verified,
    std::function<void(kith::v1::ServerMessage&)> tamper = nullptr) {
  return [verified, tamper](ScriptedPeer& peer) {
    const auto hello = peer.read_message();
    if (!hello || !hello->has_hello()) throw std::runtime_error("expected Hello");
    if (hello->hello().protocol_version() != 1) throw std::runtime_error("version");
    if (hello->hello().client_name() != "transport-test 1.0") throw std::runtime_error("name");
    const auto cert =
        crypto::DeviceCertificate::parse(crypto::as_bytes(hello->hello().device_certificate()));
    if (!cert.verify()) throw std::runtime_error("certificate does not verify");

    std::array<std::uint8_t, 32> nonce{};
    RAND_bytes(nonce.data(), nonce.size());
    kith::v1::ServerMessage challenge;
    challenge.set_request_id(hello->request_id());
    challenge.mutable_challenge()->set_nonce(nonce.data(), nonce.size());
    challenge.mutable_challenge()->set_server_time_ms(1700000000000);
    peer.send(challenge);

    const auto answer = peer.read_message();
    if (!answer || !answer->has_authenticate()) throw std::runtime_error("expected Authenticate");
    crypto::Bytes signed_bytes(nonce.begin(), nonce.end());
    const auto binding = peer.channel_binding();
    signed_bytes.insert(signed_bytes.end(), binding.begin(), binding.end());
    const auto device = cert.device_signing().bytes();
    signed_bytes.insert(signed_bytes.end(), device.begin(), device.end());
    const bool ok =
        cert.device_signing().verify(crypto::labels::kAuthChallenge, signed_bytes,
                                     crypto::as_bytes(answer->authenticate().signature()));
    verified->set_value(ok);

    kith::v1::ServerMessage reply;
    reply.set_request_id(answer->request_id());
    if (ok) {
      reply.mutable_authenticated()->set_account_id(cert.identity().bytes().data(), 32);
      reply.mutable_authenticated()->set_device_id(device.data(), device.size());
    } else {
      reply = sync::wire::make_error(answer->request_id(), kith::v1::BAD_SIGNATURE,
                                     "the challenge answer does not verify");
    }
    if (tamper) tamper(reply);
    peer.send(reply);
  };
}

TEST_F(TransportTest, AuthenticateSignsNonceBindingAndDeviceKey) {
  auto verified = promise_of<bool>();
  ScriptedServer server(cert_, authenticating_server(verified));
  const auto me = make_identity();
  auto conn = Connection::open(server.endpoint(), trusting(cert_));
  conn->authenticate(me, "transport-test 1.0");
  auto future = verified->get_future();
  EXPECT_TRUE(await(future));
  EXPECT_EQ(conn->next_request_id(), 3u);  // Hello and Authenticate took 1 and 2
  EXPECT_TRUE(server.errors().empty()) << server.errors().front();
}

TEST_F(TransportTest, AuthenticateErrorReplyIsAServerError) {
  ScriptedServer server(cert_, [](ScriptedPeer& peer) {
    const auto hello = peer.read_message();
    if (!hello) return;
    peer.send(sync::wire::make_error(hello->request_id(), kith::v1::UNSUPPORTED_VERSION,
                                     "this server speaks protocol version 2 only"));
  });
  auto conn = Connection::open(server.endpoint(), trusting(cert_));
  const auto me = make_identity();
  const auto e = error_of([&] { conn->authenticate(me, "transport-test 1.0"); });
  EXPECT_EQ(e.kind(), Kind::kServerError) << e.what();
  EXPECT_EQ(e.server_code(), kith::v1::UNSUPPORTED_VERSION);
  EXPECT_NE(std::string(e.what()).find("version 2 only"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("UNSUPPORTED_VERSION"), std::string::npos) << e.what();
}

TEST_F(TransportTest, AuthenticateRefusedSignatureIsAServerError) {
  auto verified = promise_of<bool>();
  // The server authenticates against a different nonce than it sent, so nothing verifies.
  ScriptedServer server(cert_, [verified](ScriptedPeer& peer) {
    const auto hello = peer.read_message();
    if (!hello) return;
    kith::v1::ServerMessage challenge;
    challenge.set_request_id(hello->request_id());
    challenge.mutable_challenge()->set_nonce(std::string(32, 'n'));
    peer.send(challenge);
    const auto answer = peer.read_message();
    if (!answer) return;
    const auto cert =
        crypto::DeviceCertificate::parse(crypto::as_bytes(hello->hello().device_certificate()));
    crypto::Bytes wrong(32, 'n');
    const auto binding = Connection::ChannelBinding{};  // not this session's
    wrong.insert(wrong.end(), binding.begin(), binding.end());
    const auto device = cert.device_signing().bytes();
    wrong.insert(wrong.end(), device.begin(), device.end());
    verified->set_value(
        cert.device_signing().verify(crypto::labels::kAuthChallenge, wrong,
                                     crypto::as_bytes(answer->authenticate().signature())));
    peer.send(sync::wire::make_error(answer->request_id(), kith::v1::BAD_SIGNATURE,
                                     "the challenge answer does not verify"));
  });
  auto conn = Connection::open(server.endpoint(), trusting(cert_));
  const auto me = make_identity();
  const auto e = error_of([&] { conn->authenticate(me, "transport-test 1.0"); });
  EXPECT_EQ(e.kind(), Kind::kServerError) << e.what();
  EXPECT_EQ(e.server_code(), kith::v1::BAD_SIGNATURE);
  auto future = verified->get_future();
  EXPECT_FALSE(await(future)) << "a signature without this session's binding verified";
}

TEST_F(TransportTest, AuthenticateChecksWhoTheServerAuthenticated) {
  auto verified = promise_of<bool>();
  ScriptedServer server(cert_, authenticating_server(verified, [](kith::v1::ServerMessage& m) {
                          m.mutable_authenticated()->set_account_id(std::string(32, 'x'));
                        }));
  auto conn = Connection::open(server.endpoint(), trusting(cert_));
  const auto me = make_identity();
  const auto e = error_of([&] { conn->authenticate(me, "transport-test 1.0"); });
  EXPECT_EQ(e.kind(), Kind::kProtocol) << e.what();
  EXPECT_NE(std::string(e.what()).find("different account"), std::string::npos) << e.what();
}

TEST_F(TransportTest, AuthenticateTimesOutWhenTheServerIsSilent) {
  ScriptedServer server(cert_, [](ScriptedPeer& peer) {
    while (peer.read()) {
    }
  });
  TlsOptions o = trusting(cert_);
  o.timeout = 300ms;
  auto conn = Connection::open(server.endpoint(), o);
  const auto me = make_identity();
  const auto start = Clock::now();
  const auto e = error_of([&] { conn->authenticate(me, "transport-test 1.0"); });
  EXPECT_EQ(e.kind(), Kind::kTimeout) << e.what();
  EXPECT_NE(std::string(e.what()).find("did not answer Hello"), std::string::npos) << e.what();
  EXPECT_LT(Clock::now() - start, 3s);
}

TEST(TransportError, KindsHaveStableNames) {
  EXPECT_EQ(to_string(Kind::kUnreachable), "unreachable");
  EXPECT_EQ(to_string(Kind::kTlsUntrusted), "tls-untrusted");
  EXPECT_EQ(to_string(Kind::kTlsFailed), "tls-failed");
  EXPECT_EQ(to_string(Kind::kHandshake), "handshake");
  EXPECT_EQ(to_string(Kind::kTimeout), "timeout");
  EXPECT_EQ(to_string(Kind::kClosed), "closed");
  EXPECT_EQ(to_string(Kind::kProtocol), "protocol");
  EXPECT_EQ(to_string(Kind::kServerError), "server-error");
}

}  // namespace
}  // namespace kith::client
