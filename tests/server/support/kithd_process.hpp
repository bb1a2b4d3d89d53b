// Runs the real kithd for integration tests: a child process on 127.0.0.1 with an ephemeral
// port, a temporary data directory and its own log file, started and stopped the way an
// operator would (signals, exit status), so the tests see what a deployment sees.
//
//   KithdProcess kithd;                        // starts it; throws with the log's tail if it fails
//   auto conn = kithd.connect();               // a verified wss:// connection to it
//   ExitStatus st = kithd.stop();              // SIGTERM, then wait
//   EXPECT_TRUE(st.clean()) << st.to_string() << kithd.log_tail();
//   kithd.start();                             // again, on the same data directory
//
// kithd is started as
//   KITHD --listen 127.0.0.1:0 --data DIR --dev-cert ARGS...
// with the test's environment minus every KITH_* variable, plus KithdOptions::env. Its stdout
// and stderr go to ROOT/kithd-N.log (N counts starts), ROOT being the temporary directory that
// also holds DIR. The port is the "port" of the first JSON line on stderr whose "event" is
// "listening". Everything is removed when the object is destroyed, and a kithd still running
// is killed (SIGKILL); set KITH_KEEP_TEST_DIRS=1 to keep the directories.
//
// If the test process dies, the kernel kills kithd too (PR_SET_PDEATHSIG). That signal follows
// the *thread* that started kithd: start it from the test's own thread, not one that ends
// before the test. Not thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kith/client/transport.hpp"
#include "support/temp_dir.hpp"

namespace kith::test {

struct KithdOptions {
  // Appended after the standard arguments.
  std::vector<std::string> args;
  // Added to the environment (replacing a variable of the same name).
  std::vector<std::pair<std::string, std::string>> env;
  // Use this data directory as it is (not created, not removed), e.g. one a previous
  // KithdProcess left behind. Default: ROOT/data, created empty (mode 0700).
  std::optional<std::filesystem::path> data_dir;
  // The standard arguments, each of which a test of configuration may leave out (and give
  // through env instead): --listen LISTEN when non-empty, --data DIR, --dev-cert.
  std::string listen = "127.0.0.1:0";
  bool data_flag = true;
  bool dev_cert = true;
  // How long start() waits for the "listening" line.
  std::chrono::milliseconds start_timeout{15000};
};

// How the process ended.
struct ExitStatus {
  bool exited = false;          // exit() or return from main: `code` is valid
  int code = -1;                // the exit status
  int signal = 0;               // the signal that killed it, when !exited
  bool stop_timed_out = false;  // stop() gave up waiting and sent SIGKILL

  bool clean() const noexcept { return exited && code == 0 && !stop_timed_out; }
  std::string to_string() const;  // "exit 0", "killed by signal 9 (after SIGTERM timed out)"
};

class KithdProcess {
 public:
  // The kithd binary this test build knows (CMake's KITHD_PATH), if there is one. Tests that
  // need kithd should GTEST_SKIP() when this is empty.
  static std::optional<std::filesystem::path> binary();

  // Starts kithd (see start()).
  explicit KithdProcess(KithdOptions options = {});
  ~KithdProcess();
  KithdProcess(const KithdProcess&) = delete;
  KithdProcess& operator=(const KithdProcess&) = delete;

  // Starts kithd and waits for it to listen. Throws std::runtime_error, with the log's tail,
  // if it exits or does not report listening within start_timeout (it is killed then); throws
  // std::logic_error if it is already running or if there is no kithd binary.
  void start();
  // SIGTERM, then wait up to `timeout` for it to exit; SIGKILL if it does not.
  ExitStatus stop(std::chrono::milliseconds timeout = std::chrono::seconds(15));
  // SIGKILL: a crash, as far as the data directory can tell.
  ExitStatus kill9();
  // Sends `signal` and returns at once (SIGHUP, SIGSTOP/SIGCONT for a frozen server, ...).
  void send_signal(int signal) const;
  // False once it has exited (checked without blocking; reaps it if it has).
  bool running();

  pid_t pid() const noexcept { return pid_; }
  // The port of the current (or last) run.
  std::uint16_t port() const noexcept { return port_; }
  const std::filesystem::path& data_dir() const noexcept { return data_dir_; }
  // DATA/dev-cert.pem, which kithd --dev-cert writes.
  std::filesystem::path ca_file() const { return data_dir_ / "dev-cert.pem"; }
  // wss://127.0.0.1:PORT/v1/sync
  client::Endpoint endpoint() const;
  // ca_file() as the CA, `timeout` for every step.
  client::TlsOptions tls_options(
      std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
  // A new verified connection (not yet authenticated). Throws client::TransportError.
  std::unique_ptr<client::Connection> connect() const;

  // The log of the current (or last) run.
  const std::filesystem::path& log_path() const noexcept { return log_path_; }
  std::string log_text() const;
  // One element per line; a line that is not JSON becomes a JSON string holding the line, so
  // a test can check that every line is an object.
  std::vector<nlohmann::json> log_lines() const;
  // The last `lines` lines, for failure messages.
  std::string log_tail(std::size_t lines = 40) const;
  // Polls the log until a line satisfies `match` (returns it) or `timeout` passes (nullopt).
  std::optional<nlohmann::json> wait_for_log(
      const std::function<bool(const nlohmann::json&)>& match, std::chrono::milliseconds timeout);
  // The same, for a line whose "event" is `event`.
  std::optional<nlohmann::json> wait_for_event(std::string_view event,
                                               std::chrono::milliseconds timeout);

 private:
  ExitStatus reap(int wait_status);

  KithdOptions options_;
  TempDir root_{"kithd-test"};
  std::filesystem::path data_dir_;
  std::filesystem::path log_path_;
  int runs_ = 0;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
};

}  // namespace kith::test
