// Runs capi_exchange (a C program, tests/capi/capi_exchange.c) against a real kithd over TLS on
// 127.0.0.1: this test starts kithd with a temporary data directory and --dev-cert, hands the C
// program the URL, the CA file and an empty work directory, and expects exit status 0. The C
// program does the checking; its output is shown when it fails.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/kithd_process.hpp"
#include "support/temp_dir.hpp"

extern char** environ;

namespace {

using namespace std::chrono_literals;

struct ChildRun {
  int status = -1;  // exit status, or -1 when killed or timed out
  std::string output;
};

// Runs `argv` with stdout and stderr to `log`, killing it after `timeout`.
ChildRun run(const std::vector<std::string>& argv, const std::filesystem::path& log,
             std::chrono::milliseconds timeout) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ChildRun r;
  if (rc != 0) {
    r.output = "posix_spawn failed: " + std::string(std::strerror(rc));
    return r;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int ws = 0;
  while (true) {
    const pid_t done = ::waitpid(pid, &ws, WNOHANG);
    if (done == pid) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &ws, 0);
      r.output = "(timed out and killed)\n";
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  if (WIFEXITED(ws) && r.output.empty()) r.status = WEXITSTATUS(ws);
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  r.output += text.str();
  return r;
}

TEST(CApi, OwnerAndFamilyMemberExchangeAPlanThroughKithd) {
  if (!kith::test::KithdProcess::binary()) GTEST_SKIP() << "no kithd in this build";
  kith::test::KithdProcess kithd;
  kith::test::TempDir work("kith-capi");
  const std::filesystem::path homes = work / "homes";
  std::filesystem::create_directories(homes);
  const ChildRun r = run(
      {KITH_CAPI_EXCHANGE_PATH, kithd.endpoint().url(), kithd.ca_file().string(), homes.string()},
      work / "capi_exchange.log", 25s);
  EXPECT_EQ(r.status, 0) << r.output << "\nkithd log:\n" << kithd.log_tail();
}

}  // namespace
