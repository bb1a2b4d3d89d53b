// The kith binary against a real kithd on 127.0.0.1: registration, offline edits then sync, two
// devices of one owner converging (a conflict shown and resolved), and watch.
#include <signal.h>
#include <sys/stat.h>

#include <functional>
#include <thread>

#include "cli_fixture.hpp"
#include "kith/cli/device.hpp"
#include "kith/crypto/init.hpp"
#include "kith/crypto/recovery.hpp"

namespace kith::test {
namespace {

TEST_F(KithCli, InitRegistersAndShowsTheRecoveryKeyOnce) {
  start_kithd();
  const Env env = online("ada");
  auto r = ok(env, {"--json", "init", "--name", "Ada"});
  const auto j = r.json();
  EXPECT_EQ(j["registered"], true) << r.out;
  EXPECT_NO_THROW(crypto::RecoveryKey::parse(j["recovery_key"].get<std::string>()));
  struct stat st {};
  ASSERT_EQ(::stat((home("ada") + "/keys").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(r.err.find(kPassphrase), std::string::npos);
  EXPECT_EQ(r.out.find(kPassphrase), std::string::npos);
  // The text form tells the person to write it down; whoami never shows it again.
  auto text = ok(online("bob"), {"init", "--name", "Bob"});
  EXPECT_NE(text.out.find("Write it down"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("Registered with"), std::string::npos) << text.out;
  auto who = ok(env, {"whoami"});
  EXPECT_EQ(who.out.find(j["recovery_key"].get<std::string>()), std::string::npos);
  EXPECT_NE(who.out.find(j["account"].get<std::string>()), std::string::npos);
  EXPECT_NE(who.out.find("safety number"), std::string::npos);
}

TEST_F(KithCli, InitWorksOfflineAndSyncRegistersLater) {
  Env env = offline("ada");
  env.emplace_back("KITH_SERVER", "wss://127.0.0.1:" + std::to_string(unused_port()));
  auto r = ok(env, {"--json", "init", "--name", "Ada"});
  EXPECT_EQ(r.json()["registered"], false) << r.out;
  EXPECT_NE(r.json()["registration_error"].get<std::string>().find("cannot reach"),
            std::string::npos);
}

TEST_F(KithCli, OfflineEditsWaitThenSyncUploadsThem) {
  const Env off = offline("ada");
  const std::string plan = init_with_plan(off, "Ada", "Ada's plan");
  ok(off,
     {"add", "Ada's plan", "profile", "about_me=I taught for 40 years", "what_matters=My garden"});
  ok(off, {"add", plan.substr(0, 8), "support", "text=Morning visit", "time=08:00"});
  ok(off, {"add", plan, "activity", "text=Visit done", "at=2026-11-22T09:30"});
  // Three records, and the name Ada shares with the plan's circle.
  auto listed = ok(off, {"--json", "plan", "list"}).json();
  EXPECT_EQ(listed["plans"][0]["waiting"], 4) << listed;
  EXPECT_EQ(listed["plans"][0]["records"], 3) << listed;
  EXPECT_NE(ok(off, {"show", plan}).out.find("4 changes waiting to upload"), std::string::npos);

  start_kithd();
  const Env on = online("ada");
  auto s = ok(on, {"--json", "sync"}).json();
  ASSERT_EQ(s["plans"].size(), 1u) << s;
  EXPECT_EQ(s["plans"][0]["sent"], 4) << s;
  EXPECT_EQ(s["plans"][0]["waiting"], 0) << s;
  EXPECT_NE(ok(on, {"sync", plan}).out.find("0 changes waiting to upload"), std::string::npos);
  // Not a terminal: no progress bar in the output.
  EXPECT_EQ(ok(on, {"sync"}).out.find('\r'), std::string::npos);

  auto shown = ok(on, {"show", "Ada's plan"}).out;
  for (const char* part : {"About me", "I taught for 40 years", "What matters to me", "My garden",
                           "Support", "Morning visit", "Recent activity", "Visit done"}) {
    EXPECT_NE(shown.find(part), std::string::npos) << part << " in\n" << shown;
  }
}

// Two devices of one owner: the second is made from the recovery key and added to the plan by
// the first through kith_cli_core (the `kith device` commands come later); everything else is
// the binary.
class TwoDevices : public KithCli {
 protected:
  void SetUp() override {
    crypto::ensure_initialized();
    start_kithd();
    if (IsSkipped()) return;
    a = online("phone");
    b = online("tablet");
    auto init = ok(a, {"--json", "init", "--name", "Ada"}).json();
    plan = trimmed(ok(a, {"plan", "create", "Ada's plan"}).out);
    record = trimmed(ok(a, {"add", plan, "health", "medicine=Paracetamol", "dose=500mg"}).out);
    ok(a, {"sync"});

    const auto rk = crypto::RecoveryKey::parse(init["recovery_key"].get<std::string>());
    const cli::Home tablet(home("tablet"));
    cli::create_device(tablet, "Ada", kPassphrase, &rk);
    {
      auto d = cli::Device::open(tablet, kPassphrase, cli::Device::Access::kWrite);
      certificate = d.engine().identity().certificate.serialize();
      d.engine().follow(sync::PlanId::parse(plan), "Ada's plan");
    }
    {
      auto d =
          cli::Device::open(cli::Home(home("phone")), kPassphrase, cli::Device::Access::kWrite);
      d.engine().add_device(sync::PlanId::parse(plan),
                            crypto::DeviceCertificate::parse(certificate));
    }
    ok(a, {"sync"});
    ok(b, {"sync"});
  }

  nlohmann::json field_of(const Env& env, const std::string& field) {
    return ok(env, {"--json", "show", plan, record}).json()["record"]["fields"][field];
  }

  Env a, b;
  std::string plan, record;
  crypto::Bytes certificate;
};

TEST_F(TwoDevices, TheSecondDeviceReadsWhatTheFirstWrote) {
  EXPECT_EQ(field_of(b, "medicine"), "Paracetamol");
  EXPECT_EQ(ok(b, {"--json", "whoami"}).json()["account"],
            ok(a, {"--json", "whoami"}).json()["account"]);
  ok(b, {"add", "Ada's plan", "note", "text=Felt better today"});
  ok(b, {"sync"});
  auto s = ok(a, {"--json", "sync"}).json();
  EXPECT_GE(s["plans"][0]["received"], 1) << s;
  auto notes = ok(a, {"--json", "list", plan, "--type", "note"}).json()["records"];
  ASSERT_EQ(notes.size(), 1u) << notes;
  EXPECT_EQ(notes[0]["fields"]["text"], "Felt better today");
}

TEST_F(TwoDevices, ConcurrentEditsAreShownThenResolved) {
  ok(a, {"set", plan, record.substr(0, 6), "dose=1g"});
  ok(b, {"set", "Ada's plan", record, "dose=250mg"});
  ok(a, {"sync"});
  ok(b, {"sync"});
  ok(a, {"sync"});
  for (const Env* env : {&a, &b}) {
    auto c = ok(*env, {"--json", "conflicts", plan}).json()["conflicts"];
    ASSERT_EQ(c.size(), 1u) << c;
    EXPECT_EQ(c[0]["field"], "dose");
    EXPECT_EQ(c[0]["values"].size(), 2u);
  }
  EXPECT_EQ(field_of(a, "dose"), field_of(b, "dose"));  // the same default meanwhile
  EXPECT_NE(ok(a, {"conflicts", plan}).out.find("kith resolve"), std::string::npos);

  ok(b, {"resolve", plan, record.substr(0, 8), "dose", "500mg"});
  ok(b, {"sync"});
  ok(a, {"sync"});
  for (const Env* env : {&a, &b}) {
    EXPECT_TRUE(ok(*env, {"--json", "conflicts", plan}).json()["conflicts"].empty());
    EXPECT_EQ(field_of(*env, "dose"), "500mg");
  }
}

TEST_F(TwoDevices, WatchPrintsChangesAsTheyArriveAndStopsOnSignal) {
  for (int sig : {SIGTERM, SIGINT}) {
    KithChild watch({"watch", "Ada's plan"}, b);
    auto deadline = std::chrono::steady_clock::now() + 15s;
    while (watch.err().find("watching") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(50ms);
    }
    ASSERT_NE(watch.err().find("watching"), std::string::npos) << watch.err();
    const std::string text = "Walked to the shop " + std::to_string(sig);
    ok(a, {"add", plan, "activity", "text=" + text});
    ok(a, {"sync"});
    deadline = std::chrono::steady_clock::now() + 15s;
    while (watch.out().find(text) == std::string::npos &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(50ms);
    }
    watch.send_signal(sig);
    auto r = watch.wait(10s);
    EXPECT_TRUE(r.ok()) << r.describe();
    EXPECT_NE(r.out.find(text), std::string::npos) << r.describe();
    EXPECT_NE(r.err.find("stopped watching"), std::string::npos) << r.describe();
  }
}

TEST_F(TwoDevices, CommandsRunBesideWatchWhichUploadsWhatTheyLeave) {
  KithChild watch({"watch", "Ada's plan"}, b);
  auto wait_for = [&](const std::function<bool()>& cond) {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!cond() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(50ms);
    }
    return cond();
  };
  ASSERT_TRUE(wait_for([&] { return watch.err().find("watching") != std::string::npos; }))
      << watch.err();
  // In the same home as watch: the edits wait for the lock, which watch lets go of.
  ok(b, {"add", plan, "note", "text=Fell asleep early"});
  ok(b, {"set", plan, record, "dose=1g"});
  // Nobody ran `kith sync` on the tablet: watch took the lock back and uploaded both.
  ASSERT_TRUE(wait_for([&] {
    ok(a, {"sync"});
    return field_of(a, "dose") == "1g";
  })) << watch.err();
  auto notes = ok(a, {"--json", "list", plan, "--type", "note"}).json()["records"];
  ASSERT_EQ(notes.size(), 1u) << notes;
  EXPECT_EQ(notes[0]["fields"]["text"], "Fell asleep early");
  // And it still prints what arrives, without saying "watching" again.
  ok(a, {"add", plan, "activity", "text=Went to the lunch club"});
  ok(a, {"sync"});
  EXPECT_TRUE(wait_for([&] {
    return watch.out().find("Went to the lunch club") != std::string::npos;
  })) << watch.out();
  watch.send_signal(SIGTERM);
  auto r = watch.wait(10s);
  EXPECT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.err.find("kith: watching"), r.err.rfind("kith: watching")) << r.err;
}

TEST_F(KithCli, WatchReconnectsWhenTheServerComesBack) {
  KithdOptions options;
  options.listen = "127.0.0.1:" + std::to_string(unused_port());
  start_kithd(options);
  if (IsSkipped()) return;
  const Env a = online("ada");
  const std::string plan = init_with_plan(a, "Ada", "Ada's plan");
  ok(a, {"sync"});
  KithChild watch({"watch", plan}, a);
  auto wait_for = [&](const std::function<bool()>& cond) {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!cond() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(50ms);
    return cond();
  };
  ASSERT_TRUE(wait_for([&] { return watch.err().find("watching") != std::string::npos; }))
      << watch.err();
  EXPECT_TRUE(kithd->stop().clean());
  ASSERT_TRUE(wait_for([&] { return watch.err().find("trying again in") != std::string::npos; }))
      << watch.err();
  kithd->start();
  // Connected again: a second "watching" line.
  ASSERT_TRUE(wait_for([&] {
    const std::string e = watch.err();
    return e.find("watching") != e.rfind("watching");
  })) << watch.err();
  watch.send_signal(SIGTERM);
  auto r = watch.wait(10s);
  EXPECT_TRUE(r.ok()) << r.describe();
}

}  // namespace
}  // namespace kith::test
