// kithd_load: the kithd load generator. Starts kithd (or attaches to a running one), connects
// plans' devices over TLS WebSockets and measures what the issue asks for:
//
//   kithd_load fanout    single-op pushes, 1 pusher + 3 subscribed receivers per plan, max rate
//   kithd_load batch     100-op pushes, max rate
//   kithd_load latency   single-op pushes paced at 5,000 ops/s; push -> delivery p50/p99/max
//   kithd_load idle      15,000 authenticated idle connections; kithd VmRSS per connection
//
// Every scenario runs --runs times (a fresh kithd and data directory each time, unless
// attached) and prints each run, then the median of every figure. bench/README.md ("kithd load
// generator") says what each figure means.
#include <malloc.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <csignal>
#include <fstream>
#include <iostream>

#include "load/kithd_probe.hpp"
#include "load/report.hpp"
#include "load/scenarios.hpp"

namespace {

using namespace kith::bench;

struct Settings {
  std::string scenario;
  std::size_t runs = 3;
  KithdTarget kithd;
  std::string server_url;
  unsigned kithd_threads = 0;  // 0: kithd's default (one per core)
  std::vector<std::string> kithd_args;
  std::string json_path;
  TrafficOptions traffic;
  std::size_t total_pushes = 0;  // max rate: pushes made in advance, over all plans
  IdleOptions idle;
};

// The scenario's defaults, before the flags override them.
void preset(Settings& s) {
  TrafficOptions& t = s.traffic;
  if (s.scenario == "fanout") {
    t.spec.plans = 64;
    t.spec.devices = 4;
    t.spec.ops_per_push = 1;
    t.window = 16;
    s.total_pushes = 300000;
  } else if (s.scenario == "batch") {
    t.spec.plans = 16;
    t.spec.devices = 4;
    t.spec.ops_per_push = 100;
    t.window = 4;
    s.total_pushes = 8000;
  } else if (s.scenario == "latency") {
    t.spec.plans = 64;
    t.spec.devices = 4;
    t.spec.ops_per_push = 1;
    t.window = 64;
    t.rate = 5000;
  }
}

// Generous limits: the load generator is one client hammering kithd on purpose.
std::vector<std::string> kithd_args(const Settings& s) {
  std::vector<std::string> args = {"--requests-per-second", "100000", "--request-burst", "1000000",
                                   "--max-connections-per-account", "10000",
                                   "--idle-timeout-s", "3600"};
  if (s.kithd_threads > 0) {
    args.push_back("--threads");
    args.push_back(std::to_string(s.kithd_threads));
  }
  args.insert(args.end(), s.kithd_args.begin(), s.kithd_args.end());
  return args;
}

// Idle needs a descriptor per connection; kithd, started from here, inherits the limit.
void raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
  ::getrlimit(RLIMIT_NOFILE, &rl);
  std::cerr << "kithd_load: RLIMIT_NOFILE " << rl.rlim_cur << " (inherited by a kithd started here)\n";
}

std::string describe(const Settings& s) {
  if (s.scenario == "idle") {
    return std::to_string(s.idle.connections) + " idle connections of distinct accounts, " +
           std::to_string(s.idle.concurrency) + " handshakes at a time";
  }
  const TrafficOptions& t = s.traffic;
  return std::to_string(t.spec.plans) + " plans x " + std::to_string(t.spec.devices) +
         " devices (1 pusher, " + std::to_string(t.spec.devices - 1) + " receivers), " +
         std::to_string(t.spec.ops_per_push) + " op(s)/push of ~" +
         std::to_string(t.spec.op_bytes) + " B, " +
         (t.rate > 0 ? "paced at " + std::to_string(static_cast<long>(t.rate)) + " ops/s"
                     : "max rate, window " + std::to_string(t.window)) +
         ", " + std::to_string(t.client_threads) + " client io threads";
}

