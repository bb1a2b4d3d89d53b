// Clients that misbehave on purpose, for tests of what kithd does with bad input: plain TCP
// bytes on the TLS port, HTTPS requests without a WebSocket, and connections that stop halfway
// to see the server's deadlines close them. All on 127.0.0.1, every wait bounded.
//
// Plain POSIX sockets and OpenSSL, with no Boost: the test client for good behaviour is
// kith::client::Connection. The process ignores SIGPIPE once any of these is used (a peer that
// closes first must not kill the test). Not thread-safe; separate objects may be used from
// separate threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace kith::test {

// What came back from the server.
struct RawReply {
  std::string received;
  bool peer_closed = false;  // the server closed (or reset) the connection within the timeout
};

// Connects to 127.0.0.1:port in plain TCP, sends `bytes`, and reads until the server closes
// or `timeout` passes. Throws std::runtime_error if it cannot connect.
RawReply tcp_exchange(std::uint16_t port, std::string_view bytes,
                      std::chrono::milliseconds timeout);

struct HttpResponse {
  int status = 0;
  std::string reason;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;                            // de-chunked

  // The header's value, or "" when absent. `name` in any case.
  std::string header(std::string_view name) const;
};

// One HTTP/1.1 request over verified TLS (ca_file, IP 127.0.0.1), with "Connection: close".
// Throws std::runtime_error on a TLS failure, a timeout, or a response that does not parse.
HttpResponse https_request(std::uint16_t port, const std::filesystem::path& ca_file,
                           std::string_view method, std::string_view target,
                           std::chrono::milliseconds timeout = std::chrono::seconds(10));

// A connection that goes as far as the test says and then does whatever it is told, usually
// nothing: TCP only (the server's TLS handshake deadline should close it), TLS without an
// upgrade request (the WebSocket handshake deadline), half a request, and so on.
class RawConnection {
 public:
  // TCP to 127.0.0.1:port. Throws std::runtime_error.
  static std::unique_ptr<RawConnection> connect(
      std::uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  // TLS 1.2+ client handshake. With a CA file the server's certificate is verified (chain and
  // IP 127.0.0.1); without, anything is accepted. Throws std::runtime_error on failure.
  void tls_handshake(const std::optional<std::filesystem::path>& ca_file,
                     std::chrono::milliseconds timeout = std::chrono::seconds(10));
  bool is_tls() const noexcept;

  // Sends all of `bytes` (over TLS after tls_handshake). Returns false if the server has closed
  // the connection or the timeout passed first.
  bool send(std::string_view bytes, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Reads until the server closes or `timeout` passes.
  RawReply receive_until_close(std::chrono::milliseconds timeout);
  // Reads what arrives within `timeout`, returning as soon as anything does ("" if nothing).
  std::string receive_some(std::chrono::milliseconds timeout);
  // Waits, reading and discarding, until the server closes the connection; true if it did
  // within `timeout`.
  bool wait_closed(std::chrono::milliseconds timeout);

 private:
  struct Impl;
  explicit RawConnection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kith::test
