// The load generator's side of the wire: many asynchronous TLS WebSocket connections to kithd
// on a few io threads, each authenticated as one device (Hello, Challenge, Authenticate with
// the TLS exporter channel binding, as kithd requires; docs/PROTOCOL.md "Authentication").
//
// Unlike clients/transport (blocking, one connection per caller), a connection here costs a
// socket and a few buffers, so thousands fit on one thread. Each io thread runs its own
// io_context; everything about one connection (its events, its sends) happens on its thread,
// so code that keeps all of a plan's connections on one thread needs no locks.
//
//   IoPool pool(2, server);
//   auto events = std::make_shared<LinkEvents>(...);
//   Link* link = pool.open(thread, device, events, tag);   // from any thread
//   ... events->authenticated(*link) on `thread`: link->send(bytes) ...
//   pool.stop();                                           // closes every socket
//
// Everything Beast is in client.cpp, the one translation unit that pays for it.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "kith/v1/sync.pb.h"
#include "workload.hpp"

namespace kith::bench {

using Clock = std::chrono::steady_clock;

struct ServerAddress {
  std::string host = "127.0.0.1";  // an IP literal: the certificate is checked against it
  std::uint16_t port = 0;
  std::filesystem::path ca_file;  // kithd's DATA/dev-cert.pem
};

// One connection, as the code driving it sees it. Methods are called on the link's thread.
class Link {
 public:
  virtual ~Link() = default;
  // Queues an encoded ClientMessage; one write is in flight at a time.
  virtual void send(Message bytes) = 0;
  // Messages queued and not yet written.
  virtual std::size_t queued() const = 0;
  // The value given to IoPool::open.
  virtual std::uint64_t tag() const = 0;
};

// Called on the link's thread. `message` gets every ServerMessage after Authenticated, with
// the time its read completed. `failed` is called at most once; the link is dead afterwards.
struct LinkEvents {
  std::function<void(Link&)> authenticated;
  std::function<void(Link&, const kith::v1::ServerMessage&, Clock::time_point)> message;
  std::function<void(Link&, const std::string& why)> failed;
};

class IoPool {
 public:
  // Starts `threads` io threads. Throws if the CA file cannot be read.
  IoPool(unsigned threads, ServerAddress server);
  // stop().
  ~IoPool();
  IoPool(const IoPool&) = delete;
  IoPool& operator=(const IoPool&) = delete;

  unsigned threads() const noexcept;
  // Connects, on io thread `thread`, and authenticates as `device` (which must outlive the
  // pool). Thread-safe. The Link lives as long as the pool.
  Link* open(unsigned thread, const Device& device, std::shared_ptr<const LinkEvents> events,
             std::uint64_t tag);
  // Runs `f` on io thread `thread`. Thread-safe.
  void post(unsigned thread, std::function<void()> f);
  // Calls `tick` on io thread `thread` every `period` until it returns false. Thread-safe.
  void every(unsigned thread, std::chrono::microseconds period, std::function<bool()> tick);
  // Stops the io threads and closes every connection (no close handshake: the server sees the
  // TCP connection end). No event is delivered afterwards. Idempotent.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// GET https://HOST:PORT`target` (kithd's /metrics), verifying the certificate as the
// connections do. Throws std::runtime_error on failure or after `timeout`.
std::string https_get(const ServerAddress& server, const std::string& target,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace kith::bench