int run(Settings& s) {
  raise_fd_limit();
  std::signal(SIGPIPE, SIG_IGN);
  s.kithd.args = kithd_args(s);
  if (s.scenario != "idle" && s.traffic.rate <= 0) {
    s.traffic.spec.pushes_per_plan =
        (s.total_pushes + s.traffic.spec.plans - 1) / std::max<std::size_t>(1, s.traffic.spec.plans);
  }
  std::cout << "kithd_load " << s.scenario << ": " << describe(s) << "\n";
  std::vector<nlohmann::json> results;
  for (std::size_t i = 0; i < s.runs; ++i) {
    Kithd kithd(s.kithd);
    if (i == 0) std::cout << "kithd: " << kithd.command_line() << "\n";
    std::cout << "\nrun " << (i + 1) << "/" << s.runs << "\n";
    nlohmann::json j;
    try {
      if (s.scenario == "idle") {
        const IdleResult r = run_idle(kithd, s.idle);
        print(std::cout, r);
        j = to_json(r);
      } else {
        const TrafficResult r = run_traffic(kithd, s.traffic);
        print(std::cout, r);
        j = to_json(r);
      }
    } catch (const std::exception& e) {
      std::cout << "  run failed: " << e.what() << "\n";
      if (kithd.started_here()) std::cout << "  end of kithd's log:\n" << kithd.log_tail();
      return 1;
    }
    if (kithd.started_here()) {
      if (!kithd.running()) std::cout << "  kithd exited during the run!\n";
      std::cout << "  kithd stopped: " << kithd.stop() << "\n";
    }
    std::cout.flush();
    results.push_back(std::move(j));
  }
  const nlohmann::json m = medians(results);
  print_medians(std::cout, s.scenario, m, results.size());
  if (!s.json_path.empty()) {
    std::ofstream out(s.json_path);
    out << nlohmann::json{{"scenario", s.scenario}, {"setup", describe(s)},
                          {"runs", results}, {"median", m}}
               .dump(2)
        << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // The generator frees every batch it receives. glibc gives a thread arena's free top back to
  // the kernel once it passes 128 KiB (madvise) and faults it in again for the next message;
  // on this VM, where page faults and TLB flushes are costly, that was ~20% of kithd_load's CPU,
  // taken from the kithd it measures on the same cores (bench/README.md, 2026-11-23). It keeps
  // what it frees instead. kithd is started with the system's defaults, as in production.
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's largest
  Settings s;
  const std::vector<std::string> scenarios = {"fanout", "batch", "latency", "idle"};
  if (argc >= 2 && std::find(scenarios.begin(), scenarios.end(), argv[1]) != scenarios.end()) {
    s.scenario = argv[1];
    preset(s);
  }
  CLI::App app{"kithd_load: load generator for kithd (see bench/README.md)", "kithd_load"};
  app.add_option("scenario", s.scenario, "fanout | batch | latency | idle (first argument)")
      ->required()
      ->check(CLI::IsMember(scenarios));
  app.add_option("--runs", s.runs, "Runs, each against a fresh kithd; medians are reported")
      ->capture_default_str();
  app.add_option("--server", s.server_url,
                 "Attach to a running kithd at wss://127.0.0.1:PORT instead of starting one");
  app.add_option("--ca", s.kithd.ca_file, "With --server: the CA file (kithd's dev-cert.pem)");
  app.add_option("--pid", s.kithd.pid, "With --server: kithd's pid, for its RSS and CPU time");
  app.add_option("--kithd", s.kithd.binary, "The kithd binary to start (default: this build's)");
  app.add_option("--kithd-threads", s.kithd_threads, "kithd --threads (default: kithd's, 1/core)");
  app.add_option("--kithd-arg", s.kithd_args, "Extra kithd argument (repeat for several)")
      ->allow_extra_args(false);
  app.add_option("--json", s.json_path, "Also write every run and the medians to FILE as JSON");
  auto& t = s.traffic;
  app.add_option("--client-threads", t.client_threads, "io threads of the load generator")
      ->capture_default_str();
  app.add_option("--gen-threads", t.gen_threads, "Threads making keys, ops and heads beforehand")
      ->capture_default_str();
  app.add_option("--plans", t.spec.plans, "Plans (traffic)")->capture_default_str();
  app.add_option("--devices", t.spec.devices, "Devices per plan: 1 pusher + receivers")
      ->capture_default_str();
  app.add_option("--batch", t.spec.ops_per_push, "Ops per push (1..1000)")->capture_default_str();
  app.add_option("--op-bytes", t.spec.op_bytes, "Sealed op body size aimed at")
      ->capture_default_str();
  app.add_option("--rate", t.rate, "Total ops/s to pace pushes at; 0: as fast as acks come")
      ->capture_default_str();
  app.add_option("--window", t.window, "Pushes in flight per pusher")->capture_default_str();
  app.add_option("--pushes", s.total_pushes, "Max rate: pushes made in advance, over all plans")
      ->capture_default_str();
  app.add_option("--warmup", t.warmup_s, "Seconds of load before the measured window")
      ->capture_default_str();
  app.add_option("--duration", t.duration_s, "Seconds in the measured window")
      ->capture_default_str();
  app.add_option("--connections", s.idle.connections, "Idle: connections")->capture_default_str();
  app.add_option("--concurrency", s.idle.concurrency, "Idle: handshakes in progress at once")
      ->capture_default_str();
  app.add_option("--settle", s.idle.settle_s, "Idle: seconds idle before reading VmRSS")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
    if (!s.server_url.empty()) {
      if (s.kithd.ca_file.empty()) throw CLI::ValidationError("--server needs --ca");
      s.kithd.url = s.server_url;
    }
    if (t.spec.devices < 1 || t.spec.devices > 255) {
      throw CLI::ValidationError("--devices must be 1..255");
    }
    if (t.spec.ops_per_push < 1 || t.spec.ops_per_push > 1000) {
      throw CLI::ValidationError("--batch must be 1..1000");
    }
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  s.idle.client_threads = t.client_threads;
  s.idle.gen_threads = t.gen_threads;
  try {
    return run(s);
  } catch (const std::exception& e) {
    std::cerr << "kithd_load: " << e.what() << "\n";
    return 1;
  }
}
