// Runs kithd once to its end, for tests of what it refuses before it serves (configuration):
//
//   KithdRun r = run_kithd({"--config", file}, {{"KITH_THREADS", "999"}});
//   EXPECT_TRUE(r.status.exited && r.status.code == 2) << r.status.to_string() << r.err;
//   EXPECT_NE(r.err.find("KITH_THREADS"), std::string::npos);
//
// Unlike KithdProcess, no standard argument is added: the test gives every one. The environment
// is the test's minus every KITH_* variable, plus `env`, as for KithdProcess. A kithd still
// running when the timeout passes is killed (SIGKILL), so a configuration that was wrongly
// accepted ends the call too. Starts kithd from the calling thread (PR_SET_PDEATHSIG, see
// kithd_process.hpp).
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "support/kithd_process.hpp"

namespace kith::test {

struct KithdRun {
  ExitStatus status;
  std::string out;         // what kithd wrote to stdout
  std::string err;         // ... and to stderr
  bool timed_out = false;  // it was still running after the timeout and was killed

  bool exited_with(int code) const noexcept {
    return status.exited && status.code == code && !timed_out;
  }
  std::string describe() const;  // for failure messages: status, stdout and stderr
};

// Throws std::logic_error when this build has no kithd, std::runtime_error if fork fails.
KithdRun run_kithd(const std::vector<std::string>& args,
                   const std::vector<std::pair<std::string, std::string>>& env = {},
                   std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace kith::test
