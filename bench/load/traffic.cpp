// The fanout, batch and latency scenarios (scenarios.hpp). Every plan and its connections live
// on one io thread, so a plan's state needs no lock; the counters the main thread reads are
// relaxed atomics written by one thread each.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <iostream>
#include <limits>
#include <map>
#include <mutex>
#include <thread>

#include "client.hpp"
#include "scenarios.hpp"

namespace kith::bench {
namespace {

using Ns = std::int64_t;  // steady_clock nanoseconds since its epoch

Ns ns(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

struct PlanRun {
  const PlanFixture* fixture = nullptr;
  std::vector<Link*> links;  // links[i] is fixture->devices[i]
  std::size_t authenticated = 0;
  std::size_t subscribed = 0;
  std::size_t next = 0;  // the next push to send
  unsigned in_flight = 0;
  std::vector<Ns> sent_at;  // per push: when it was queued
};

// One io thread's share: its plans, and counters only it writes.
struct alignas(64) Lane {
  std::vector<PlanRun*> plans;
  std::atomic<std::uint64_t> pushes_sent{0}, pushes_acked{0}, ops_acked{0};
  std::atomic<std::uint64_t> batches_delivered{0}, ops_delivered{0};
  std::atomic<std::uint64_t> errors{0}, unmatched{0}, pacer_stalls{0};
  std::vector<Ns> latency;  // push -> delivery, for pushes sent inside the window
  std::size_t round_robin = 0;
  std::uint64_t paced = 0;  // pushes the pacer has sent
  double rate = 0;          // pushes/s this lane is paced to
};

struct Snapshot {
  Clock::time_point at;
  std::uint64_t pushes_sent = 0, pushes_acked = 0, ops_acked = 0;
  std::uint64_t batches_delivered = 0, ops_delivered = 0;
  double client_cpu = 0, server_cpu = 0;
  MachineCpu machine;
  std::map<pid_t, double> server_threads;
  std::uint64_t server_write_bytes = 0;
  std::uint64_t server_write_syscalls = 0;
  Metrics metrics;
};

class TrafficRun {
 public:
  TrafficRun(Kithd& kithd, const TrafficOptions& o) : kithd_(kithd), o_(o) {}

  TrafficResult run() {
    TrafficResult r;
    make_workload(r);
    IoPool pool(o_.client_threads, kithd_.address());
    lanes_ = std::vector<Lane>(pool.threads());
    runs_.resize(fixtures_.size());
    const auto setup_start = Clock::now();
    open_all(pool);
    wait_ready();
    r.setup_s = std::chrono::duration<double>(Clock::now() - setup_start).count();
    std::cerr << "kithd_load: " << fixtures_.size() << " plans ready in " << r.setup_s
              << " s; load for " << o_.warmup_s << " s warm-up + " << o_.duration_s << " s\n";

    r.server.rss_start_kb = proc_status(kithd_.pid()).rss_kb;
    start_load(pool);
    sleep_for(o_.warmup_s);
    const Snapshot a = snapshot(true);
    window_start_ = ns(a.at);
    const auto planned_end = a.at + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(o_.duration_s));
    while (Clock::now() < planned_end && exhausted_at_ == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    Snapshot b = snapshot(false);
    window_end_ = ns(b.at);
    stop_ = true;
    b.metrics = scrape_metrics(kithd_.address());
    r.drained = drain();
    const ProcStatus end_status = proc_status(kithd_.pid());
    r.server.rss_end_kb = end_status.rss_kb;
    r.server.hwm_kb = end_status.hwm_kb;
    pool.stop();  // joins the io threads: the lanes are this thread's to read now
    collect(a, b, r);
    return r;
  }

 private:
  void make_workload(TrafficResult& r) {
    WorkloadSpec spec = o_.spec;
    if (o_.rate > 0) {
      // Enough pushes for the warm-up and the window at the paced rate, and some to spare.
      const double pushes = o_.rate / static_cast<double>(spec.ops_per_push) *
                            (o_.warmup_s + o_.duration_s + 1) * 1.2;
      spec.pushes_per_plan = static_cast<std::size_t>(
          std::ceil(pushes / static_cast<double>(spec.plans))) + o_.window;
    }
    std::cerr << "kithd_load: making " << spec.plans << " plans x " << spec.pushes_per_plan
              << " pushes x " << spec.ops_per_push << " ops (" << spec.devices
              << " devices each) ...\n";
    fixtures_ = make_plans(spec, o_.gen_threads, &r.workload);
    std::cerr << "kithd_load: made in " << r.workload.seconds << " s; op header "
              << r.workload.header_bytes << " B, sealed body " << r.workload.body_bytes
              << " B, push message " << r.workload.push_bytes << " B\n";
  }

  // The window's figures: snapshot b minus snapshot a, and the lanes' latency samples.
  void collect(const Snapshot& a, const Snapshot& b, TrafficResult& r) {
    r.window_s = std::chrono::duration<double>(b.at - a.at).count();
    const double w = r.window_s;
    r.pushes_sent = b.pushes_sent - a.pushes_sent;
    r.pushes_acked = b.pushes_acked - a.pushes_acked;
    r.ops_acked = b.ops_acked - a.ops_acked;
    r.batches_delivered = b.batches_delivered - a.batches_delivered;
    r.ops_delivered = b.ops_delivered - a.ops_delivered;
    r.pushes_per_s = static_cast<double>(r.pushes_acked) / w;
    r.ops_per_s = static_cast<double>(r.ops_acked) / w;
    r.deliveries_per_s = static_cast<double>(r.batches_delivered) / w;
    r.delivered_ops_per_s = static_cast<double>(r.ops_delivered) / w;
    r.offered_pushes_per_s = static_cast<double>(r.pushes_sent) / w;
    std::vector<Ns> samples;
    for (Lane& lane : lanes_) {
      samples.insert(samples.end(), lane.latency.begin(), lane.latency.end());
      r.errors += lane.errors;
      r.unmatched += lane.unmatched;
      r.pacer_stalls += lane.pacer_stalls;
    }
    r.latency = summarize(samples);
    r.exhausted = exhausted_at_ != 0;
    r.first_error = first_error();
    ServerFigures& f = r.server;
    f.cpu_cores = (b.server_cpu - a.server_cpu) / w;
    f.client_cpu_cores = (b.client_cpu - a.client_cpu) / w;
    f.other_cpu_cores = std::max(
        0.0, (b.machine.user_system - a.machine.user_system) / w - f.cpu_cores - f.client_cpu_cores);
    f.interrupt_cores = (b.machine.interrupts - a.machine.interrupts) / w;
    f.steal_cores = (b.machine.steal - a.machine.steal) / w;
    f.load_average = load_average();
    for (const auto& [tid, cpu] : b.server_threads) {
      auto it = a.server_threads.find(tid);
      f.thread_cores.push_back((cpu - (it == a.server_threads.end() ? 0 : it->second)) / w);
    }
    f.storage_write_mb_per_s =
        static_cast<double>(b.server_write_bytes - a.server_write_bytes) / w / 1e6;
    f.write_syscalls_per_s =
        static_cast<double>(b.server_write_syscalls - a.server_write_syscalls) / w;
    f.delta = metrics_delta(a.metrics, b.metrics);
  }

  void open_all(IoPool& pool) {
    auto events = std::make_shared<LinkEvents>();
    events->authenticated = [this](Link& link) { on_authenticated(link); };
    events->message = [this](Link& link, const kith::v1::ServerMessage& m, Clock::time_point at) {
      on_message(link, m, at);
    };
    events->failed = [this](Link& link, const std::string& why) {
      lane_of(link).errors += 1;
      note_error("connection of plan " + std::to_string(link.tag() >> 8) + " failed: " + why);
      if (!ready(link)) setup_failed_ = true;
    };
    for (std::size_t p = 0; p < fixtures_.size(); ++p) {
      PlanRun& run = runs_[p];
      run.fixture = &fixtures_[p];
      run.sent_at.assign(fixtures_[p].pushes.size(), 0);
      const unsigned thread = static_cast<unsigned>(p % pool.threads());
      lanes_[thread].plans.push_back(&run);
      for (std::size_t d = 0; d < fixtures_[p].devices.size(); ++d) {
        run.links.push_back(pool.open(thread, fixtures_[p].devices[d], events, (p << 8) | d));
      }
    }
  }

  void wait_ready() {
    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(o_.setup_timeout_s));
    while (ready_plans_ < fixtures_.size()) {
      if (setup_failed_) throw std::runtime_error("setup failed: " + first_error());
      if (Clock::now() > deadline) {
        throw std::runtime_error("setup timed out: " + std::to_string(ready_plans_.load()) +
                                 " of " + std::to_string(fixtures_.size()) + " plans ready; " +
                                 first_error());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  void start_load(IoPool& pool) {
    const double pushes_per_s = o_.rate / static_cast<double>(o_.spec.ops_per_push);
    for (unsigned t = 0; t < pool.threads(); ++t) {
      Lane& lane = lanes_[t];
      if (o_.rate > 0) {
        lane.rate = pushes_per_s * static_cast<double>(lane.plans.size()) /
                    static_cast<double>(fixtures_.size());
        const auto start = Clock::now();
        pool.every(t, o_.tick, [this, &lane, start] { return pace(lane, start); });
      } else {
        pool.post(t, [this, &lane] {
          for (PlanRun* run : lane.plans) {
            for (unsigned i = 0; i < o_.window && send_next(lane, *run); ++i) {
            }
          }
        });
      }
    }
  }

  // The pacer: sends what is due by now, round-robin over the lane's plans.
  bool pace(Lane& lane, Clock::time_point start) {
    if (stop_) return false;
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    const auto due = static_cast<std::uint64_t>(elapsed * lane.rate);
    const std::size_t n = lane.plans.size();
    while (lane.paced < due && n > 0) {
      bool sent = false;
      for (std::size_t tries = 0; tries < n && !sent; ++tries) {
        PlanRun& run = *lane.plans[lane.round_robin++ % n];
        if (run.in_flight < o_.window) sent = send_next(lane, run);
      }
      if (!sent) {
        lane.pacer_stalls += 1;  // every plan has its window full (or ran out)
        break;
      }
      lane.paced += 1;
    }
    return true;
  }

  bool send_next(Lane& lane, PlanRun& run) {
    if (stop_) return false;
    if (run.next >= run.fixture->pushes.size()) {
      Ns expected = 0;
      exhausted_at_.compare_exchange_strong(expected, ns(Clock::now()));
      return false;
    }
    run.sent_at[run.next] = ns(Clock::now());
    run.links[0]->send(run.fixture->pushes[run.next]);
    run.next += 1;
    run.in_flight += 1;
    lane.pushes_sent += 1;
    return true;
  }

  void on_authenticated(Link& link) {
    PlanRun& run = runs_[link.tag() >> 8];
    if (++run.authenticated == run.links.size()) run.links[0]->send(run.fixture->membership);
  }

  void on_message(Link& link, const kith::v1::ServerMessage& m, Clock::time_point at) {
    PlanRun& run = runs_[link.tag() >> 8];
    Lane& lane = lane_of(link);
    const std::uint64_t rid = m.request_id();
    if (m.has_error()) {
      lane.errors += 1;
      note_error("plan " + std::to_string(link.tag() >> 8) + " request " + std::to_string(rid) +
                 ": " + kith::v1::ErrorCode_Name(m.error().code()) + ": " + m.error().message());
      if (rid >= kFirstPushRequest && run.in_flight > 0) run.in_flight -= 1;
      if (rid == kMembershipRequest || rid == kSubscribeRequest) setup_failed_ = true;
      return;
    }
    if (rid == 0) {
      if (!m.has_ops_batch()) return;
      const auto& batch = m.ops_batch();
      lane.batches_delivered += 1;
      lane.ops_delivered += static_cast<std::uint64_t>(batch.ops_size());
      sync::OpId first;
      if (batch.ops_size() == 0 || !op_id_of_header(batch.ops(0).op().header(), first)) return;
      auto it = run.fixture->push_of.find(first);
      if (it == run.fixture->push_of.end()) {
        lane.unmatched += 1;
        return;
      }
      const Ns sent = run.sent_at[it->second];
      if (sent >= window_start_ && sent < window_end_) lane.latency.push_back(ns(at) - sent);
      return;
    }
    if (rid >= kFirstPushRequest) {
      if (!m.has_push_ack()) return;
      run.in_flight -= 1;
      lane.pushes_acked += 1;
      lane.ops_acked += static_cast<std::uint64_t>(m.push_ack().acked_size());
      if (o_.rate <= 0) send_next(lane, run);
      return;
    }
    if (rid == kMembershipRequest && m.has_push_ack()) {
      for (Link* l : run.links) l->send(run.fixture->subscribe);
    } else if (rid == kSubscribeRequest && m.has_catch_up_complete()) {
      if (++run.subscribed == run.links.size()) ready_plans_ += 1;
    }
  }

  bool ready(const Link& link) const {
    const PlanRun& run = runs_[link.tag() >> 8];
    return run.subscribed == run.links.size();
  }

  Lane& lane_of(const Link& link) { return lanes_[(link.tag() >> 8) % lanes_.size()]; }

  Snapshot snapshot(bool with_metrics) {
    Snapshot s;
    s.at = Clock::now();
    for (const Lane& lane : lanes_) {
      s.pushes_sent += lane.pushes_sent;
      s.pushes_acked += lane.pushes_acked;
      s.ops_acked += lane.ops_acked;
      s.batches_delivered += lane.batches_delivered;
      s.ops_delivered += lane.ops_delivered;
    }
    s.client_cpu = self_cpu_seconds();
    s.server_cpu = proc_cpu_seconds(kithd_.pid());
    s.machine = machine_cpu_seconds();
    s.server_threads = thread_cpu_seconds(kithd_.pid());
    s.server_write_bytes = proc_storage_write_bytes(kithd_.pid());
    s.server_write_syscalls = proc_write_syscalls(kithd_.pid());
    if (with_metrics) s.metrics = scrape_metrics(kithd_.address());
    return s;
  }

  // Waits for every push sent to be acked and delivered to every receiver.
  bool drain() {
    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(o_.drain_s));
    const std::uint64_t receivers = o_.spec.devices - 1;
    while (Clock::now() < deadline) {
      std::uint64_t sent = 0, acked = 0, delivered = 0, errors = 0;
      for (const Lane& lane : lanes_) {
        sent += lane.pushes_sent;
        acked += lane.pushes_acked;
        delivered += lane.batches_delivered;
        errors += lane.errors;
      }
      if (acked + errors >= sent && delivered >= acked * receivers) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  void note_error(const std::string& what) {
    std::lock_guard lock(error_mu_);
    if (first_error_.empty()) first_error_ = what;
  }
  std::string first_error() {
    std::lock_guard lock(error_mu_);
    return first_error_;
  }

  static void sleep_for(double seconds) {
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  }

  Kithd& kithd_;
  const TrafficOptions& o_;
  std::vector<PlanFixture> fixtures_;
  std::vector<PlanRun> runs_;
  std::vector<Lane> lanes_;
  std::atomic<std::size_t> ready_plans_{0};
  std::atomic<bool> setup_failed_{false};
  std::atomic<bool> stop_{false};
  std::atomic<Ns> exhausted_at_{0};
  std::atomic<Ns> window_start_{std::numeric_limits<Ns>::max()};
  std::atomic<Ns> window_end_{std::numeric_limits<Ns>::max()};
  std::mutex error_mu_;
  std::string first_error_;
};

}  // namespace

TrafficResult run_traffic(Kithd& kithd, const TrafficOptions& options) {
  return TrafficRun(kithd, options).run();
}

Latency summarize(std::vector<std::int64_t>& samples_ns) {
  Latency l;
  l.samples = samples_ns.size();
  if (samples_ns.empty()) return l;
  std::sort(samples_ns.begin(), samples_ns.end());
  // Nearest rank: the smallest sample with at least q of all samples at or below it.
  auto at = [&](double q) {
    const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(l.samples)));
    return static_cast<double>(samples_ns[std::clamp<std::size_t>(rank, 1, l.samples) - 1]) / 1e6;
  };
  l.p50_ms = at(0.50);
  l.p90_ms = at(0.90);
  l.p99_ms = at(0.99);
  l.p999_ms = at(0.999);
  l.max_ms = static_cast<double>(samples_ns.back()) / 1e6;
  return l;
}

}  // namespace kith::bench
