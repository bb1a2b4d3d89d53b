// Bad input to the circle-of-support commands through the real binary and a real kithd: each is
// refused with its exit status, a one-line reason, a stable JSON code, and nothing changed — in
// the inviting owner's home and, for `kith join`, in the joining person's.
#include <thread>

#include "cli_fixture.hpp"

namespace kith::test {
namespace {

class CircleBadInput : public KithCli {
 protected:
  void SetUp() override {
    start_kithd();
    owner = online("owner");
    plan = init_with_plan(owner, "Mary", "Mary's plan");
    ok(owner, {"add", plan, "health", "text=Metformin 500 mg"});
    ok(owner, {"sync"});
    stranger = online("stranger");
    ok(stranger, {"init", "--name", "Sam"});
  }

  // What could change: the owner's plan and circle, and the stranger's plans. Not the sync
  // cursor: `revoke` syncs before it looks for the member, which may move it.
  nlohmann::json state() const {
    nlohmann::json mine = snapshot(owner);
    for (auto& p : mine["plans"]["plans"]) p.erase("cursor");
    return {{"owner", mine},
            {"members", kith(owner, {"--json", "members", plan}).json()},
            {"stranger", snapshot(stranger)}};
  }

  // The refusal as a script sees it, in text and in --json form.
  void expect_refused(const Env& env, const std::vector<std::string>& args, int status,
                      const std::string& code, const std::string& message) {
    const nlohmann::json before = state();
    expect_refusal(env, args, status, code, message);
    EXPECT_EQ(state(), before) << "something changed";
  }

  std::string invite_code(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args{"--json", "invite", plan, "--role", "family"};
    args.insert(args.end(), extra.begin(), extra.end());
    return ok(owner, args).json()["code"].get<std::string>();
  }

  Env owner, stranger;
  std::string plan;
};

TEST_F(CircleBadInput, BadRole) {
  expect_refused(owner, {"invite", plan, "--role", "doctor"}, 2, "bad_role",
                 "'doctor' is not a role");
  expect_refused(owner, {"invite", plan, "--role", "custom"}, 2, "usage",
                 "--role custom needs at least one --grant");
}

TEST_F(CircleBadInput, BadGrant) {
  expect_refused(owner, {"invite", plan, "--role", "custom", "--grant", "health"}, 2, "bad_grant",
                 "is not SECTION:PERM");
  expect_refused(owner, {"invite", plan, "--role", "family", "--grant", "health:admin"}, 2,
                 "bad_grant", "'admin' is not a permission");
  expect_refused(owner, {"invite", plan, "--role", "family", "--grant", "helth:read"}, 2,
                 "unknown_section", "'helth' is not a section");
  expect_refused(owner, {"grant", plan, "abcd", "health"}, 2, "bad_grant", "is not SECTION:PERM");
}

TEST_F(CircleBadInput, BadWhen) {
  expect_refused(owner, {"invite", plan, "--role", "family", "--expires", "soon"}, 2, "bad_when",
                 "'soon' is not a time");
  expect_refused(owner, {"invite", plan, "--role", "family", "--expires", "2001-01-01"}, 2,
                 "bad_when", "already past");
  expect_refused(owner, {"invite", plan, "--role", "family", "--expires", "2030-02-30"}, 2,
                 "bad_when", "is not a time");
}

TEST_F(CircleBadInput, UnknownMember) {
  expect_refused(owner, {"grant", plan, "abcdef", "health:read"}, 3, "unknown_member",
                 "no member 'abcdef' in this plan");
  expect_refused(owner, {"revoke", plan, "Nia", "--yes"}, 3, "unknown_member",
                 "no member is called 'Nia' here");
  expect_refused(owner, {"members", plan, "--verify", "abcdef", "--yes"}, 3, "unknown_member",
                 "no member 'abcdef'");
}

TEST_F(CircleBadInput, AlteredCode) {
  std::string code = invite_code();
  // One character changed: the check in the code catches it before anything is sent.
  code[10] = code[10] == 'A' ? 'B' : 'A';
  expect_refused(stranger, {"join", code}, 2, "invite_code_invalid", "");
  expect_refused(stranger, {"join", "KITH-12345"}, 2, "invite_code_invalid", "");
}

TEST_F(CircleBadInput, UnknownCode) {
  // Made while the server was out of reach, so the server has never heard of it.
  Env away = offline("owner");
  away.emplace_back("KITH_SERVER", "wss://127.0.0.1:" + std::to_string(unused_port()));
  auto inv = ok(away, {"--json", "invite", plan, "--role", "family"}).json();
  ASSERT_EQ(inv["sent"], false) << inv.dump();
  expect_refused(stranger, {"join", inv["code"].get<std::string>()}, 3, "invite_unknown",
                 "knows no such invitation");
}

TEST_F(CircleBadInput, ReusedCode) {
  const std::string code = invite_code();
  const Env first = online("first");
  ok(first, {"init", "--name", "Fay"});
  ok(first, {"join", code});
  expect_refused(stranger, {"join", code}, 1, "invite_used", "has already been used");
}

TEST_F(CircleBadInput, ExpiredCode) {
  const std::string code = invite_code({"--expires", "2s"});
  std::this_thread::sleep_for(2500ms);
  expect_refused(stranger, {"join", code}, 1, "invite_expired", "has expired");
}

TEST_F(CircleBadInput, RevokeWithoutYesInAScript) {
  const std::string code = invite_code();
  const Env first = online("first");
  ok(first, {"init", "--name", "Fay"});
  ok(first, {"join", code});
  ok(owner, {"sync"});
  const std::string member = kith(first, {"--json", "whoami"}).json()["account"];
  expect_refused(owner, {"revoke", plan, member}, 2, "confirmation_needed",
                 "add --yes to do it from a script");
  expect_refused(owner, {"members", plan, "--verify", member}, 2, "confirmation_needed",
                 "add --yes");
}

TEST_F(CircleBadInput, LogIsTheOwnersAlone) {
  const std::string code = invite_code();
  const Env first = online("first");
  ok(first, {"init", "--name", "Fay"});
  ok(first, {"join", code, "--title", "Mary"});
  expect_refused(first, {"log", "Mary"}, 1, "not_owner", "only the plan's owner");
}

}  // namespace
}  // namespace kith::test
