// Names for the members of a plan through the kith binary against a real kithd: an invitation
// made with --name names whoever accepts it, `kith name` names anyone else, and the name then
// stands for the member in members, show, log, grant and revoke, on this device only: it is in
// neither the server's files nor, unsealed, in the device's own store.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

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
  // Account -> name, as `kith members PLAN` shows them on `env`'s device.
  std::map<std::string, std::string> names_seen_by(const Env& env) {
    std::map<std::string, std::string> out;
    const nlohmann::json all = ok(env, {"--json", "members", plan}).json();
    for (const auto& m : all["members"]) {
      if (m.contains("name")) out[m["account"].get<std::string>()] = m["name"];
    }
    return out;
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
  EXPECT_EQ(member(family_account)["name"], "family");  // the name they shared
  auto named = ok(owner, {"--json", "name", plan, family_account.substr(0, 8), "Jo"}).json();
  EXPECT_EQ(named["member"], family_account);
  EXPECT_EQ(member(family_account)["name"], "Jo");
  ok(owner, {"grant", plan, "jo", "notes:append"});
  // Renaming replaces; the old name no longer stands for them.
  ok(owner, {"name", plan, "Jo", "Jo (daughter)"});
  EXPECT_EQ(member(family_account)["name"], "Jo (daughter)");
  expect_refusal(owner, {"grant", plan, "Jo", "notes:read"}, 3, "unknown_member",
                 "no member is called 'Jo' here");
  // The family member still sees only the name they shared.
  ok(family, {"sync"});
  const nlohmann::json theirs = ok(family, {"--json", "members", plan}).json();
  EXPECT_EQ(theirs.dump().find("Jo (daughter)"), std::string::npos);
}

TEST_F(Names, BadNamesAreRefusedAndChangeNothing) {
  auto [family, family_account] = join("family", "family", {"--name", "Jo"});
  auto [nurse, nurse_account] = join("nurse", "nurse");
  ok(owner, {"sync"});
  const nlohmann::json before = ok(owner, {"--json", "members", plan}).json();
  const std::string nurse_ref = nurse_account.substr(0, 8);
  expect_refusal(owner, {"name", plan, nurse_ref, ""}, 2, "bad_name", "that name is empty");
  expect_refusal(owner, {"name", plan, nurse_ref, "Nia\xe2\x80\xae" "evil"}, 2, "bad_name",
                 "direction-changing characters");
  expect_refusal(owner, {"name", plan, nurse_ref, std::string(65, 'x')}, 2, "bad_name",
                 "longer than 64 bytes");
  expect_refusal(owner, {"name", plan, nurse_ref, "Ni\ta"}, 2, "bad_name", "control characters");
  expect_refusal(owner, {"name", plan, nurse_ref, "JO"}, 2, "name_taken", "is already called");
  expect_refusal(owner, {"name", plan, "Nobody", "Sam"}, 3, "unknown_member",
                 "no member is called 'Nobody' here");
  expect_refusal(owner, {"invite", plan, "--role", "family", "--name", "Jo\x1b[2J"}, 2,
                 "bad_name", "control characters");
  EXPECT_EQ(ok(owner, {"--json", "members", plan}).json(), before);
}

// Names members share with the circle: each person's `kith init --name`, sealed in the plan's
// `names` section, seen by every member (a nurse who may not read the circle too), never by kithd.
TEST_F(Names, EachMemberSharesTheirNameSealedWithTheWholeCircle) {
  const std::string canary = "Okonkwo-Canary";
  auto [nurse, nurse_account] = join("Nia " + canary, "nurse");
  auto [family, family_account] = join("Jo", "family");
  ok(nurse, {"add", plan, "activity", "text=Dressing changed"});
  ok(nurse, {"sync"});
  ok(owner, {"sync"});
  ok(family, {"sync"});
  ok(nurse, {"sync"});

  const std::string owner_account =
      ok(owner, {"--json", "whoami"}).json()["account"].get<std::string>();
  const std::map<std::string, std::string> everyone = {
      {owner_account, "Mary"}, {nurse_account, "Nia " + canary}, {family_account, "Jo"}};
  EXPECT_EQ(names_seen_by(family), everyone);
  EXPECT_EQ(names_seen_by(nurse), everyone);  // the nurse may not read the circle section
  EXPECT_EQ(names_seen_by(owner), everyone);

  // Authors by name in the family's plan, which shows no "names" section of its own.
  const std::string shown = ok(family, {"show", plan}).out;
  EXPECT_NE(shown.find("(by Nia " + canary + ")"), std::string::npos) << shown;
  EXPECT_EQ(shown.find("names"), std::string::npos) << shown;
  EXPECT_EQ(ok(owner, {"--json", "list", plan}).json()["records"].size(), 2u);  // tea; dressing
  EXPECT_EQ(ok(owner, {"--json", "list", plan, "--section", "names"}).json()["records"].size(),
            3u);
  // A shared name stands for the member; a name given on this device comes first.
  ok(owner, {"grant", plan, "nia " + canary, "budget:read"});
  ok(family, {"name", plan, "Nia " + canary, "Nurse Nia"});
  EXPECT_EQ(names_seen_by(family).at(nurse_account), "Nurse Nia");
  EXPECT_EQ(names_seen_by(owner).at(nurse_account), "Nia " + canary);

  // The nurse changes the name she shares; the circle sees it after a sync.
  auto renamed = ok(nurse, {"--json", "name", plan, nurse_account, "Nia O."}).json();
  EXPECT_EQ(renamed["shared"], true);
  ok(nurse, {"sync"});
  ok(owner, {"sync"});
  EXPECT_EQ(names_seen_by(owner).at(nurse_account), "Nia O.");

  // Sealed: the names are in none of kithd's files nor its log.
  for (const std::string& n : {canary, std::string("Nia O.")}) {
    EXPECT_FALSE(any_file_holds(kithd->data_dir(), n)) << "kithd's data: " << n;
    EXPECT_FALSE(file_holds(kithd->log_path(), n)) << "kithd's log: " << n;
  }
}

