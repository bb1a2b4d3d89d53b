// The load generator's scenarios, each one run against one kithd (kithd_probe.hpp):
//
// - traffic (`fanout`, `batch`, `latency`): N plans, each with one pushing device and M - 1
//   subscribed receivers (devices of the same account), spread over the io threads by plan.
//   Pushers either keep `window` pushes in flight (rate 0: as fast as kithd acknowledges) or
//   are paced to a total op rate. After a warm-up, counters, CPU time and /metrics are read at
//   the start and end of a measured window; push -> delivery latency is timed in this process
//   (steady_clock) from the moment a push is queued on its connection to the moment its live
//   OpsBatch is read by each receiver, matched by the push's first op id.
// - idle: N connections of N distinct accounts, opened `concurrency` at a time, authenticated
//   and left idle; kithd's VmRSS before and after says what one idle connection costs.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "kithd_probe.hpp"
#include "workload.hpp"

namespace kith::bench {

struct TrafficOptions {
  WorkloadSpec spec;
  unsigned client_threads = 2;  // io threads
  unsigned gen_threads = 2;     // threads making the workload before the run
  unsigned window = 16;         // pushes in flight per pusher
  double rate = 0;              // ops/s over all plans; 0: as fast as acks allow
  double warmup_s = 2;
  double duration_s = 10;
  double drain_s = 10;  // after the window, how long to wait for outstanding acks/deliveries
  std::chrono::microseconds tick{1000};  // the pacer's period (rate > 0)
  double setup_timeout_s = 120;
};

struct Latency {
  std::size_t samples = 0;
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, p999_ms = 0, max_ms = 0;
};

struct ServerFigures {
  std::uint64_t rss_start_kb = 0, rss_end_kb = 0, hwm_kb = 0;  // VmRSS, VmHWM (peak)
  double cpu_cores = 0;         // kithd CPU seconds per second of the window
  double client_cpu_cores = 0;  // this process, the same
  double other_cpu_cores = 0;   // every other process on the machine, the same
  double interrupt_cores = 0;   // irq + softirq time, the same
  double steal_cores = 0;       // time the hypervisor gave to other machines, the same
  double load_average = 0;      // 1-minute, at the window's end
  std::vector<double> thread_cores;  // kithd per thread, by thread id (creation order)
  double storage_write_mb_per_s = 0;  // /proc/PID/io write_bytes over the window
  double write_syscalls_per_s = 0;    // /proc/PID/io syscw over the window
  Metrics delta;                // /metrics at the window's end minus at its start
};

struct TrafficResult {
  double window_s = 0;
  std::uint64_t pushes_sent = 0, pushes_acked = 0, ops_acked = 0;
  std::uint64_t batches_delivered = 0, ops_delivered = 0;
  double pushes_per_s = 0, ops_per_s = 0, deliveries_per_s = 0, delivered_ops_per_s = 0;
  double offered_pushes_per_s = 0;  // pushes sent in the window, per second
  Latency latency;
  std::uint64_t errors = 0, unmatched = 0, pacer_stalls = 0;
  std::string first_error;
  bool exhausted = false;       // a pusher ran out of pre-made pushes: the window ended early
  bool drained = false;         // every ack and delivery arrived after the window
  ServerFigures server;
  WorkloadStats workload;
  double setup_s = 0;           // connect, authenticate, create plans, subscribe
};

// Throws std::runtime_error when the setup fails (nothing measured).
TrafficResult run_traffic(Kithd& kithd, const TrafficOptions& options);

struct IdleOptions {
  std::size_t connections = 15000;
  unsigned client_threads = 2;
  unsigned gen_threads = 2;
  unsigned concurrency = 200;  // handshakes in progress at once
  double settle_s = 5;         // idle time before reading VmRSS
  double timeout_s = 600;
};

struct IdleResult {
  std::size_t authenticated = 0, failed = 0;
  std::string first_error;
  double connect_s = 0;  // wall time to open and authenticate all of them
  std::uint64_t rss_before_kb = 0, rss_after_kb = 0, rss_closed_kb = 0, hwm_kb = 0;
  double per_connection_kb = 0;  // (after - before) / authenticated
  double kithd_connections = -1;  // the kithd_connections gauge while they were open
  std::uint64_t client_rss_before_kb = 0, client_rss_after_kb = 0;
  double load_average = 0;  // 1-minute, when VmRSS was read with the connections open
};

IdleResult run_idle(Kithd& kithd, const IdleOptions& options);

// Percentiles of a set of nanosecond samples (sorts it).
Latency summarize(std::vector<std::int64_t>& samples_ns);

}  // namespace kith::bench
