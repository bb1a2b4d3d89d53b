// The kithd under load, seen from outside: started for the run (as the server tests start it:
// `kithd --listen 127.0.0.1:0 --data DIR --dev-cert ARGS...` in a temporary directory that is
// removed afterwards, its log in that directory, killed if this process dies) or one already
// running (--server/--ca/--pid); its memory and CPU time from /proc, and its /metrics.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "client.hpp"

namespace kith::test {
class TempDir;
}

namespace kith::bench {

struct KithdTarget {
  // Attach to a running kithd when set (wss://127.0.0.1:PORT[/v1/sync] and its CA file).
  std::optional<std::string> url;
  std::filesystem::path ca_file;
  pid_t pid = 0;  // for /proc; 0: no memory or CPU figures
  // Start one: this binary (default: the kithd of this build), extra arguments after the
  // standard ones.
  std::filesystem::path binary;
  std::vector<std::string> args;
};

class Kithd {
 public:
  // Starts or attaches. Throws std::runtime_error.
  explicit Kithd(const KithdTarget& target);
  // Stops a kithd it started (SIGTERM, then SIGKILL after 20 s) and removes its directory.
  ~Kithd();
  Kithd(const Kithd&) = delete;
  Kithd& operator=(const Kithd&) = delete;

  const ServerAddress& address() const noexcept { return address_; }
  pid_t pid() const noexcept { return pid_; }
  bool started_here() const noexcept { return root_ != nullptr; }
  std::string log_path() const { return log_.string(); }
  // The end of a started kithd's log (its directory goes when this object does).
  std::string log_tail(std::size_t max_bytes = 4000) const;
  std::string command_line() const { return command_; }
  // False once a kithd started here has exited.
  bool running();
  // SIGTERM and wait (SIGKILL after 20 s); "exit 0", "signal 9", "not running".
  std::string stop();

  // The kithd this build made (CMake's KITHD_PATH).
  static std::filesystem::path default_binary();

 private:
  void start(const KithdTarget& target);

  std::unique_ptr<test::TempDir> root_;
  std::filesystem::path log_;
  ServerAddress address_;
  pid_t pid_ = 0;
  bool reaped_ = true;
  std::string command_;
};

struct ProcStatus {
  std::uint64_t rss_kb = 0;  // VmRSS
  std::uint64_t hwm_kb = 0;  // VmHWM: peak RSS
  std::uint64_t threads = 0;
};
// /proc/PID/status; zeros when unreadable.
ProcStatus proc_status(pid_t pid);
// utime + stime of PID from /proc/PID/stat, seconds.
double proc_cpu_seconds(pid_t pid);
// The same per thread (/proc/PID/task/TID/stat), by thread id: creation order for kithd's
// threads (main, the WAL checkpointer, the group-commit writer, then the io threads).
std::map<pid_t, double> thread_cpu_seconds(pid_t pid);
// Bytes PID has caused to be written to storage (/proc/PID/io write_bytes: its database and
// WAL writes, counted when it dirties the page cache); 0 when unreadable.
std::uint64_t proc_storage_write_bytes(pid_t pid);
// write(2)-family system calls PID has made (/proc/PID/io syscw: socket writes, database and WAL
// writes, and the event loop's wake-ups); 0 when unreadable.
std::uint64_t proc_write_syscalls(pid_t pid);
// This process's user + system CPU time, seconds.
double self_cpu_seconds();
// The whole machine's CPU time from /proc/stat, seconds: with the two above, what other
// processes took from a run. Interrupt time (loopback TCP and disk completions, largely ours)
// and steal (the hypervisor running someone else) are not any process's.
struct MachineCpu {
  double user_system = 0;  // user + nice + system: processes, ours included
  double interrupts = 0;   // irq + softirq
  double steal = 0;
};
MachineCpu machine_cpu_seconds();
// The 1-minute load average.
double load_average();

// Prometheus text as series -> value ("kithd_commit_batch_ops_bucket{le=\"100\"}" -> 12).
using Metrics = std::map<std::string, double>;
Metrics parse_metrics(const std::string& text);
// Scrapes /metrics; empty (and a warning on stderr) when it fails.
Metrics scrape_metrics(const ServerAddress& server);
// b - a, series by series (a series missing in a counts as 0).
Metrics metrics_delta(const Metrics& a, const Metrics& b);

}  // namespace kith::bench
