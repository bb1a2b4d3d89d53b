// A TLS WebSocket server that plays a script, for testing clients without kithd: it listens on
// 127.0.0.1 with a given certificate, and for every connection it upgrades runs the script on
// a thread of its own. The script does whatever the scenario needs (answer, stay silent, close
// with a code, drop the connection, send garbage) through a ScriptedPeer.
//
//   ScriptedServer server(cert, [](ScriptedPeer& peer) {
//     auto hello = peer.read_message();
//     peer.close(4001, "go away");
//   });
//   auto conn = client::Connection::open(server.endpoint(), tls);
//
// Synchronous Beast underneath, kept out of this header so that the tests including it compile
// quickly. A script's exception is recorded in errors(). The destructor shuts every connection
// down (blocked reads end) and joins the threads, so each scenario ends cleanly; a script must
// therefore never wait on something only the test can give it without a timeout.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kith/client/transport.hpp"
#include "kith/v1/sync.pb.h"
#include "support/test_certificate.hpp"

namespace kith::test {

// The server's side of one connection, after TLS and the WebSocket upgrade. Used from the
// script's thread only.
class ScriptedPeer {
 public:
  virtual ~ScriptedPeer() = default;

  // The next message, or nullopt once the connection has ended (client_close_code() then
  // says how).
  virtual std::optional<std::string> read() = 0;
  // Whether the last message read was text.
  virtual bool got_text() const = 0;
  // read() decoded with wire::decode_client; throws if it does not decode.
  std::optional<kith::v1::ClientMessage> read_message();
  // The close frame the client sent (0: none).
  virtual std::uint16_t client_close_code() const = 0;

  virtual void send_raw(std::string_view bytes, bool binary) = 0;
  void send_raw(std::string_view bytes) { send_raw(bytes, true); }
  void send(const kith::v1::ServerMessage& msg);
  // Sends a close frame and waits for the client's.
  virtual void close(std::uint16_t code, std::string_view reason) = 0;
  // Ends TCP without a close frame or close_notify: a crash, as the client sees it.
  virtual void drop() = 0;

  // This TLS session's exporter output for `label` (no context), 32 bytes.
  virtual std::array<std::uint8_t, 32> exporter(std::string_view label) = 0;
  // exporter("EXPORTER-kith-v1-auth-challenge"): what Connection::channel_binding() must equal.
  std::array<std::uint8_t, 32> channel_binding();
  // The server name the client sent (SNI), or "".
  virtual std::string sni() = 0;
};

class ScriptedServer {
 public:
  using Script = std::function<void(ScriptedPeer&)>;

  // Listens on 127.0.0.1:0 at once. With reject_status, upgrade requests are answered with
  // that HTTP status instead, and the script never runs.
  ScriptedServer(const TestCertificate& cert, Script script, unsigned reject_status = 0);
  ~ScriptedServer();
  ScriptedServer(const ScriptedServer&) = delete;
  ScriptedServer& operator=(const ScriptedServer&) = delete;

  std::uint16_t port() const;
  // wss://HOST:PORT/v1/sync; HOST is only what the client connects to and checks.
  client::Endpoint endpoint(const std::string& host = "127.0.0.1") const;
  // What went wrong on the server's side ("tls: ...", "upgrade: ...", "script: ...").
  std::vector<std::string> errors() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kith::test
