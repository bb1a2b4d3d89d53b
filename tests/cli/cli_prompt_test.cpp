// The questions kith asks a person on a terminal, through a real pseudo-terminal: the passphrase
// (twice at `init`, never echoed), the recovery key (never echoed), and "revoke ...?", where
// anything but yes changes nothing. Scripts (no terminal) are never asked: cli_bad_input_test.
#include <filesystem>

#include "cli_fixture.hpp"

namespace kith::test {
namespace {

class Prompts : public KithCli {
 protected:
  // The home and server without KITH_PASSPHRASE: kith must ask.
  Env asked(const std::string& name) const {
    Env env;
    for (const auto& [k, v] : online(name)) {
      if (k != "KITH_PASSPHRASE") env.emplace_back(k, v);
    }
    return env;
  }
  static std::string account(const KithRun& whoami) {
    return whoami.json()["account"].get<std::string>();
  }
  static constexpr const char* kTyped = "tulips in the window box";
};

TEST_F(Prompts, InitAsksForThePassphraseTwiceWithoutEchoingIt) {
  start_kithd();
  KithChild init({"--json", "init", "--name", "Jo"}, asked("jo"), /*terminal=*/true);
  ASSERT_TRUE(init.wait_for_prompt("assphrase")) << init.screen();
  init.type(kTyped);
  ASSERT_TRUE(init.wait_for_prompt("Repeat the passphrase: ")) << init.screen();
  init.type(kTyped);
  KithRun r = init.wait(30s);
  ASSERT_TRUE(r.ok()) << r.describe() << "--- terminal:\n" << init.screen();
  EXPECT_EQ(init.screen().find(kTyped), std::string::npos) << "echoed: " << init.screen();
  EXPECT_EQ(r.out.find(kTyped), std::string::npos);
  // The typed passphrase is the one that opens the keys.
  Env by_env = asked("jo");
  by_env.emplace_back("KITH_PASSPHRASE", kTyped);
  EXPECT_EQ(account(ok(by_env, {"--json", "whoami"})), r.json()["account"]);
}

TEST_F(Prompts, TwoDifferentPassphrasesAtInitCreateNothing) {
  start_kithd();
  KithChild init({"init", "--name", "Jo"}, asked("jo"), true);
  ASSERT_TRUE(init.wait_for_prompt("assphrase")) << init.screen();
  init.type(kTyped);
  ASSERT_TRUE(init.wait_for_prompt("Repeat the passphrase: ")) << init.screen();
  init.type("tulips in the window");
  KithRun r = init.wait(30s);
  EXPECT_EQ(r.code, 4) << r.describe();
  EXPECT_NE(r.err.find("the two passphrases differ"), std::string::npos) << r.describe();
  // No identity was made: whoami says there is none.
  auto who = kith(online("jo"), {"--json", "whoami"});
  EXPECT_FALSE(who.ok()) << who.describe();
}

TEST_F(Prompts, AWrongPassphraseTypedAtTheTerminalOpensNothing) {
  start_kithd();
  const Env jo = online("jo");
  const std::string plan = init_with_plan(jo, "Jo", "Jo's plan");
  const nlohmann::json before = snapshot(jo);
  KithChild add({"add", plan, "note", "text=typed with the wrong passphrase"}, asked("jo"), true);
  ASSERT_TRUE(add.wait_for_prompt("Passphrase for ")) << add.screen();
  add.type("not the passphrase");
  KithRun r = add.wait(30s);
  EXPECT_EQ(r.code, 4) << r.describe();
  EXPECT_NE(r.err.find("kith: "), std::string::npos) << r.describe();
  EXPECT_EQ(add.screen().find("not the passphrase"), std::string::npos) << add.screen();
  EXPECT_EQ(snapshot(jo), before) << "something changed";
  // The right one, typed, works.
  KithChild right({"add", plan, "note", "text=typed right"}, asked("jo"), true);
  ASSERT_TRUE(right.wait_for_prompt("Passphrase for ")) << right.screen();
  right.type(kPassphrase);
  KithRun good = right.wait(30s);
  EXPECT_TRUE(good.ok()) << good.describe();
}

TEST_F(Prompts, TheRecoveryKeyIsAskedForWithoutEchoingIt) {
  start_kithd();
  const Env phone = online("phone");
  auto made = ok(phone, {"--json", "init", "--name", "Jo"}).json();
  const std::string key = made["recovery_key"].get<std::string>();
  // A new tablet: the passphrase comes from the environment, the key is typed.
  Env tablet = asked("tablet");
  tablet.emplace_back("KITH_PASSPHRASE", kPassphrase);
  KithChild init({"--json", "init", "--recover", "--name", "Jo's tablet"}, tablet, true);
  ASSERT_TRUE(init.wait_for_prompt("Your recovery key")) << init.screen();
  init.type(key);
  KithRun r = init.wait(30s);
  ASSERT_TRUE(r.ok()) << r.describe() << "--- terminal:\n" << init.screen();
  EXPECT_EQ(r.json()["account"], made["account"]);
  EXPECT_EQ(init.screen().find(key.substr(0, 11)), std::string::npos) << init.screen();
}

TEST_F(Prompts, RevokeAsksFirstAndAnythingButYesKeepsTheMembersAccess) {
  start_kithd();
  const Env owner = online("owner");
  const std::string plan = init_with_plan(owner, "Mary", "Mary's plan");
  ok(owner, {"add", plan, "note", "text=Prefers tea"});
  auto inv = ok(owner, {"--json", "invite", plan, "--role", "family"}).json();
  const Env family = online("family");
  ok(family, {"init", "--name", "Jo"});
  ok(family, {"join", inv["code"].get<std::string>(), "--title", "Mary"});
  const std::string member =
      ok(family, {"--json", "whoami"}).json()["account"].get<std::string>().substr(0, 8);
  ok(owner, {"sync"});
  auto members = [&] { return ok(owner, {"--json", "members", plan}).json(); };
  const nlohmann::json before = members();

  // The passphrase from the environment; the confirmation from the person.
  KithChild no({"revoke", plan, member}, owner, true);
  ASSERT_TRUE(no.wait_for_prompt("Revoke member " + member)) << no.screen();
  EXPECT_NE(no.screen().find("They keep what they have already synced. [y/N] "),
            std::string::npos)
      << no.screen();
  no.type("n");
  KithRun r = no.wait(30s);
  EXPECT_EQ(r.code, 1) << r.describe();
  EXPECT_NE(r.err.find("cancelled; nothing was changed"), std::string::npos) << r.describe();
  EXPECT_EQ(members(), before);

  KithChild yes({"revoke", plan, member}, owner, true);
  ASSERT_TRUE(yes.wait_for_prompt("[y/N] ")) << yes.screen();
  yes.type("y");
  KithRun done = yes.wait(30s);
  ASSERT_TRUE(done.ok()) << done.describe();
  EXPECT_NE(done.out.find("They keep what they had already synced; they get nothing new."),
            std::string::npos)
      << done.out;
  EXPECT_NE(members(), before);
}

}  // namespace
}  // namespace kith::test
