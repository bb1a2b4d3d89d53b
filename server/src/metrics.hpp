// The counters behind https://HOST:PORT/metrics, rendered in the Prometheus text format
// (version 0.0.4). Names start with `kithd_`. Thread-safe: counters are atomics; histograms and
// the per-code counters take a short lock.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace kith::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  // Appends the _bucket, _sum and _count lines of `name`.
  void render(std::string& out, const std::string& name, const std::string& help) const;

 private:
  std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::vector<std::uint64_t> counts_;  // one per bound, then +Inf
  double sum_ = 0;
  std::uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();

  std::atomic<std::int64_t> connections_open{0};
  std::atomic<std::int64_t> plans_cached{0};
  std::atomic<std::int64_t> op_id_bytes_cached{0};
  std::atomic<std::uint64_t> connections_total{0};
  std::atomic<std::uint64_t> sessions_authenticated{0};
  std::atomic<std::uint64_t> ops_accepted{0};
  std::atomic<std::uint64_t> fanout_deliveries{0};
  // WebSocket messages sessions wrote, and the TLS writes that sent them (several small
  // messages queued together go out in one write; see net_server.cpp).
  std::atomic<std::uint64_t> messages_sent{0};
  std::atomic<std::uint64_t> send_flushes{0};
  std::atomic<std::uint64_t> catch_up_bytes{0};
  std::atomic<std::uint64_t> membership_entries_accepted{0};
  std::atomic<std::uint64_t> envelopes_accepted{0};

  // A refused request or op, by its ErrorCode name ("FORBIDDEN").
  void rejected(const std::string& code);
  // One group commit: how many requests and ops it carried and how long it took.
  void committed(std::size_t batches, std::size_t ops, double seconds);

  std::string render() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::uint64_t> rejected_;
  Histogram commit_batches_;
  Histogram commit_ops_;
  Histogram commit_seconds_;
};

}  // namespace kith::server
