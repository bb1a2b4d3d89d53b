// The idle scenario (scenarios.hpp): what one authenticated, idle TLS WebSocket costs kithd.
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <mutex>
#include <thread>

#include "client.hpp"
#include "scenarios.hpp"

namespace kith::bench {

IdleResult run_idle(Kithd& kithd, const IdleOptions& o) {
  IdleResult r;
  std::cerr << "kithd_load: making " << o.connections << " accounts ...\n";
  const std::vector<Device> devices = make_accounts(o.connections, o.gen_threads);

  // A first scrape makes kithd's one-time TLS set-up happen before the baseline.
  scrape_metrics(kithd.address());
  std::this_thread::sleep_for(std::chrono::seconds(1));
  r.rss_before_kb = proc_status(kithd.pid()).rss_kb;
  r.client_rss_before_kb = proc_status(::getpid()).rss_kb;

  IoPool pool(o.client_threads, kithd.address());
  std::atomic<std::size_t> next{0}, authenticated{0}, failed{0};
  std::mutex error_mu;
  auto events = std::make_shared<LinkEvents>();
  // Each finished handshake starts the next one, so `concurrency` are in progress at a time.
  std::function<void()> open_next = [&] {
    const std::size_t i = next++;
    if (i < devices.size()) {
      pool.open(static_cast<unsigned>(i % pool.threads()), devices[i], events, i);
    }
  };
  events->authenticated = [&](Link&) {
    authenticated += 1;
    open_next();
  };
  events->failed = [&](Link& link, const std::string& why) {
    failed += 1;
    {
      std::lock_guard lock(error_mu);
      if (r.first_error.empty()) r.first_error = "connection " + std::to_string(link.tag()) + ": " + why;
    }
    open_next();
  };
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(o.timeout_s));
  for (unsigned i = 0; i < o.concurrency; ++i) open_next();
  std::size_t reported = 0;
  while (authenticated + failed < devices.size() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (authenticated >= reported + 2500) {
      reported = authenticated;
      std::cerr << "kithd_load: " << reported << " connections authenticated\n";
    }
  }
  r.connect_s = std::chrono::duration<double>(Clock::now() - start).count();
  r.authenticated = authenticated;
  std::cerr << "kithd_load: " << r.authenticated << " authenticated, " << failed.load()
            << " failed, in " << r.connect_s << " s; idle for " << o.settle_s << " s\n";

  std::this_thread::sleep_for(std::chrono::duration<double>(o.settle_s));
  const ProcStatus after = proc_status(kithd.pid());
  r.rss_after_kb = after.rss_kb;
  r.client_rss_after_kb = proc_status(::getpid()).rss_kb;
  r.load_average = load_average();
  const Metrics m = scrape_metrics(kithd.address());
  if (auto it = m.find("kithd_connections"); it != m.end()) r.kithd_connections = it->second;
  r.failed = failed;  // connections that died while idle count too

  pool.stop();
  std::this_thread::sleep_for(std::chrono::seconds(3));
  const ProcStatus closed = proc_status(kithd.pid());
  r.rss_closed_kb = closed.rss_kb;
  r.hwm_kb = closed.hwm_kb;
  if (r.authenticated > 0) {
    r.per_connection_kb = (static_cast<double>(r.rss_after_kb) -
                           static_cast<double>(r.rss_before_kb)) /
                          static_cast<double>(r.authenticated);
  }
  return r;
}

}  // namespace kith::bench
