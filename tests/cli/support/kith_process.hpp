// Runs the real `kith` binary for the CLI's end-to-end tests, as a script would: arguments,
// environment (the test's minus every KITH_* variable, plus what the test gives), no terminal
// (the child starts its own session, so it cannot prompt on the test runner's terminal), stdin
// from /dev/null, stdout and stderr captured to files.
//
//   KithRun r = run_kith({"plan", "list"}, {{"KITH_HOME", home}}, 20s);
//   EXPECT_EQ(r.code, 0) << r.describe();
//
// KithChild starts one that keeps running (`kith watch`) and is signalled and waited for. A
// child still running when the test ends is killed (SIGKILL), and PR_SET_PDEATHSIG kills it if
// the test process dies.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "support/temp_dir.hpp"

namespace kith::test {

using Env = std::vector<std::pair<std::string, std::string>>;

struct KithRun {
  bool exited = false;
  int code = -1;   // when exited
  int signal = 0;  // when killed
  bool timed_out = false;
  std::string out;
  std::string err;

  bool ok() const noexcept { return exited && code == 0 && !timed_out; }
  // stdout parsed as JSON (the last non-empty line); a JSON null when it does not parse.
  nlohmann::json json() const;
  std::string describe() const;
};

class KithChild {
 public:
  // With `terminal`, the child's controlling terminal is a new pseudo-terminal (stdin still
  // /dev/null, stdout and stderr still files): kith asks its questions there, as it would a
  // person, and the test answers through `type` after `wait_for_prompt`.
  KithChild(const std::vector<std::string>& args, const Env& env, bool terminal = false);
  ~KithChild();
  KithChild(const KithChild&) = delete;
  KithChild& operator=(const KithChild&) = delete;

  void send_signal(int signal) const;
  // Output so far.
  std::string out() const;
  std::string err() const;
  // Waits for it to end (SIGKILL after `timeout`).
  KithRun wait(std::chrono::milliseconds timeout);
  pid_t pid() const noexcept { return pid_; }

  // The terminal (with `terminal` only). Everything kith wrote to it so far.
  std::string screen();
  // Reads the terminal until `text` has appeared since the last answer; false after `timeout`.
  bool wait_for_prompt(const std::string& text,
                       std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Types `line` and Enter at the terminal.
  void type(const std::string& line);

 private:
  void read_terminal(std::chrono::milliseconds wait);
  TempDir dir_{"kith-cli-run"};
  pid_t pid_ = -1;
  int terminal_ = -1;        // the pseudo-terminal's master side
  std::string screen_;       // what kith wrote to it
  std::size_t answered_ = 0;  // screen_'s length when the last answer was typed
};

// The kith binary of this build (KITH_CLI_PATH).
std::filesystem::path kith_binary();

KithRun run_kith(const std::vector<std::string>& args, const Env& env,
                 std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace kith::test
