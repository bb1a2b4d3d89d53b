#include "report.hpp"

#include <algorithm>
#include <cstdio>
#include <map>

namespace kith::bench {
namespace {

std::string fixed(double v, int digits = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string mb(std::uint64_t kb) { return fixed(static_cast<double>(kb) / 1024.0) + " MB"; }

double get(const Metrics& m, const std::string& name) {
  auto it = m.find(name);
  return it == m.end() ? 0 : it->second;
}

// A Prometheus histogram's buckets in the window, not cumulative: "le" -> count.
std::vector<std::pair<std::string, double>> buckets(const Metrics& m, const std::string& name) {
  std::vector<std::pair<double, std::string>> bounds;
  const std::string prefix = name + "_bucket{le=\"";
  for (const auto& [series, value] : m) {
    if (!series.starts_with(prefix)) continue;
    const std::string le = series.substr(prefix.size(), series.size() - prefix.size() - 2);
    bounds.emplace_back(le == "+Inf" ? 1e300 : std::stod(le), le);
  }
  std::sort(bounds.begin(), bounds.end());
  std::vector<std::pair<std::string, double>> out;
  double below = 0;
  for (const auto& [bound, le] : bounds) {
    const double cumulative = get(m, prefix + le + "\"}");
    out.emplace_back(le, cumulative - below);
    below = cumulative;
  }
  return out;
}

nlohmann::json histogram_json(const Metrics& m, const std::string& name) {
  nlohmann::json j;
  const double count = get(m, name + "_count");
  j["count"] = count;
  j["mean"] = count > 0 ? get(m, name + "_sum") / count : 0;
  nlohmann::json b = nlohmann::json::object();
  for (const auto& [le, n] : buckets(m, name)) b["le " + le] = n;
  j["buckets"] = b;
  return j;
}

std::string histogram_text(const Metrics& m, const std::string& name, double scale,
                           const char* unit) {
  const double count = get(m, name + "_count");
  if (count <= 0) return "none";
  std::string out = "mean " + fixed(get(m, name + "_sum") / count * scale, 2) + unit + "; ";
  bool first = true;
  for (const auto& [le, n] : buckets(m, name)) {
    if (n <= 0) continue;
    if (!first) out += ", ";
    first = false;
    std::string bound = le;
    if (scale != 1 && le != "+Inf") bound = fixed(std::stod(le) * scale, 1);
    out += "<=" + bound + ": " + fixed(n, 0);
  }
  return out;
}

nlohmann::json server_json(const ServerFigures& s, double window_s) {
  const Metrics& d = s.delta;
  nlohmann::json j;
  j["kithd_rss_start_kb"] = s.rss_start_kb;
  j["kithd_rss_end_kb"] = s.rss_end_kb;
  j["kithd_peak_rss_kb"] = s.hwm_kb;
  j["kithd_cpu_cores"] = s.cpu_cores;
  j["client_cpu_cores"] = s.client_cpu_cores;
  j["other_processes_cpu_cores"] = s.other_cpu_cores;
  j["interrupt_cpu_cores"] = s.interrupt_cores;
  j["steal_cpu_cores"] = s.steal_cores;
  j["load_average_1m"] = s.load_average;
  j["kithd_thread_cores"] = s.thread_cores;
  j["kithd_storage_write_mb_per_s"] = s.storage_write_mb_per_s;
  j["kithd_write_syscalls_per_s"] = s.write_syscalls_per_s;
  j["metrics_messages_sent"] = get(d, "kithd_messages_sent_total");
  j["metrics_send_flushes"] = get(d, "kithd_send_flushes_total");
  j["commit_busy_fraction"] = get(d, "kithd_commit_seconds_sum") / std::max(1e-9, window_s);
  j["metrics_ops_accepted"] = get(d, "kithd_ops_accepted_total");
  j["metrics_fanout_deliveries"] = get(d, "kithd_fanout_deliveries_total");
  j["commits"] = get(d, "kithd_commit_batch_requests_count");
  j["commit_requests"] = histogram_json(d, "kithd_commit_batch_requests");
  j["commit_ops"] = histogram_json(d, "kithd_commit_batch_ops");
  j["commit_seconds"] = histogram_json(d, "kithd_commit_seconds");
  nlohmann::json rejected = nlohmann::json::object();
  const std::string prefix = "kithd_rejected_total{code=\"";
  for (const auto& [series, value] : d) {
    if (series.starts_with(prefix) && value > 0) {
      rejected[series.substr(prefix.size(), series.size() - prefix.size() - 2)] = value;
    }
  }
  j["rejected"] = rejected;
  return j;
}

void print_server(std::ostream& out, const ServerFigures& s, double window_s) {
  const Metrics& d = s.delta;
  out << "  kithd: VmRSS " << mb(s.rss_start_kb) << " at the start of the load, " << mb(s.rss_end_kb)
      << " at the end; peak (VmHWM) " << mb(s.hwm_kb) << "\n";
  out << "  CPU in the window: kithd " << fixed(s.cpu_cores, 2) << " cores, kithd_load "
      << fixed(s.client_cpu_cores, 2) << ", other processes " << fixed(s.other_cpu_cores, 2)
      << ", irq+softirq " << fixed(s.interrupt_cores, 2) << ", steal " << fixed(s.steal_cores, 2)
      << " (cores, of 2); load average " << fixed(s.load_average, 2) << "\n";
  if (!s.thread_cores.empty()) {
    out << "  kithd threads, in creation order (main, WAL checkpointer, commit writer, io...):";
    for (double c : s.thread_cores) out << " " << fixed(c, 2);
    out << " cores\n";
  }
  if (d.empty()) return;
  out << "  /metrics in the window: " << fixed(get(d, "kithd_ops_accepted_total") / window_s)
      << " ops accepted/s, " << fixed(get(d, "kithd_fanout_deliveries_total") / window_s)
      << " live batches/s\n";
  if (get(d, "kithd_send_flushes_total") > 0) {  // an older kithd has no such counter
    out << "  messages sent: " << fixed(get(d, "kithd_messages_sent_total") / window_s) << "/s in "
        << fixed(get(d, "kithd_send_flushes_total") / window_s) << " socket writes/s ("
        << fixed(get(d, "kithd_messages_sent_total") / get(d, "kithd_send_flushes_total"), 2)
        << " per write)\n";
  }
  out << "  group commits: " << fixed(get(d, "kithd_commit_batch_requests_count"), 0)
      << " in the window; the writer spent " << fixed(get(d, "kithd_commit_seconds_sum") / window_s * 100)
      << "% of the window committing\n";
  out << "    requests per commit (pushes + fetch-log writes + device records): "
      << histogram_text(d, "kithd_commit_batch_requests", 1, "") << "\n";
  out << "    ops per commit: " << histogram_text(d, "kithd_commit_batch_ops", 1, "") << "\n";
  out << "    commit time: " << histogram_text(d, "kithd_commit_seconds", 1000, " ms")
      << " (bounds in ms)\n";
  const std::string prefix = "kithd_rejected_total{code=\"";
  for (const auto& [series, value] : d) {
    if (series.starts_with(prefix) && value > 0) {
      out << "    rejected " << series.substr(prefix.size(), series.size() - prefix.size() - 2)
          << ": " << fixed(value, 0) << "\n";
    }
  }
}

}  // namespace

nlohmann::json to_json(const TrafficResult& r) {
  nlohmann::json j;
  j["window_s"] = r.window_s;
  j["pushes_acked_per_s"] = r.pushes_per_s;
  j["ops_acked_per_s"] = r.ops_per_s;
  j["deliveries_per_s"] = r.deliveries_per_s;
  j["delivered_ops_per_s"] = r.delivered_ops_per_s;
  j["pushes_sent_per_s"] = r.offered_pushes_per_s;
  j["latency_samples"] = r.latency.samples;
  j["latency_p50_ms"] = r.latency.p50_ms;
  j["latency_p90_ms"] = r.latency.p90_ms;
  j["latency_p99_ms"] = r.latency.p99_ms;
  j["latency_p999_ms"] = r.latency.p999_ms;
  j["latency_max_ms"] = r.latency.max_ms;
  j["errors"] = r.errors;
  j["unmatched_deliveries"] = r.unmatched;
  j["pacer_stalls"] = r.pacer_stalls;
  j["exhausted"] = r.exhausted;
  j["drained"] = r.drained;
  j["setup_s"] = r.setup_s;
  j["workload_s"] = r.workload.seconds;
  j["op_header_bytes"] = r.workload.header_bytes;
  j["op_body_bytes"] = r.workload.body_bytes;
  j["push_message_bytes"] = r.workload.push_bytes;
  j["server"] = server_json(r.server, r.window_s);
  j["kithd_cpu_us_per_push"] = r.pushes_per_s > 0 ? r.server.cpu_cores / r.pushes_per_s * 1e6 : 0;
  if (!r.first_error.empty()) j["first_error"] = r.first_error;
  return j;
}

nlohmann::json to_json(const IdleResult& r) {
  nlohmann::json j;
  j["authenticated"] = r.authenticated;
  j["failed"] = r.failed;
  j["connect_s"] = r.connect_s;
  j["kithd_rss_before_kb"] = r.rss_before_kb;
  j["kithd_rss_after_kb"] = r.rss_after_kb;
  j["kithd_rss_closed_kb"] = r.rss_closed_kb;
  j["kithd_peak_rss_kb"] = r.hwm_kb;
  j["kb_per_connection"] = r.per_connection_kb;
  j["kithd_connections_gauge"] = r.kithd_connections;
  j["client_rss_before_kb"] = r.client_rss_before_kb;
  j["client_rss_after_kb"] = r.client_rss_after_kb;
  j["load_average_1m"] = r.load_average;
  if (!r.first_error.empty()) j["first_error"] = r.first_error;
  return j;
}

void print(std::ostream& out, const TrafficResult& r) {
  const double w = r.window_s;
  out << "  measured window " << fixed(w, 2) << " s";
  if (r.exhausted) out << " (ended early: a pusher used up its pre-made pushes; raise --pushes)";
  out << "\n";
  out << "  acked (durable): " << fixed(r.pushes_per_s) << " pushes/s = " << fixed(r.ops_per_s)
      << " ops/s  (sent " << fixed(r.offered_pushes_per_s) << " pushes/s)\n";
  out << "  delivered live:  " << fixed(r.deliveries_per_s) << " batches/s = "
      << fixed(r.delivered_ops_per_s) << " ops/s\n";
  out << "  push -> delivery (" << r.latency.samples << " samples): p50 "
      << fixed(r.latency.p50_ms, 3) << " ms, p90 " << fixed(r.latency.p90_ms, 3) << " ms, p99 "
      << fixed(r.latency.p99_ms, 3) << " ms, p99.9 " << fixed(r.latency.p999_ms, 3)
      << " ms, max " << fixed(r.latency.max_ms, 3) << " ms\n";
  print_server(out, r.server, w);
  if (r.pushes_per_s > 0) {
    out << "  kithd wrote " << fixed(r.server.storage_write_mb_per_s) << " MB/s to storage ("
        << fixed(r.server.storage_write_mb_per_s * 1e3 / r.pushes_per_s, 1)
        << " KB per acked push: database and WAL pages)\n";
    out << "  kithd write syscalls: " << fixed(r.server.write_syscalls_per_s) << "/s ("
        << fixed(r.server.write_syscalls_per_s / r.pushes_per_s, 2)
        << " per acked push: sockets, database, wake-ups)\n";
    const double us = r.server.cpu_cores / r.pushes_per_s * 1e6;
    out << "  kithd CPU per acked push: " << fixed(us, 1) << " us ("
        << fixed(r.server.cpu_cores / r.ops_per_s * 1e6, 2) << " us per op); with both cores "
        << "to itself that would be at most " << fixed(2e6 / us, 0) << " pushes/s\n";
  }
  out << "  errors " << r.errors << ", unmatched deliveries " << r.unmatched << ", pacer stalls "
      << r.pacer_stalls << ", drained " << (r.drained ? "yes" : "NO") << "\n";
  if (!r.first_error.empty()) out << "  first error: " << r.first_error << "\n";
}

void print(std::ostream& out, const IdleResult& r) {
  out << "  " << r.authenticated << " connections authenticated (" << r.failed << " failed) in "
      << fixed(r.connect_s, 2) << " s; kithd_connections gauge " << fixed(r.kithd_connections, 0)
      << "\n";
  out << "  kithd VmRSS: before " << mb(r.rss_before_kb) << ", with them idle "
      << mb(r.rss_after_kb) << ", 3 s after they closed " << mb(r.rss_closed_kb) << "; peak "
      << mb(r.hwm_kb) << "\n";
  out << "  load average " << fixed(r.load_average, 2) << " when VmRSS was read\n";
  out << "  per idle connection: " << fixed(r.per_connection_kb, 2) << " KB (kithd)";
  if (r.authenticated > 0) {
    out << "; kithd_load's own: "
        << fixed((static_cast<double>(r.client_rss_after_kb) -
                  static_cast<double>(r.client_rss_before_kb)) /
                     static_cast<double>(r.authenticated),
                 2)
        << " KB";
  }
  out << "\n";
  if (!r.first_error.empty()) out << "  first error: " << r.first_error << "\n";
}

nlohmann::json medians(const std::vector<nlohmann::json>& runs) {
  nlohmann::json out = nlohmann::json::object();
  if (runs.empty()) return out;
  for (const auto& [key, first] : runs[0].items()) {
    if (first.is_object()) {
      std::vector<nlohmann::json> inner;
      for (const auto& r : runs) {
        if (r.contains(key)) inner.push_back(r[key]);
      }
      out[key] = medians(inner);
      continue;
    }
    if (!first.is_number()) continue;
    std::vector<double> v;
    for (const auto& r : runs) {
      if (r.contains(key) && r[key].is_number()) v.push_back(r[key].get<double>());
    }
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    out[key] = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  }
  return out;
}

void print_medians(std::ostream& out, const std::string& scenario, const nlohmann::json& m,
                   std::size_t runs) {
  auto num = [&](const char* key, int digits = 1) {
    return m.contains(key) ? fixed(m[key].get<double>(), digits) : std::string("?");
  };
  out << "\n== " << scenario << ": median of " << runs << " run" << (runs == 1 ? "" : "s")
      << " (each figure's own median) ==\n";
  if (scenario == "idle") {
    out << "  per idle TLS connection: " << num("kb_per_connection", 2) << " KB  (kithd VmRSS "
        << num("kithd_rss_before_kb", 0) << " -> " << num("kithd_rss_after_kb", 0) << " kB with "
        << num("authenticated", 0) << " connections; peak " << num("kithd_peak_rss_kb", 0)
        << " kB)\n";
    return;
  }
  out << "  acked: " << num("pushes_acked_per_s") << " pushes/s, " << num("ops_acked_per_s")
      << " ops/s; delivered: " << num("deliveries_per_s") << " batches/s, "
      << num("delivered_ops_per_s") << " ops/s\n";
  out << "  push -> delivery: p50 " << num("latency_p50_ms", 3) << " ms, p99 "
      << num("latency_p99_ms", 3) << " ms, max " << num("latency_max_ms", 3) << " ms\n";
  out << "  kithd CPU per acked push: " << num("kithd_cpu_us_per_push", 1) << " us\n";
  if (m.contains("server")) {
    const auto& s = m["server"];
    auto snum = [&](const char* key, int digits = 1) {
      return s.contains(key) ? fixed(s[key].get<double>(), digits) : std::string("?");
    };
    out << "  kithd peak RSS " << snum("kithd_peak_rss_kb", 0) << " kB; CPU kithd "
        << snum("kithd_cpu_cores", 2) << " cores, kithd_load " << snum("client_cpu_cores", 2)
        << " cores, other processes " << snum("other_processes_cpu_cores", 2) << " cores\n";
    if (s.contains("commit_requests") && s.contains("commit_ops")) {
      out << "  group commit: mean " << fixed(s["commit_requests"]["mean"].get<double>(), 2)
          << " requests and " << fixed(s["commit_ops"]["mean"].get<double>(), 2)
          << " ops per commit, mean commit "
          << fixed(s["commit_seconds"]["mean"].get<double>() * 1000, 3) << " ms\n";
    }
  }
}

}  // namespace kith::bench
