// Bad input through the real binary: each is refused with a non-zero status, a one-line reason
// on stderr, a stable code in the --json form, and nothing changed in the home.
#include <sys/stat.h>

#include <fstream>

#include "cli_fixture.hpp"

namespace kith::test {
namespace {

class BadInput : public KithCli {
 protected:
  void SetUp() override {
    env = offline("ada");
    plan = init_with_plan(env, "Ada", "Ada's plan");
    record = trimmed(ok(env, {"add", plan, "outcome", "text=Walk to the shop"}).out);
    before = snapshot(env);
    ASSERT_FALSE(before["shown"].empty())
        << before.dump() << kith(env, {"--json", "plan", "list"}).describe();
  }
  // The refusal as a script sees it.
  void expect_refused(const std::vector<std::string>& args, int status, const std::string& code,
                      const std::string& message, const Env* with = nullptr) {
    expect_refusal(with ? *with : env, args, status, code, message);
    EXPECT_EQ(snapshot(env), before) << "something changed";
  }

  Env env;
  std::string plan, record;
  nlohmann::json before;
};

TEST_F(BadInput, UnknownCommand) {
  expect_refused({"frobnicate", plan}, 2, "unknown_command", "unknown command 'frobnicate'");
}

TEST_F(BadInput, BadFlag) {
  expect_refused({"add", plan, "note", "text=hi", "--urgent"}, 2, "bad_flag",
                 "unknown option '--urgent'");
}

TEST_F(BadInput, MissingArgument) {
  expect_refused({"set", plan, record}, 2, "usage", "FIELD=VALUE is required");
}

TEST_F(BadInput, UnknownPlan) {
  expect_refused({"add", "Bob's plan", "note", "text=hi"}, 3, "unknown_plan",
                 "no plan 'Bob's plan' on this device");
}

TEST_F(BadInput, AmbiguousPlan) {
  ok(env, {"plan", "create", "Ada's plan"});
  before = snapshot(env);
  expect_refused({"add", "Ada's plan", "note", "text=hi"}, 3, "ambiguous_plan",
                 "names more than one plan");
}

TEST_F(BadInput, UnknownRecord) {
  expect_refused({"set", plan, "ffffffff", "text=x"}, 3, "unknown_record", "no record 'ffffffff'");
  expect_refused({"show", plan, "not-hex"}, 3, "unknown_record", "is not a record id");
}

TEST_F(BadInput, MalformedFieldValue) {
  expect_refused({"add", plan, "note", "text=ok", "textwithoutequals"}, 2, "bad_field",
                 "'textwithoutequals' is not FIELD=VALUE");
  expect_refused({"set", plan, record, "=x"}, 2, "bad_field", "'=x' is not FIELD=VALUE");
  expect_refused({"set", plan, record, "te xt=x"}, 2, "bad_field", "in 'te xt=x'");
}

TEST_F(BadInput, ValueOfTheWrongKind) {
  expect_refused({"add", plan, "outcome", "status=done-ish"}, 2, "invalid_field",
                 "'status' must be one of");
  expect_refused({"set", plan, record, "target_date=next week"}, 2, "invalid_field",
                 "'target_date' must be a date");
}

TEST_F(BadInput, UnknownRecordType) {
  expect_refused({"add", plan, "wish", "text=x"}, 2, "unknown_type", "'wish' is not a record type");
}

TEST_F(BadInput, AppendOnlyRecordsAreNotEdited) {
  const std::string note = trimmed(ok(env, {"add", plan, "note", "text=Called the GP"}).out);
  before = snapshot(env);
  expect_refused({"set", plan, note, "text=changed"}, 1, "forbidden", "cannot be edited");
}

TEST_F(BadInput, ResolveWithoutAConflict) {
  expect_refused({"resolve", plan, record, "text", "x"}, 3, "no_conflict", "has no conflict");
}

TEST_F(BadInput, WrongPassphrase) {
  Env wrong = offline("ada");
  wrong[1].second = "not the passphrase";
  expect_refused({"add", plan, "note", "text=hi"}, 4, "wrong_passphrase",
                 "the passphrase does not open this device's keys", &wrong);
}

TEST_F(BadInput, NoPassphraseAndNoTerminal) {
  Env none = {{"KITH_HOME", home("ada")}};
  expect_refused({"list", plan}, 4, "no_passphrase", "set KITH_PASSPHRASE", &none);
}

TEST_F(BadInput, NotInitialised) {
  Env elsewhere = offline("nobody");
  expect_refused({"plan", "list"}, 4, "not_initialised", "run `kith init --name NAME` first",
                 &elsewhere);
  EXPECT_FALSE(std::filesystem::exists(home("nobody") + "/keys"));
}

TEST_F(BadInput, InitTwice) {
  const auto who = kith(env, {"--json", "whoami"}).json();
  expect_refused({"init", "--name", "Someone else"}, 4, "already_initialised",
                 "there is already a Kith identity");
  EXPECT_EQ(kith(env, {"--json", "whoami"}).json(), who);
}

TEST_F(BadInput, UnreachableServer) {
  Env e = env;
  e.emplace_back("KITH_SERVER", "wss://127.0.0.1:" + std::to_string(unused_port()));
  // The message also says that nothing queued was lost.
  expect_refused({"sync"}, 5, "unreachable", "cannot reach 127.0.0.1:", &e);
  auto r = kith(e, {"sync"});
  // The outcome, and the name Ada shares with the plan's circle.
  EXPECT_NE(r.err.find("2 changes waiting to upload"), std::string::npos) << r.err;
}

TEST_F(BadInput, NoServerConfigured) {
  expect_refused({"sync"}, 5, "no_server", "no server configured");
}

TEST_F(BadInput, BadServerUrl) {
  Env e = env;
  e.emplace_back("KITH_SERVER", "https://127.0.0.1:8443");
  expect_refused({"sync"}, 2, "bad_server_url", "is not wss://HOST:PORT", &e);
}

TEST_F(BadInput, UntrustedCertificate) {
  start_kithd();
  Env e = env;
  e.emplace_back("KITH_SERVER", server_url());  // and no KITH_CA: the system store
  expect_refused({"sync"}, 5, "tls_untrusted", "certificate is not trusted", &e);
}

}  // namespace
}  // namespace kith::test
