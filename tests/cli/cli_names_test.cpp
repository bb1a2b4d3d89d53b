// Names for the members of a plan through the kith binary against a real kithd: an invitation
// made with --name names whoever accepts it, `kith name` names anyone else, and the name then
// stands for the member in members, show, log, grant and revoke, on this device only: it is in
// neither the server's files nor, unsealed, in the device's own store.
#include <filesystem>
#include <fstream>
#include <iterator>

#include "cli_fixture.hpp"

namespace kith::test {
namespace {

bool file_holds(const std::filesystem::path& p, const std::string& text) {
  std::ifstream in(p, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return bytes.find(text) != std::string::npos;
}

// Whether any file under `dir` holds `text`.
bool any_file_holds(const std::filesystem::path& dir, const std::string& text) {
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && file_holds(e.path(), text)) return true;
  }
  return false;
}

class Names : public KithCli {
 protected:
  void SetUp() override {
    start_kithd();
    owner = online("owner");
    plan = init_with_plan(owner, "Mary", "Mary's plan");
    ok(owner, {"add", plan, "note", "text=Prefers tea"});
  }
  // Someone joins with an invitation of `role`; returns their home and account id.
  std::pair<Env, std::string> join(const std::string& who, const std::string& role,
                                   const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args{"--json", "invite", plan, "--role", role};
    args.insert(args.end(), extra.begin(), extra.end());
    auto inv = ok(owner, args).json();
    const Env env = online(who);
    ok(env, {"init", "--name", who});
    ok(env, {"join", inv["code"].get<std::string>(), "--title", "Mary"});
    return {env, ok(env, {"--json", "whoami"}).json()["account"].get<std::string>()};
  }
  nlohmann::json member(const std::string& account) {
    const nlohmann::json all = ok(owner, {"--json", "members", plan}).json();
    for (const auto& m : all["members"]) {
      if (m["account"] == account) return m;
    }
    return nullptr;
  }

  Env owner;
  std::string plan;
};

TEST_F(Names, AnInvitationsNameGoesToWhoeverAcceptsItAndStandsForThem) {
  auto [nurse, nurse_account] = join("nurse", "nurse", {"--name", "Nia (district nurse)"});
  ok(nurse, {"add", plan, "activity", "text=Dressing changed"});
  ok(nurse, {"sync"});
  ok(owner, {"sync"});

  EXPECT_EQ(member(nurse_account)["name"], "Nia (district nurse)");
  EXPECT_NE(ok(owner, {"members", plan}).out.find("Nia (district nurse)  [nurse]"),
            std::string::npos);
  // Authors and the access log by name.
  EXPECT_NE(ok(owner, {"show", plan}).out.find("Nia (district nurse)"), std::string::npos);
  bool named_in_log = false;
  const nlohmann::json log = ok(owner, {"--json", "log", plan}).json();
  for (const auto& e : log["events"]) {
    named_in_log |= e["who"] == "Nia (district nurse)";
  }
  EXPECT_TRUE(named_in_log);
  // The name (any case) is a MEMBER argument.
  ok(owner, {"grant", plan, "nia (DISTRICT nurse)", "budget:read"});
  EXPECT_NE(member(nurse_account)["grants"].dump().find("budget"), std::string::npos);
  ok(owner, {"revoke", plan, "Nia (district nurse)", "--yes"});
  EXPECT_EQ(member(nurse_account)["grants"].size(), 0u);

  // The name never left the owner's device: not on the server, not unsealed in the store.
  EXPECT_FALSE(any_file_holds(kithd->data_dir(), "Nia (district")) << "kithd's data";
  EXPECT_FALSE(file_holds(kithd->log_path(), "Nia (district")) << "kithd's log";
  EXPECT_FALSE(any_file_holds(home("owner"), "Nia (district")) << "the owner's home";
  // The nurse's device knows nothing of it.
  auto seen_by_nurse = ok(nurse, {"--json", "members", plan}).json().dump();
  EXPECT_EQ(seen_by_nurse.find("Nia (district"), std::string::npos) << seen_by_nurse;
}

TEST_F(Names, KithNameNamesAMemberOnThisDeviceOnly) {
  auto [family, family_account] = join("family", "family");
  ok(owner, {"sync"});
  EXPECT_FALSE(member(family_account).contains("name"));
  auto named = ok(owner, {"--json", "name", plan, family_account.substr(0, 8), "Jo"}).json();
  EXPECT_EQ(named["member"], family_account);
  EXPECT_EQ(member(family_account)["name"], "Jo");
  ok(owner, {"grant", plan, "jo", "notes:append"});
  // Renaming replaces; the old name no longer stands for them.
  ok(owner, {"name", plan, "Jo", "Jo (daughter)"});
  EXPECT_EQ(member(family_account)["name"], "Jo (daughter)");
  expect_refusal(owner, {"grant", plan, "Jo", "notes:read"}, 3, "unknown_member",
                 "no member is called 'Jo' here");
}

TEST_F(Names, BadNamesAreRefusedAndChangeNothing) {
  auto [family, family_account] = join("family", "family", {"--name", "Jo"});
  auto [nurse, nurse_account] = join("nurse", "nurse");
  ok(owner, {"sync"});
  const nlohmann::json before = ok(owner, {"--json", "members", plan}).json();
  const std::string nurse_ref = nurse_account.substr(0, 8);
  expect_refusal(owner, {"name", plan, nurse_ref, ""}, 2, "bad_name", "that name is empty");
  expect_refusal(owner, {"name", plan, nurse_ref, "cafe01"}, 2, "bad_name",
                 "would read as an account id");
  expect_refusal(owner, {"name", plan, nurse_ref, std::string(65, 'x')}, 2, "bad_name",
                 "longer than 64 bytes");
  expect_refusal(owner, {"name", plan, nurse_ref, "Ni\ta"}, 2, "bad_name", "control characters");
  expect_refusal(owner, {"name", plan, nurse_ref, "JO"}, 2, "name_taken", "is already called");
  expect_refusal(owner, {"name", plan, "Nobody", "Sam"}, 3, "unknown_member",
                 "no member is called 'Nobody' here");
  expect_refusal(owner, {"invite", plan, "--role", "family", "--name", "beef"}, 2, "bad_name",
                 "would read as an account id");
  EXPECT_EQ(ok(owner, {"--json", "members", plan}).json(), before);
}

}  // namespace
}  // namespace kith::test
