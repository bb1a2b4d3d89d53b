// A member's second device through the kith binary against a real kithd on 127.0.0.1: the family
// member's tablet is made with `kith init --recover` from the recovery key their phone's `init`
// printed, and linked with `kith device link`; the keys come back with the recovery key (the
// family's recovery envelopes), so it sees exactly the family's sections at once, with no other
// device of theirs or of the owner online. Bad input (a mistyped recovery
// key, a malformed plan id, a plan the account is not in) is refused with its status, one line,
// a stable code, and nothing changed.
#include <algorithm>
#include <filesystem>
#include <set>

#include "cli_fixture.hpp"

namespace kith::test {
namespace {

class Devices : public KithCli {
 protected:
  // The owner's plan with a record in six sections, synced; the family member joined.
  void SetUp() override {
    start_kithd();
    owner = online("owner");
    plan = init_with_plan(owner, "Mary", "Mary's plan");
    ok(owner, {"add", plan, "profile", "about_me=Retired teacher"});
    ok(owner, {"add", plan, "outcome", "text=Walk to the shop each week"});
    ok(owner, {"add", plan, "support", "text=Morning visit, 8am"});
    ok(owner, {"add", plan, "activity", "text=Visit by owner"});
    ok(owner, {"add", plan, "risk", "text=Falls on the stairs"});
    ok(owner, {"add", plan, "health", "text=Metformin 500 mg"});
    ok(owner, {"sync"});

    auto inv = ok(owner, {"--json", "invite", plan, "--role", "family"}).json();
    family = online("family");
    auto made = ok(family, {"--json", "init", "--name", "Jo"}).json();
    recovery_key = made["recovery_key"].get<std::string>();
    ok(family, {"--json", "join", inv["code"].get<std::string>(), "--title", "Mary"});
  }

  // The tablet's home, restoring the family member's identity from `key`.
  Env tablet_env(const std::string& key) const {
    Env env = online("tablet");
    env.emplace_back("KITH_RECOVERY_KEY", key);
    return env;
  }

  std::set<std::string> sections_seen(const Env& env) const {
    std::set<std::string> out;
    auto j = kith(env, {"--json", "list", plan}).json();
    for (const auto& r : j["records"]) out.insert(r["section"].get<std::string>());
    return out;
  }

  std::string account(const Env& env) const {
    return kith(env, {"--json", "whoami"}).json()["account"].get<std::string>();
  }

  // The refusal as a script sees it, in text and in --json form; `state` must not change.
  template <typename State>
  void expect_refused(const Env& env, const std::vector<std::string>& args, int status,
                      const std::string& code, const std::string& message, State state) {
    const nlohmann::json before = state();
    expect_refusal(env, args, status, code, message);
    EXPECT_EQ(state(), before) << "something changed";
  }

