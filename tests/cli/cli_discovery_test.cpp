// Plan discovery through the kith binary against a real kithd on 127.0.0.1: an owner with two
// plans, and a member of a friend's plan, loses the phone; `kith init --recover` on the new one
// lists the three plans the server knows for the account, `kith plan list --remote` marks them
// not linked here, `kith device link --all` links them and they read as before. A revoked
// member's list loses the plan; an unreachable or untrusted server is one line, exit 5, and
// nothing changed.
#include <algorithm>
#include <map>

#include "cli_fixture.hpp"

namespace kith::test {
namespace {

class Discovery : public KithCli {
 protected:
  void SetUp() override {
    start_kithd();
    owner = online("owner");
    recovery_key = ok(owner, {"--json", "init", "--name", "Mary"}).json()["recovery_key"];
    mine = trimmed(ok(owner, {"plan", "create", "Mary's plan"}).out);
    ok(owner, {"add", mine, "health", "text=Metformin 500 mg"});
    garden = trimmed(ok(owner, {"plan", "create", "Mary's garden"}).out);
    ok(owner, {"add", garden, "note", "text=Roses need pruning"});
    ok(owner, {"sync"});

    joan = online("joan");
    ok(joan, {"init", "--name", "Joan"});
    theirs = trimmed(ok(joan, {"plan", "create", "Joan's plan"}).out);
    ok(joan, {"add", theirs, "activity", "text=Crossword club on Tuesdays"});
    auto inv = ok(joan, {"--json", "invite", theirs, "--role", "family"}).json();
    ok(owner, {"join", inv["code"].get<std::string>(), "--title", "Joan's plan"});
    ok(joan, {"sync"});
    ok(owner, {"sync"});
  }

  Env phone_env() const {
    Env env = online("phone");
    env.emplace_back("KITH_RECOVERY_KEY", recovery_key);
    return env;
  }

  std::string account(const Env& env) const {
    return kith(env, {"--json", "whoami"}).json()["account"].get<std::string>();
  }

  // `plan list --remote --json`'s server_plans by id.
  std::map<std::string, nlohmann::json> server_plans(const Env& env) const {
    const nlohmann::json j = ok(env, {"--json", "plan", "list", "--remote"}).json();
    std::map<std::string, nlohmann::json> out;
    for (const auto& p : j["server_plans"]) out[p["id"].get<std::string>()] = p;
    return out;
  }