TEST_F(Names, AMemberCannotPassForAnotherByTakingTheirName) {
  auto [family, family_account] = join("Jo", "family");
  auto [other, other_account] = join("Mary", "provider");  // the owner is Mary too
  ok(owner, {"sync"});
  ok(family, {"sync"});
  const std::string owner_account =
      ok(owner, {"--json", "whoami"}).json()["account"].get<std::string>();
  const auto names = names_seen_by(family);
  EXPECT_EQ(names.at(owner_account), "Mary (" + owner_account.substr(0, 8) + ")");
  EXPECT_EQ(names.at(other_account), "Mary (" + other_account.substr(0, 8) + ")");
  // Typed, the name is ambiguous; the name with its id's start, or the id, is not.
  expect_refusal(owner, {"grant", plan, "Mary", "notes:read"}, 3, "ambiguous_member",
                 "stands for more than one member");
  ok(owner, {"grant", plan, "mary (" + other_account.substr(0, 8) + ")", "notes:read"});
  // A name shaped like someone's account id does not capture that id.
  auto [third, third_account] = join(family_account.substr(0, 8), "provider");
  ok(owner, {"sync"});
  expect_refusal(owner, {"grant", plan, family_account.substr(0, 8), "notes:read"}, 3,
                 "ambiguous_member", "stands for more than one member");
  ok(owner, {"grant", plan, family_account, "notes:append"});
}

TEST_F(Names, AMemberInvitedBeforeNamesWereSharedIsToldHowToShareTheirs) {
  // An invitation from a social worker (who manages the circle, not the names) carries no
  // names grant: the member shares nothing, and asking to is refused with what to do.
  auto [social, social_account] = join("Sam", "social-worker");
  ok(social, {"sync"});
  auto inv = ok(social, {"--json", "invite", plan, "--role", "custom", "--grant", "circle:read"}).json();
  const Env friend_env = online("friend");
  ok(friend_env, {"init", "--name", "Lee"});
  ok(friend_env, {"join", inv["code"].get<std::string>(), "--title", "Mary"});
  const std::string friend_account =
      ok(friend_env, {"--json", "whoami"}).json()["account"].get<std::string>();
  ok(owner, {"sync"});
  EXPECT_FALSE(member(friend_account).contains("name"));
  expect_refusal(friend_env, {"name", plan, friend_account, "Lee"}, 1, "forbidden",
                 "names:append");
  // Once granted, their next sync shares it.
  ok(owner, {"grant", plan, friend_account, "names:append"});
  ok(friend_env, {"sync"});
  ok(owner, {"sync"});
  EXPECT_EQ(member(friend_account)["name"], "Lee");
}

// A member's text reaches other people's terminals: escape sequences and direction overrides in
// it print as U+FFFD, in every text view, while --json keeps the value as written.
TEST_F(Names, TextFromAnotherMemberCannotRewriteTheTerminal) {
  auto [family, family_account] = join("Jo", "family");
  const std::string nasty = "Fine\x1b[2J\x1b]0;owned\x07 today\xe2\x80\xae" "eno";
  auto added = ok(family, {"--json", "add", plan, "note", "text=" + nasty}).json();
  ok(family, {"sync"});
  ok(owner, {"sync"});
  const std::string id = added["id"].get<std::string>();
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"show", plan}, {"list", plan}, {"show", plan, id}}) {
    const std::string out = ok(owner, args).out;
    EXPECT_EQ(out.find('\x1b'), std::string::npos) << args[0];
    EXPECT_EQ(out.find('\x07'), std::string::npos) << args[0];
    EXPECT_EQ(out.find("\xe2\x80\xae"), std::string::npos) << args[0];
    EXPECT_NE(out.find("Fine\xef\xbf\xbd[2J"), std::string::npos) << out;
  }
  const nlohmann::json shown = ok(owner, {"--json", "show", plan, id}).json();
  EXPECT_EQ(shown["record"]["fields"]["text"], nasty);
}

TEST_F(Names, RevokingAMembersLastSectionEndsTheirNamesGrantToo) {
  auto [family, family_account] = join("Jo", "family");
  ok(owner, {"sync"});
  const std::vector<std::string> sections = {"activity", "circle",  "notes",
                                             "outcomes", "profile", "support"};
  std::string last;
  for (const auto& section : sections) {
    last = ok(owner, {"revoke", plan, family_account, section, "--yes"}).out;
  }
  // The last revocation also replaced the names key; no grant is left.
  EXPECT_NE(last.find("Replaced the keys of: support, names"), std::string::npos) << last;
  EXPECT_TRUE(member(family_account)["grants"].empty()) << member(family_account).dump();
}

}  // namespace
}  // namespace kith::test
