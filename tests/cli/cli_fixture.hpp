// The fixture of the CLI's end-to-end tests: temporary homes, a kithd started on demand, and
// `kith` run as a script would run it.
#pragma once

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "support/kith_process.hpp"
#include "support/kithd_process.hpp"
#include "support/temp_dir.hpp"

namespace kith::test {

using namespace std::chrono_literals;

inline constexpr const char* kPassphrase = "correct horse battery staple";

// A TCP port on 127.0.0.1 that nothing listens on (bound, then closed).
inline std::uint16_t unused_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

class KithCli : public ::testing::Test {
 protected:
  void start_kithd(KithdOptions options = {}) {
    if (!KithdProcess::binary()) GTEST_SKIP() << "no kithd in this build";
    kithd = std::make_unique<KithdProcess>(std::move(options));
  }
  std::string server_url() const { return "wss://127.0.0.1:" + std::to_string(kithd->port()); }

  std::string home(const std::string& name) const { return (root / name).string(); }
  // Offline: home and passphrase only.
  Env offline(const std::string& name) const {
    return {{"KITH_HOME", home(name)}, {"KITH_PASSPHRASE", kPassphrase}};
  }
  // With the server and its CA.
  Env online(const std::string& name) const {
    Env env = offline(name);
    env.emplace_back("KITH_SERVER", server_url());
    env.emplace_back("KITH_CA", kithd->ca_file().string());
    return env;
  }
  KithRun kith(const Env& env, const std::vector<std::string>& args,
               std::chrono::milliseconds timeout = 30s) const {
    return run_kith(args, env, timeout);
  }
  // Runs and expects success; returns stdout's last JSON line when `--json` is among args.
  KithRun ok(const Env& env, const std::vector<std::string>& args) const {
    KithRun r = kith(env, args);
    std::string cmd;
    for (const auto& a : args) cmd += " " + a;
    EXPECT_TRUE(r.ok()) << "kith" << cmd << ": " << r.describe();
    return r;
  }
  // `kith init` and the new plan's id.
  std::string init_with_plan(const Env& env, const std::string& name, const std::string& title) {
    auto r = kith(env, {"init", "--name", name});
    EXPECT_TRUE(r.ok()) << r.describe();
    auto p = kith(env, {"plan", "create", title});
    EXPECT_TRUE(p.ok()) << p.describe();
    std::string id = p.out;
    while (!id.empty() && (id.back() == '\n')) id.pop_back();
    return id;
  }
  // A refusal as a script sees it, run once as given and once with --json: exit `status`, one
  // line on stderr starting "kith: " and holding `message`, nothing on stdout, and in the JSON
  // form {"ok": false, "error": {"code": `code`}}. Whether anything changed is the caller's.
  void expect_refusal(const Env& env, const std::vector<std::string>& args, int status,
                      const std::string& code, const std::string& message) const {
    std::vector<std::string> json_args = args;
    json_args.push_back("--json");
    for (const std::vector<std::string>* a :
         {&args, static_cast<const std::vector<std::string>*>(&json_args)}) {
      KithRun r = kith(env, *a);
      EXPECT_TRUE(r.exited && !r.timed_out) << r.describe();
      EXPECT_EQ(r.code, status) << r.describe();
      EXPECT_NE(r.err.find(message), std::string::npos) << r.describe();
      EXPECT_TRUE(r.err.starts_with("kith: ")) << r.describe();
      EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
      if (a == &json_args) {
        auto j = r.json();
        EXPECT_EQ(j["ok"], false) << r.out;
        EXPECT_EQ(j["error"]["code"], code) << r.out;
      } else {
        EXPECT_TRUE(r.out.empty()) << r.out;
      }
    }
  }
  // What a person could see of the home: every plan, its records, conflicts and queue.
  nlohmann::json snapshot(const Env& env) const {
    auto list = kith(env, {"--json", "plan", "list"});
    const nlohmann::json plans = list.json();
    nlohmann::json out{{"plans", plans}};
    if (!list.ok()) return out;
    for (const auto& p : plans["plans"]) {
      out["shown"].push_back(kith(env, {"--json", "show", p["id"]}).json());
    }
    return out;
  }

  TempDir root{"kith-cli-test"};
  std::unique_ptr<KithdProcess> kithd;
};

inline std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace kith::test
