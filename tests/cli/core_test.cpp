// Unit tests of kith_cli_core, in-process: references, FIELD=VALUE, the home and its lock,
// backoff, the care-plan rendering, and the command table's parse errors and --help.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <functional>
#include <sstream>
#include <thread>

#include "kith/cli/commands.hpp"
#include "kith/cli/device.hpp"
#include "kith/cli/error.hpp"
#include "kith/cli/refs.hpp"
#include "kith/cli/render.hpp"
#include "kith/cli/sync_session.hpp"
#include "kith/crypto/init.hpp"
#include "support/temp_dir.hpp"

namespace kith::cli {
namespace {

using test::TempDir;
using namespace std::chrono_literals;

Environment env_of(std::map<std::string, std::string> vars) {
  return Environment{[vars](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end() || it->second.empty()) return std::nullopt;
    return it->second;
  }};
}

template <class F>
CliError error_of(F&& f) {
  try {
    f();
  } catch (const CliError& e) {
    return e;
  }
  ADD_FAILURE() << "no CliError";
  return CliError(Exit::kOk, "", "");
}

TEST(Assignments, SplitAtTheFirstEqualsSign) {
  auto f = parse_assignments({"text=a=b", "status=", "who=Nia Jones"});
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f[0], (std::pair<std::string, std::string>{"text", "a=b"}));
  EXPECT_EQ(f[1].second, "");
  EXPECT_EQ(f[2].second, "Nia Jones");
}

TEST(Assignments, MalformedOnesAreRefusedByName) {
  for (const char* bad : {"noequals", "=value", "bad field=x", "_deleted=1"}) {
    auto e = error_of([&] { parse_assignments({"text=ok", bad}); });
    EXPECT_EQ(e.code(), "bad_field") << bad;
    EXPECT_EQ(e.exit(), Exit::kUsage) << bad;
  }
  EXPECT_EQ(error_of([] { parse_assignments({"text=a", "text=b"}); }).code(), "bad_field");
}

class WithEngine : public ::testing::Test {
 protected:
  void SetUp() override {
    crypto::ensure_initialized();
    made = create_device(home, "Ada", "pass phrase");
    device = std::make_unique<Device>(Device::open(home, "pass phrase", Device::Access::kWrite));
  }
  sync::SyncEngine& engine() { return device->engine(); }

  TempDir dir{"kith-cli-unit"};
  Home home{dir / "home"};
  Created made;
  std::unique_ptr<Device> device;
};

TEST_F(WithEngine, PlanByIdPrefixOrTitle) {
  auto a = engine().create_plan("Ada's plan");
  auto b = engine().create_plan("Bob's plan");
  EXPECT_EQ(resolve_plan(engine(), a.hex()), a);
  EXPECT_EQ(resolve_plan(engine(), a.hex().substr(0, 6)), a);
  EXPECT_EQ(resolve_plan(engine(), "Bob's plan"), b);
  EXPECT_EQ(error_of([&] { resolve_plan(engine(), "Carol"); }).code(), "unknown_plan");
  EXPECT_EQ(error_of([&] { resolve_plan(engine(), "Carol"); }).exit(), Exit::kNotFound);
}

TEST_F(WithEngine, AmbiguousPlansAreNamed) {
  auto a = engine().create_plan("Same");
  auto b = engine().create_plan("Same");
  auto e = error_of([&] { resolve_plan(engine(), "Same"); });
  EXPECT_EQ(e.code(), "ambiguous_plan");
  EXPECT_NE(std::string(e.what()).find(a.short_hex()), std::string::npos);
  EXPECT_NE(std::string(e.what()).find(b.short_hex()), std::string::npos);
}

TEST_F(WithEngine, RecordByIdOrPrefix) {
  auto plan = engine().create_plan("p");
  auto r = engine().add_record(plan, "note", {{"text", "hello"}});
  const auto& state = engine().state(plan);
  EXPECT_EQ(resolve_record(state, r.hex()), r);
  EXPECT_EQ(resolve_record(state, r.hex().substr(0, 4)), r);
  EXPECT_EQ(error_of([&] { resolve_record(state, "zz"); }).code(), "unknown_record");
  EXPECT_EQ(error_of([&] { resolve_record(state, r.hex() + "00"); }).code(), "unknown_record");
}