  Env owner, joan;
  std::string recovery_key, mine, garden, theirs;
};

TEST_F(Discovery, ALostPhonesOwnerFindsLinksAndReadsEveryPlan) {
  const Env phone = phone_env();
  const auto made = ok(phone, {"init", "--recover", "--name", "Mary's new phone"});
  for (const auto& id : {mine, garden, theirs}) {
    EXPECT_NE(made.out.find(id), std::string::npos) << made.out;
  }
  EXPECT_NE(made.out.find("Your account is in 3 plans"), std::string::npos) << made.out;
  EXPECT_NE(made.out.find("kith device link --all"), std::string::npos) << made.out;

  auto listed = server_plans(phone);
  ASSERT_EQ(listed.size(), 3u);
  EXPECT_EQ(listed[mine]["owner"], true);
  EXPECT_EQ(listed[garden]["owner"], true);
  EXPECT_EQ(listed[theirs]["owner"], false);
  EXPECT_EQ(listed[theirs]["owner_account"], account(joan));
  EXPECT_EQ(listed[mine]["owner_account"], account(phone));
  for (const auto& [id, p] : listed) {
    EXPECT_EQ(p["on_this_device"], false) << p.dump();
    EXPECT_EQ(p["expired"], false) << p.dump();
    EXPECT_FALSE(p.contains("title")) << "the server never knows a title: " << p.dump();
  }
  const std::string text = ok(phone, {"plan", "list", "--remote"}).out;
  EXPECT_NE(text.find("not linked here: `kith device link " + theirs + "`"), std::string::npos)
      << text;
  EXPECT_NE(text.find("member (owner " + account(joan).substr(0, 8) + ")"), std::string::npos)
      << text;

  const auto linked = ok(phone, {"--json", "device", "link", "--all"}).json();
  EXPECT_EQ(linked["linked"].size(), 3u) << linked.dump();
  for (const auto& [id, p] : server_plans(phone)) {
    EXPECT_EQ(p["on_this_device"], true) << p.dump();
  }
  // The keys came back with the recovery key: each plan reads as on the lost phone.
  EXPECT_NE(ok(phone, {"show", mine}).out.find("Metformin 500 mg"), std::string::npos);
  EXPECT_NE(ok(phone, {"list", garden}).out.find("Roses need pruning"), std::string::npos);
  EXPECT_NE(ok(phone, {"list", theirs}).out.find("Crossword club on Tuesdays"), std::string::npos);

  // Nothing is left to link.
  const auto again = ok(phone, {"device", "link", "--all"});
  EXPECT_NE(again.out.find("Nothing to link"), std::string::npos) << again.out;
}

TEST_F(Discovery, ARevokedMemberNoLongerSeesThePlan) {
  ASSERT_EQ(server_plans(owner).size(), 3u);
  ok(joan, {"revoke", theirs, account(owner), "--yes"});
  ok(joan, {"sync"});
  auto listed = server_plans(owner);
  EXPECT_EQ(listed.size(), 2u);
  EXPECT_FALSE(listed.contains(theirs));
  // The plan stays on the owner's device (what was seen is kept): listed as only here.
  const std::string text = ok(owner, {"plan", "list", "--remote"}).out;
  EXPECT_NE(text.find("Only on this device"), std::string::npos) << text;
  // Joan's list is unchanged.
  EXPECT_EQ(server_plans(joan).size(), 1u);
}

TEST_F(Discovery, WithoutAServerItSaysHowToAskLater) {
  Env phone = offline("phone");
  phone.emplace_back("KITH_RECOVERY_KEY", recovery_key);
  const auto made = ok(phone, {"init", "--recover", "--name", "Mary's new phone"});
  EXPECT_NE(made.out.find("Could not ask the server"), std::string::npos) << made.out;
  EXPECT_NE(made.out.find("kith plan list --remote"), std::string::npos) << made.out;
  expect_refusal(phone, {"plan", "list", "--remote"}, 5, "no_server", "no server configured");
  expect_refusal(phone, {"device", "link", "--all"}, 5, "no_server", "no server configured");
  // Offline, `plan list` works as ever.
  EXPECT_NE(ok(phone, {"plan", "list"}).out.find("No plans on this device"), std::string::npos);
}

TEST_F(Discovery, AnUnreachableOrUntrustedServerIsOneLineAndChangesNothing) {
  const Env phone = phone_env();
  ok(phone, {"init", "--recover", "--name", "Mary's new phone"});
  const nlohmann::json before = snapshot(phone);

  Env unreachable = offline("phone");
  unreachable.emplace_back("KITH_SERVER", "wss://127.0.0.1:" + std::to_string(unused_port()));
  expect_refusal(unreachable, {"plan", "list", "--remote"}, 5, "unreachable",
                 "cannot reach 127.0.0.1:");
  expect_refusal(unreachable, {"device", "link", "--all"}, 5, "unreachable",
                 "cannot reach 127.0.0.1:");

  Env untrusted = offline("phone");
  untrusted.emplace_back("KITH_SERVER", server_url());  // and no KITH_CA: the system store
  expect_refusal(untrusted, {"plan", "list", "--remote"}, 5, "tls_untrusted",
                 "certificate is not trusted");
  expect_refusal(untrusted, {"device", "link", "--all"}, 5, "tls_untrusted",
                 "certificate is not trusted");
  EXPECT_EQ(snapshot(phone), before);

  // PLAN_ID and --all go one at a time.
  expect_refusal(phone, {"device", "link", "--all", mine}, 2, "usage", "not both");
  expect_refusal(phone, {"device", "link"}, 2, "usage", "--all");
}

}  // namespace
}  // namespace kith::test
