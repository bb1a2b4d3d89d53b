// The circle of support through the kith binary against a real kithd on 127.0.0.1: an owner
// invites family, a nurse and a provider with the role presets; each joins from their own home
// with `kith join` and sees exactly their sections; changes flow as their grants allow; a revoked
// nurse gets nothing new; the owner's `kith log` lists reads and changes.
#include <algorithm>
#include <set>

#include <chrono>
#include <thread>

#include "cli_fixture.hpp"

namespace kith::test {
namespace {

class Circle : public KithCli {
 protected:
  // The owner's plan with a record in six sections, synced.
  void owner_with_plan() {
    start_kithd();
    owner = online("owner");
    plan = init_with_plan(owner, "Mary", "Mary's plan");
    ok(owner, {"add", plan, "profile", "about_me=Retired teacher"});
    ok(owner, {"add", plan, "outcome", "text=Walk to the shop each week"});
    ok(owner, {"add", plan, "support", "text=Morning visit, 8am"});
    ok(owner, {"add", plan, "activity", "text=Visit by owner"});
    ok(owner, {"add", plan, "risk", "text=Falls on the stairs"});
    health = trimmed(ok(owner, {"add", plan, "health", "text=Metformin 500 mg"}).out);
    ok(owner, {"sync"});
  }

  // Invites a new person with `role`; they init their own home and join. Returns their env.
  Env invite_and_join(const std::string& who, const std::string& role) {
    auto inv = ok(owner, {"--json", "invite", plan, "--role", role}).json();
    EXPECT_EQ(inv["sent"], true) << inv.dump();
    const Env env = online(who);
    ok(env, {"init", "--name", who});
    auto joined = ok(env, {"--json", "join", inv["code"].get<std::string>(), "--title", "Mary"});
    EXPECT_EQ(joined.json()["plan"], plan) << joined.describe();
    return env;
  }

  std::set<std::string> sections_seen(const Env& env) const {
    std::set<std::string> out;
    auto j = kith(env, {"--json", "list", plan}).json();
    for (const auto& r : j["records"]) out.insert(r["section"].get<std::string>());
    return out;
  }