  Env owner, family;
  std::string plan, recovery_key;
};

TEST_F(Devices, ASecondDeviceFromTheRecoveryKeySeesTheFamilysSectionsAtOnce) {
  const Env tablet = tablet_env(recovery_key);
  auto made = ok(tablet, {"--json", "init", "--recover", "--name", "Jo's tablet"}).json();
  EXPECT_EQ(made["account"], account(family)) << made.dump();
  EXPECT_NE(made["device"], kith(family, {"--json", "whoami"}).json()["device"]);
  EXPECT_EQ(made["recovered"], true);
  EXPECT_EQ(made["registered"], true);
  EXPECT_FALSE(made.contains("recovery_key")) << "the key is not shown again";

  auto linked = ok(tablet, {"device", "link", plan, "--title", "Mary"});
  EXPECT_NE(linked.out.find("The keys came back with your recovery key: 4 records are readable"),
            std::string::npos)
      << linked.out;

  // Linking again says so and changes nothing.
  auto again = kith(tablet, {"--json", "device", "link", plan});
  EXPECT_EQ(again.code, 1) << again.describe();
  EXPECT_EQ(again.json()["error"]["code"], "already_linked") << again.out;

  // Before the owner's phone has seen the tablet, its keys came from the family's recovery
  // envelopes: exactly the family's sections.
  const std::set<std::string> family_sections{"profile", "outcomes", "support", "activity"};
  EXPECT_EQ(sections_seen(tablet), family_sections);

  // Both of the family member's devices are in the plan; the tablet is this one.
  auto devices = ok(tablet, {"--json", "device", "list", "Mary"}).json();
  ASSERT_EQ(devices["devices"].size(), 2u) << devices.dump();
  EXPECT_EQ(devices["this_device_linked"], true);
  int marked = 0;
  for (const auto& d : devices["devices"]) {
    if (d["this"] == true) {
      ++marked;
      EXPECT_EQ(d["id"], made["device"]);
    }
  }
  EXPECT_EQ(marked, 1);
  auto text = ok(tablet, {"device", "list", "Mary"}).out;
  EXPECT_NE(text.find(made["device"].get<std::string>() + "  (this device)"), std::string::npos)
      << text;

  // The owner's phone then wraps the keys for it too; nothing more becomes readable.
  ok(owner, {"sync"});
  ok(tablet, {"sync"});
  EXPECT_EQ(sections_seen(tablet), family_sections);
  EXPECT_EQ(sections_seen(family), family_sections);
  auto shown = ok(tablet, {"show", "Mary"}).out;
  EXPECT_EQ(shown.find("Metformin"), std::string::npos) << shown;
  EXPECT_NE(shown.find("Walk to the shop each week"), std::string::npos) << shown;
}

TEST_F(Devices, AMistypedRecoveryKeyNamesTheGroupAndWritesNothing) {
  // One character of the second group changed.
  std::string wrong = recovery_key;
  const auto pos = wrong.find('-') + 2;
  wrong[pos] = wrong[pos] == '0' ? '1' : '0';
  const Env tablet = tablet_env(wrong);
  const auto dir = std::filesystem::path(home("tablet"));
  auto files = [&] {
    nlohmann::json names = nlohmann::json::array();
    std::error_code ec;
    if (std::filesystem::exists(dir, ec)) {
      for (const auto& e : std::filesystem::directory_iterator(dir)) {
        names.push_back(e.path().filename().string());
      }
    }
    return nlohmann::json{{"files", names}};
  };
  expect_refused(tablet, {"init", "--recover", "--name", "Jo's tablet"}, 4, "bad_recovery_key",
                 "group 2", files);
  EXPECT_EQ(kith(tablet, {"--json", "whoami"}).json()["error"]["code"], "not_initialised");
}

TEST_F(Devices, AMalformedPlanIdIsRefusedAndNothingIsLinked) {
  const Env tablet = tablet_env(recovery_key);
  ok(tablet, {"init", "--recover", "--name", "Jo's tablet"});
  auto state = [&] { return snapshot(tablet); };
  expect_refused(tablet, {"device", "link", "not-a-plan-id"}, 2, "bad_plan_id", "is not a plan id",
                 state);
  expect_refused(tablet, {"device", "link", plan.substr(0, 12)}, 2, "bad_plan_id",
                 "is not a plan id", state);
}

TEST_F(Devices, LinkingAPlanTheAccountIsNotInIsRefusedAndNothingIsKept) {
  std::string other = trimmed(ok(owner, {"plan", "create", "Someone else's plan"}).out);
  ok(owner, {"add", other, "activity", "text=Not for Jo"});
  ok(owner, {"sync"});
  const Env tablet = tablet_env(recovery_key);
  ok(tablet, {"init", "--recover", "--name", "Jo's tablet"});
  auto state = [&] {
    return nlohmann::json{{"tablet", snapshot(tablet)}, {"owner", snapshot(owner)}};
  };
  expect_refused(tablet, {"device", "link", other}, 3, "not_member",
                 "your account is not a member of plan", state);
  // Nor does a plan no one has.
  expect_refused(tablet, {"device", "link", std::string(plan.size(), 'a')}, 3, "not_member",
                 "not a member", state);
}

TEST_F(Devices, LinkingNeedsAServer) {
  Env tablet = offline("tablet");
  tablet.emplace_back("KITH_RECOVERY_KEY", recovery_key);
  ok(tablet, {"init", "--recover", "--name", "Jo's tablet"});
  auto state = [&] { return snapshot(tablet); };
  expect_refused(tablet, {"device", "link", plan}, 5, "no_server", "server", state);
}

}  // namespace
}  // namespace kith::test
