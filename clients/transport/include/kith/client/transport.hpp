// The client's connection to kithd: one TLS WebSocket to wss://HOST:PORT/v1/sync, used by the
// kith CLI, libkith and the server's integration tests.
//
// It is blocking and every call has a deadline, so a caller that is not built around an event
// loop (a command-line tool, a C ABI call, a test) can still never hang: `open()` and every
// send finish within TlsOptions::timeout or throw, and `receive()` takes its own timeout and
// returns nothing when it passes. TLS is 1.2 or newer and always verified: the chain against
// the given CA file (or the system store), and the host name against the certificate (an IP
// literal against the certificate's IP addresses). One binary WebSocket message carries one
// encoded kith.v1 message (sync/proto/kith/v1/sync.proto).
//
//   auto conn = Connection::open(Endpoint::parse("wss://127.0.0.1:8443"), {.ca_file = ca});
//   conn->authenticate(me, "kith-cli 0.1");
//   conn->send(subscribe);
//   while (auto msg = conn->receive(std::chrono::seconds(5))) { ... }
//   conn->close();
//
// Every failure is a TransportError whose kind() a caller can branch on and whose what() a
// person can act on. A Connection is not thread-safe: use it from one thread at a time. It may
// be destroyed at any time; destroying an open connection drops it without a close handshake.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "kith/crypto/bytes.hpp"
#include "kith/v1/sync.pb.h"

namespace kith::sync {
struct DeviceIdentity;
}  // namespace kith::sync

namespace kith::client {

// What went wrong, in terms a caller can act on. The numbering is stable (the C ABI maps it).
class TransportError : public std::runtime_error {
 public:
  enum class Kind {
    kUnreachable,   // no TCP connection: bad host, refused, no answer, no route
    kTlsUntrusted,  // the server's certificate does not verify or is not for this host
    kTlsFailed,     // TLS failed otherwise: no common version or cipher, bad record, CA file
    kHandshake,     // the server did not accept the WebSocket upgrade on the path
    kTimeout,       // an operation on a connection took longer than its deadline
    kClosed,        // the connection ended (see Connection::close_reason())
    kProtocol,      // the server sent something this client cannot accept
    kServerError,   // the server answered with an Error; server_code() says which
  };

  TransportError(Kind kind, const std::string& message,
                 kith::v1::ErrorCode server_code = kith::v1::UNSPECIFIED);

  Kind kind() const noexcept { return kind_; }
  // The server's code when kind() is kServerError, otherwise UNSPECIFIED.
  kith::v1::ErrorCode server_code() const noexcept { return server_code_; }

 private:
  Kind kind_;
  kith::v1::ErrorCode server_code_;
};

// "unreachable", "tls-untrusted", ...: stable names for logs and --json output.
std::string_view to_string(TransportError::Kind kind) noexcept;

// Where kithd listens.
struct Endpoint {
  std::string host;  // a DNS name, or an IP literal (IPv6 without brackets)
  std::uint16_t port = 0;
  std::string path = "/v1/sync";

  // Parses wss://HOST:PORT[/path]; HOST may be [IPv6]. The port is required (Kith has no
  // well-known port). Throws std::invalid_argument naming what is wrong.
  static Endpoint parse(std::string_view url);
  // wss://HOST:PORT/path, the form parse() reads.
  std::string url() const;
  // HOST:PORT ([HOST]:PORT for IPv6), as messages show the server.
  std::string authority() const;
};

struct TlsOptions {
  // PEM file holding the certificate(s) to trust, e.g. kithd's DATA/dev-cert.pem. When unset,
  // the system's trust store.
  std::optional<std::filesystem::path> ca_file;
  // The deadline for open() as a whole and for each send and close.
  std::chrono::milliseconds timeout{10000};
};

// The WebSocket close frame the server sent.
struct CloseReason {
  std::uint16_t code = 0;  // 1000 normal, 1001 going away, 1008 policy, 1009 too big, ...
  std::string reason;
};

// One WebSocket message as it arrived, before decoding.
struct RawMessage {
  bool binary = true;
  crypto::Bytes data;
};

class Connection {
 public:
  inline static constexpr std::size_t kChannelBindingSize = 32;
  using ChannelBinding = std::array<std::uint8_t, kChannelBindingSize>;

  // TCP connect, TLS handshake with verification, WebSocket upgrade on endpoint.path, all
  // within options.timeout. Throws TransportError: kUnreachable, kTlsUntrusted, kTlsFailed,
  // kHandshake, kTimeout.
  static std::unique_ptr<Connection> open(const Endpoint& endpoint, const TlsOptions& options);

  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Hello, Challenge, Authenticate, Authenticated, within options.timeout per reply. The
  // signature covers the challenge nonce || channel_binding() || the device signing key, so an
  // answer relayed from another TLS session does not verify. Throws TransportError:
  // kServerError (the server's Error), kProtocol (an unexpected reply, or a server that
  // authenticated someone else), kTimeout, kClosed.
  void authenticate(const sync::DeviceIdentity& me, std::string_view client_name);

  // A fresh request id for a ClientMessage (1, 2, ...; authenticate() takes its ids here too).
  std::uint64_t next_request_id() noexcept { return ++last_request_id_; }

  // Sends one message, encoded with wire::encode. Throws TransportError: kTimeout, kClosed.
  void send(const kith::v1::ClientMessage& msg);

  // The next message from the server, or nullopt when none arrives within `timeout` (the
  // connection stays usable). Messages that arrived before the server closed are returned
  // first; after that it throws kClosed. A message that does not decode (wire::decode_server
  // with the default limits) or is not binary throws kProtocol; the connection stays open.
  std::optional<kith::v1::ServerMessage> receive(std::chrono::milliseconds timeout);

  // Normal close (1000): sends the close frame and waits, within options.timeout, for the
  // server's. Never throws; a connection that is already closed is left as it is.
  void close() noexcept;

  // The close frame the server sent, once the connection has ended with one (after receive()
  // or send() threw kClosed, or after close()).
  std::optional<CloseReason> close_reason() const;
  // True until the connection ends (either side closed it, or it was lost).
  bool is_open() const noexcept;

  // 32 bytes of TLS exporter output, label "EXPORTER-kith-v1-auth-challenge", no context (RFC
  // 5705 / RFC 8446 §7.5): the same on both ends of this TLS session and different for any
  // other, which is what ties an Authenticate to this connection.
  ChannelBinding channel_binding() const;

  // For tests that send what a good client never would. send_binary and send_text throw as
  // send; receive_raw as receive, without decoding.
  void send_binary(crypto::ByteView bytes);
  void send_text(std::string_view text);
  std::optional<RawMessage> receive_raw(std::chrono::milliseconds timeout);

  const Endpoint& endpoint() const noexcept { return endpoint_; }

 private:
  struct Impl;
  Connection(const Endpoint& endpoint, std::unique_ptr<Impl> impl);

  Endpoint endpoint_;
  std::unique_ptr<Impl> impl_;
  std::uint64_t last_request_id_ = 0;
};

}  // namespace kith::client