  std::vector<std::string> texts(const Env& env, const std::string& section) const {
    std::vector<std::string> out;
    auto j = kith(env, {"--json", "list", plan, "--section", section}).json();
    for (const auto& r : j["records"]) {
      const auto& f = r["fields"];
      out.push_back(f.contains("text") ? f["text"].get<std::string>() : "");
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  std::string account(const Env& env) const {
    return kith(env, {"--json", "whoami"}).json()["account"].get<std::string>();
  }

  Env owner;
  std::string plan, health;
};

TEST_F(Circle, FourPeopleEachSeeExactlyTheirSections) {
  owner_with_plan();
  const Env family = invite_and_join("family", "family");
  const Env nurse = invite_and_join("nurse", "nurse");
  const Env provider = invite_and_join("provider", "provider");

  EXPECT_EQ(sections_seen(family),
            (std::set<std::string>{"profile", "outcomes", "support", "activity"}));
  EXPECT_EQ(sections_seen(nurse),
            (std::set<std::string>{"profile", "risk", "support", "health", "activity"}));
  EXPECT_EQ(sections_seen(provider),
            (std::set<std::string>{"profile", "support", "risk", "outcomes", "activity"}));
  // `show` reads the same: the family's care plan has no health in it.
  auto shown = ok(family, {"show", "Mary"}).out;
  EXPECT_EQ(shown.find("Metformin"), std::string::npos) << shown;
  EXPECT_NE(shown.find("Walk to the shop"), std::string::npos) << shown;

  // The provider's visit record reaches the family.
  ok(provider, {"add", "Mary", "activity", "text=Visit by Ana: helped with lunch"});
  ok(provider, {"sync"});
  ok(family, {"sync"});
  EXPECT_EQ(texts(family, "activity"),
            (std::vector<std::string>{"Visit by Ana: helped with lunch", "Visit by owner"}));

  // The nurse changes health; the owner sees it, the family does not.
  ok(nurse, {"set", "Mary", health.substr(0, 8), "text=Metformin 1 g"});
  ok(nurse, {"sync"});
  ok(owner, {"sync"});
  ok(family, {"sync"});
  EXPECT_EQ(texts(owner, "health"), (std::vector<std::string>{"Metformin 1 g"}));
  EXPECT_TRUE(texts(family, "health").empty());

  // `kith members` on the owner names each preset.
  auto members = ok(owner, {"--json", "members", plan}).json();
  std::multiset<std::string> roles;
  for (const auto& m : members["members"]) roles.insert(m["role"].get<std::string>());
  EXPECT_EQ(roles, (std::multiset<std::string>{"owner", "family", "nurse", "provider"}))
      << members.dump();
}

TEST_F(Circle, JoinPrintsGrantsAndTheInvitersSafetyNumber) {
  owner_with_plan();
  auto inv = ok(owner, {"invite", plan, "--role", "provider", "--grant", "notes:append"});
  EXPECT_NE(inv.out.find("can read outcomes, profile, risk, support"), std::string::npos)
      << inv.out;
  EXPECT_NE(inv.out.find("works now, even while this device is offline"), std::string::npos);
  EXPECT_EQ(inv.out.find("\x1b["), std::string::npos) << "no QR code unless a terminal or --qr";
  const auto code_at = inv.out.find("KITH-");
  ASSERT_NE(code_at, std::string::npos) << inv.out;
  const std::string code = inv.out.substr(code_at, inv.out.find('\n', code_at) - code_at);

  const Env ana = online("ana");
  ok(ana, {"init", "--name", "Ana"});
  auto joined = ok(ana, {"join", code});
  EXPECT_NE(joined.out.find("Joined \"Plan " + plan.substr(0, 8)), std::string::npos) << joined.out;
  EXPECT_NE(joined.out.find("can read and add to activity, names, notes"), std::string::npos)
      << joined.out;
  // The owner's half, as the owner's `kith whoami` shows it.
  const std::string half = ok(owner, {"--json", "whoami"}).json()["safety_number"];
  EXPECT_NE(joined.out.find(half), std::string::npos) << joined.out;

  // The owner's members shows the safety number both see, and --verify records the check.
  ok(owner, {"sync"});
  const std::string ana_id = account(ana);
  auto before = ok(owner, {"--json", "members", plan}).json();
  auto ana_of = [&](const nlohmann::json& j) {
    for (const auto& m : j["members"]) {
      if (m["account"] == ana_id) return m;
    }
    return nlohmann::json();
  };
  EXPECT_EQ(ana_of(before)["role"], "custom") << before.dump();
  EXPECT_EQ(ana_of(before)["verified"], false);
  auto theirs = ok(ana, {"--json", "members", "Plan " + plan.substr(0, 8)}).json();
  for (const auto& m : theirs["members"]) {
    if (m["owner"] == true) {
      EXPECT_EQ(m["safety_number"], ana_of(before)["safety_number"]);
    }
  }
  ok(owner, {"members", plan, "--verify", ana_id.substr(0, 10), "--yes"});
  EXPECT_EQ(ana_of(ok(owner, {"--json", "members", plan}).json())["verified"], true);
}

TEST_F(Circle, RevokedNurseGetsNothingNew) {
  owner_with_plan();
  const Env nurse = invite_and_join("nurse", "nurse");
  ASSERT_EQ(texts(nurse, "health"), (std::vector<std::string>{"Metformin 500 mg"}));
  const std::string nurse_id = account(nurse);

  auto r = ok(owner, {"revoke", plan, nurse_id.substr(0, 8), "--yes"});
  EXPECT_NE(r.out.find("keep what they had already synced"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(
                "Replaced the keys of: activity, health, names, notes, profile, risk, support"),
            std::string::npos)
      << r.out;
  ok(owner, {"add", plan, "health", "text=Insulin started"});
  ok(owner, {"add", plan, "support", "text=Evening visit too"});
  ok(owner, {"sync"});

  // The nurse's sync says their access has ended, and nothing new arrives.
  auto s = kith(nurse, {"--json", "sync"});
  EXPECT_EQ(s.code, 1) << s.describe();
  EXPECT_EQ(s.json()["error"]["code"], "access_ended") << s.out;
  auto said = kith(nurse, {"sync"});
  EXPECT_NE(said.err.find("Mary: your access has ended; what this device synced before stays "
                          "here"),
            std::string::npos)
      << said.describe();
  EXPECT_EQ(texts(nurse, "health"), (std::vector<std::string>{"Metformin 500 mg"}));
  EXPECT_EQ(texts(nurse, "support"), (std::vector<std::string>{"Morning visit, 8am"}));
  auto members = ok(owner, {"--json", "members", plan}).json();
  for (const auto& m : members["members"]) {
    if (m["account"] == nurse_id) {
      EXPECT_TRUE(m["grants"].empty()) << m.dump();
    }
  }
}

TEST_F(Circle, AMemberWhoseEveryGrantExpiredIsToldSo) {
  owner_with_plan();
  const Env family = invite_and_join("family", "family");
  ok(owner, {"sync"});
  const std::string member = account(family).substr(0, 8);
  for (const char* section : {"profile", "outcomes", "support", "activity", "circle", "notes"}) {
    ok(owner, {"grant", plan, member, std::string(section) + ":read", "--expires", "3s"});
  }
  std::this_thread::sleep_for(std::chrono::seconds(4));
  auto s = kith(family, {"--json", "sync"});
  EXPECT_EQ(s.code, 1) << s.describe();
  EXPECT_EQ(s.json()["error"]["code"], "access_expired") << s.out;
  auto said = kith(family, {"sync"});
  EXPECT_NE(said.err.find("Mary: your access has expired"), std::string::npos) << said.describe();
}

TEST_F(Circle, OwnersLogListsReadsAndChanges) {
  owner_with_plan();
  const Env family = invite_and_join("family", "family");
  ok(family, {"add", "Mary", "note", "text=Brought flowers"});
  ok(family, {"sync"});
  auto j = ok(owner, {"--json", "log", plan}).json();
  const std::string fam = "family";  // the name they share with the circle
  bool created = false, fam_read = false, fam_joined = false, fam_changed = false;
  std::uint64_t last = 0;
  for (const auto& e : j["events"]) {
    EXPECT_GE(e["at_ms"].get<std::uint64_t>(), last) << "in order";
    last = e["at_ms"];
    const std::string text = e["text"], who = e["who"], kind = e["kind"];
    if (who == "you" && text == "created the plan") created = true;
    if (who == fam && kind == "read") fam_read = true;
    if (who == fam && text.find("joined") != std::string::npos) {
      fam_joined = true;
      EXPECT_EQ(kind, "membership") << "as libkith names it";
    }
    if (who == fam && kind == "change" && e["section"] == "notes") fam_changed = true;
  }
  EXPECT_TRUE(created && fam_read && fam_joined && fam_changed) << j.dump(1);
  // The text form: a time in ISO UTC and who, one event a line.
  auto text = ok(owner, {"log", "Mary's plan"}).out;
  EXPECT_NE(text.find("Z  " + fam), std::string::npos) << text;
  // Only the owner may read it.
  auto refused = kith(family, {"--json", "log", "Mary"});
  EXPECT_EQ(refused.code, 1) << refused.describe();
  EXPECT_EQ(refused.json()["error"]["code"], "not_owner");
}

TEST_F(Circle, InviteWhileTheServerIsDownGoesOutAtTheNextSync) {
  Env off = offline("owner");
  off.emplace_back("KITH_SERVER", "wss://127.0.0.1:" + std::to_string(unused_port()));
  plan = init_with_plan(off, "Mary", "Mary's plan");
  auto inv = ok(off, {"--json", "invite", plan, "--role", "family"}).json();
  EXPECT_EQ(inv["sent"], false) << inv.dump();
  auto text = ok(off, {"invite", plan, "--role", "family"});
  EXPECT_NE(text.out.find("goes out at the next `kith sync` and won't work until then"),
            std::string::npos)
      << text.out;

  start_kithd();
  owner = online("owner");
  ok(owner, {"sync"});
  const Env family = online("family");
  ok(family, {"init", "--name", "Fay"});
  ok(family, {"join", inv["code"].get<std::string>()});
}

}  // namespace
}  // namespace kith::test
