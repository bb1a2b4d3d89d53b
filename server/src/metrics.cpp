#include "metrics.hpp"

#include <cstdio>

namespace kith::server {
namespace {

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

void counter(std::string& out, const char* name, const char* help, std::uint64_t v) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" + name +
         " " + std::to_string(v) + "\n";
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  std::lock_guard lock(mu_);
  std::size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += value;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& help) const {
  std::lock_guard lock(mu_);
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += name + "_bucket{le=\"" + number(bounds_[i]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  cumulative += counts_.back();
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(cumulative) + "\n";
  out += name + "_sum " + number(sum_) + "\n";
  out += name + "_count " + std::to_string(count_) + "\n";
}

Metrics::Metrics()
    : commit_batches_({1, 2, 4, 8, 16, 32, 64, 128, 256, 512}),
      commit_ops_({0, 1, 10, 100, 1000, 10000}),
      commit_seconds_({0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1}) {}

void Metrics::rejected(const std::string& code) {
  std::lock_guard lock(mu_);
  ++rejected_[code];
}

void Metrics::committed(std::size_t batches, std::size_t ops, double seconds) {
  commit_batches_.observe(static_cast<double>(batches));
  commit_ops_.observe(static_cast<double>(ops));
  commit_seconds_.observe(seconds);
}

std::string Metrics::render() const {
  std::string out;
  out +=
      "# HELP kithd_connections Connections open now.\n# TYPE kithd_connections gauge\n"
      "kithd_connections " +
      std::to_string(connections_open.load()) + "\n";
  out +=
      "# HELP kithd_plans_cached Plans whose membership and chain tips are held in memory.\n"
      "# TYPE kithd_plans_cached gauge\nkithd_plans_cached " +
      std::to_string(plans_cached.load()) + "\n" +
      "# HELP kithd_op_id_bytes_cached Memory the op-id sets of the cached plans take.\n"
      "# TYPE kithd_op_id_bytes_cached gauge\nkithd_op_id_bytes_cached " +
      std::to_string(op_id_bytes_cached.load()) + "\n";
  counter(out, "kithd_connections_total", "Connections accepted.", connections_total.load());
  counter(out, "kithd_sessions_authenticated_total", "Devices that completed authentication.",
          sessions_authenticated.load());
  counter(out, "kithd_ops_accepted_total", "Ops stored durably.", ops_accepted.load());
  {
    std::lock_guard lock(mu_);
    out += "# HELP kithd_rejected_total Requests and ops refused, by error code.\n"
           "# TYPE kithd_rejected_total counter\n";
    for (const auto& [code, n] : rejected_) {
      out += "kithd_rejected_total{code=\"" + code + "\"} " + std::to_string(n) + "\n";
    }
  }
  counter(out, "kithd_membership_entries_accepted_total", "Membership entries stored.",
          membership_entries_accepted.load());
  counter(out, "kithd_envelopes_accepted_total", "Envelopes stored.", envelopes_accepted.load());
  counter(out, "kithd_fanout_deliveries_total", "Live batches delivered to connected devices.",
          fanout_deliveries.load());
  counter(out, "kithd_catch_up_bytes_total", "Bytes of catch-up messages sent.",
          catch_up_bytes.load());
  counter(out, "kithd_messages_sent_total", "WebSocket messages written to connections.",
          messages_sent.load());
  counter(out, "kithd_send_flushes_total",
          "Socket writes that sent queued messages (messages queued together share one).",
          send_flushes.load());
  commit_batches_.render(out, "kithd_commit_batch_requests",
                         "Requests carried by one group commit.");
  commit_ops_.render(out, "kithd_commit_batch_ops", "Ops carried by one group commit.");
  commit_seconds_.render(out, "kithd_commit_seconds", "Time to commit one group, seconds.");
  return out;
}

}  // namespace kith::server
