// The network side of kithd: one TLS port serving wss://HOST:PORT/v1/sync, /healthz and
// /metrics (Boost.Beast over OpenSSL), on a pool of threads with a strand per connection.
// Everything Beast is in net_server.cpp, so that only one translation unit pays for it.
//
// Lifecycle: the constructor binds the port (so port() is known before run()); run() serves
// until SIGTERM or SIGINT and then drains: it stops accepting, waits for in-flight commits and
// their acks to be queued, closes every WebSocket with 1001 (going away) and reason
// "SHUTTING_DOWN", waits for the sessions (at most Config::drain_timeout_ms), and returns.
// Not copyable; run() is called once, from one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "config.hpp"
#include "dev_cert.hpp"
#include "group_commit.hpp"
#include "metrics.hpp"
#include "sync_service.hpp"

namespace kith::server {

class Server {
 public:
  // Throws std::runtime_error with an operator's sentence (port in use, bad certificate).
  Server(const Config& config, const CertFiles& tls, SyncService& service,
         GroupCommitter& committer, Metrics& metrics);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  std::uint16_t port() const noexcept;
  void run();

  // Runs `run`. What it delivers to connections on this thread (Peer::deliver) is held and
  // handed to each connection at once, in order, when it returns (or after every 256 messages),
  // so that a group commit's acks and live batches reach a connection in one turn of its strand
  // and share TLS records and write(2)s. For GroupCommitter::Options::around_dones. Not
  // reentrant.
  static void deliver_together(const std::function<void()>& run);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kith::server