TEST_F(WithEngine, KeysAndHomeAreOwnerOnly) {
  struct stat st {};
  ASSERT_EQ(::stat(home.key_file().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(home.dir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(home.read_info().name, "Ada");
  EXPECT_EQ(home.read_info().account, engine().identity().account().hex());
}

TEST_F(WithEngine, ASecondDeviceFromTheRecoveryKeyHasTheSameAccount) {
  auto rk = crypto::RecoveryKey::parse(made.recovery_key);
  Home other(dir / "other");
  auto second = create_device(other, "Ada (tablet)", "another", &rk);
  EXPECT_EQ(second.info.account, made.info.account);
  EXPECT_NE(second.info.device, made.info.device);
}

TEST_F(WithEngine, WrongPassphraseAndSecondInitAreRefused) {
  device.reset();
  std::string code;
  try {
    Device::open(home, "not it", Device::Access::kRead);
  } catch (...) {
    code = to_cli_error(std::current_exception()).code();
  }
  EXPECT_EQ(code, "wrong_passphrase");
  EXPECT_EQ(error_of([&] { create_device(home, "Again", "x"); }).code(), "already_initialised");
}

TEST_F(WithEngine, ASecondWriterWaitsForTheFirst) {
  // `device` holds the lock (kWrite); another writer gives up with home_busy.
  auto e = error_of([&] { HomeLock lock(home, 100); });
  EXPECT_EQ(e.code(), "home_busy");
}

TEST_F(WithEngine, AWaitingCommandIsSeenByTheHolderAndGoesBeforeAPausedOne) {
  // `device` (kWrite) holds the lock, as `kith watch` does.
  EXPECT_FALSE(device->others_waiting());
  std::atomic<int> order{0};
  int waiter_was = 0;
  int paused_was = 0;
  std::thread waiter([&] {
    HomeLock lock(home, 10000);
    waiter_was = ++order;
    std::this_thread::sleep_for(300ms);
  });
  auto within = [](const std::function<bool()>& cond) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!cond() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(10ms);
    }
    return cond();
  };
  ASSERT_TRUE(within([&] { return device->others_waiting(); }));
  const auto plan = engine().create_plan("Ada's plan");
  device->pause();
  EXPECT_TRUE(device->paused());
  // Resuming waits until the waiter has had its turn, and sees what was saved.
  ASSERT_TRUE(device->resume([] { return false; }));
  paused_was = ++order;
  waiter.join();
  EXPECT_EQ(waiter_was, 1);
  EXPECT_EQ(paused_was, 2);
  EXPECT_FALSE(device->paused());
  EXPECT_EQ(resolve_plan(engine(), "Ada's plan"), plan);
  // Holding it again: another writer still gives up with home_busy.
  EXPECT_EQ(error_of([&] { HomeLock lock(home, 100); }).code(), "home_busy");
}

TEST_F(WithEngine, APausedDeviceStopsWaitingWhenAskedTo) {
  device->pause();
  HomeLock other(home, 0);
  std::atomic<int> asked{0};
  EXPECT_FALSE(device->resume([&] { return ++asked > 3; }));
  EXPECT_TRUE(device->paused());
  EXPECT_GT(asked.load(), 3);
}

TEST(Backoff, DoublesFromOneSecondUpToTheCap) {
  using std::chrono::milliseconds;
  EXPECT_EQ(backoff_delay(0), milliseconds(1000));
  EXPECT_EQ(backoff_delay(1), milliseconds(2000));
  EXPECT_EQ(backoff_delay(4), milliseconds(16000));
  EXPECT_EQ(backoff_delay(5), milliseconds(30000));
  EXPECT_EQ(backoff_delay(1000), milliseconds(30000));
  EXPECT_EQ(backoff_delay(3, milliseconds(5000)), milliseconds(5000));
}

TEST(Home, FlagThenEnvironmentThenHome) {
  EXPECT_EQ(Home::locate("/x", env_of({{"KITH_HOME", "/y"}})).dir(), "/x");
  EXPECT_EQ(Home::locate("", env_of({{"KITH_HOME", "/y"}, {"HOME", "/h"}})).dir(), "/y");
  EXPECT_EQ(Home::locate("", env_of({{"HOME", "/h"}})).dir(), "/h/.kith");
  EXPECT_EQ(error_of([] { Home::locate("", env_of({})); }).code(), "no_home");
}

TEST(Server, BadUrlsAreRefusedBeforeConnecting) {
  EXPECT_EQ(error_of([] { parse_server_url("http://127.0.0.1:8443"); }).code(), "bad_server_url");
  EXPECT_EQ(error_of([] { parse_server_url("wss://127.0.0.1"); }).code(), "bad_server_url");
  EXPECT_EQ(parse_server_url("wss://127.0.0.1:8443").port, 8443);
}

sync::RecordView record(const std::string& type, const std::string& section,
                        std::map<std::string, std::string> fields) {
  sync::RecordView r;
  r.id = sync::RecordId::random();
  r.type = type;
  r.section = sync::Section::parse(section);
  for (auto& [k, v] : fields) r.fields[k].value = v;
  return r;
}

TEST(Render, SummaryPrefersTextAndShortensWithoutBreakingUtf8) {
  EXPECT_EQ(record_summary(record("note", "notes", {{"at", "x"}, {"text", "hello"}})), "hello");
  EXPECT_EQ(record_summary(record("risk", "risk", {{"level", "high"}})), "level: high");
  const std::string s = record_summary(
      record("note", "notes", {{"text", std::string(10, 'a') + "\xC3\xA9\xC3\xA9"}}), 12);
  EXPECT_EQ(s, std::string(9, 'a') + "...");
}

// The care plan reads in the order people expect, whatever the order of the records.
TEST_F(WithEngine, ShowReadsLikeACarePlan) {
  auto plan = engine().create_plan("Ada's plan");
  engine().add_record(plan, "risk", {{"text", "Falls at night"}, {"level", "high"}});
  engine().add_record(plan, "activity", {{"text", "Visit done"}, {"at", "2026-11-22T09:30"}});
  engine().add_record(plan, "support", {{"text", "Morning visit"}});
  engine().add_record(plan, "outcome", {{"text", "Walk to the shop"}});
  engine().add_record(plan, "profile", {{"about_me", "A teacher"}, {"what_matters", "My cat"}});
  std::ostringstream out;
  print_care_plan(out, "Ada's plan", engine().state(plan),
                  [](const sync::AccountId&) { return std::string("you"); });
  const std::string text = out.str();
  std::size_t at = 0;
  for (const char* heading :
       {"About me", "A teacher", "What matters to me", "My cat", "Outcomes", "Walk to the shop",
        "Support", "Morning visit", "Recent activity", "Visit done", "Risks", "Falls at night"}) {
    const auto found = text.find(heading, at);
    ASSERT_NE(found, std::string::npos) << heading << " missing or out of order in:\n" << text;
    at = found;
  }
}

struct Ran {
  int code;
  std::string out, err;
};
Ran run_args(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
  args.insert(args.begin(), "kith");
  std::ostringstream out, err;
  const int code = run(args, out, err, env_of(std::move(env)));
  return {code, out.str(), err.str()};
}

TEST(Commands, EveryCommandHasHelp) {
  for (std::vector<std::string> cmd : {std::vector<std::string>{},
                                       {"init"},
                                       {"whoami"},
                                       {"plan"},
                                       {"plan", "create"},
                                       {"plan", "list"},
                                       {"add"},
                                       {"set"},
                                       {"list"},
                                       {"show"},
                                       {"conflicts"},
                                       {"resolve"},
                                       {"sync"},
                                       {"watch"},
                                       {"device"},
                                       {"device", "link"},
                                       {"device", "list"}}) {
    cmd.push_back("--help");
    auto r = run_args(cmd);
    EXPECT_EQ(r.code, 0) << cmd.front() << r.err;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << cmd.front();
    EXPECT_TRUE(r.err.empty()) << r.err;
  }
}

TEST(Commands, ParseErrorsAreOneLineWithAStableCode) {
  auto r = run_args({"frobnicate", "--json"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "kith: unknown command 'frobnicate'; `kith --help` lists the commands\n");
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["ok"], false);
  EXPECT_EQ(j["error"]["code"], "unknown_command");

  r = run_args({"plan", "list", "--colour"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("unknown option '--colour'"), std::string::npos) << r.err;

  r = run_args({"add", "PLAN"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("TYPE is required"), std::string::npos) << r.err;

  r = run_args({});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("no command given"), std::string::npos) << r.err;

  r = run_args({"plan"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("needs a command"), std::string::npos) << r.err;
}

TEST(Commands, ACommandWithoutAnIdentitySaysToInit) {
  TempDir dir{"kith-cli-unit"};
  auto r = run_args({"--json", "plan", "list"}, {{"KITH_HOME", (dir / "h").string()}});
  EXPECT_EQ(r.code, 4);
  EXPECT_EQ(nlohmann::json::parse(r.out)["error"]["code"], "not_initialised");
  EXPECT_NE(r.err.find("kith init"), std::string::npos);
}

}  // namespace
}  // namespace kith::cli
