// Plan discovery through a real kithd over TLS: ListPlans tells an account's devices which plans
// the account is in (owner or unrevoked member), a device restored from the recovery key
// included, and tells no one anything about plans they are not in.
#include <gtest/gtest.h>

#include <thread>

#include "kith/sync/sqlite/database.hpp"
#include "kithd_circle_fixture.hpp"

namespace kith::test {
namespace {

// One plan as the server listed it, for comparisons that print well.
struct Listed {
  std::string plan;  // hex
  bool owner = false;
  std::string owner_account;  // hex
  std::uint64_t expires_at_ms = 0;
  bool expired = false;
  friend bool operator==(const Listed&, const Listed&) = default;
  friend std::ostream& operator<<(std::ostream& os, const Listed& l) {
    return os << l.plan.substr(0, 8) << (l.owner ? " owner" : " member") << " of "
              << l.owner_account.substr(0, 8) << " expires " << l.expires_at_ms
              << (l.expired ? " (expired)" : "");
  }
};

std::string hex_of(const std::string& bytes) { return crypto::to_hex(crypto::as_bytes(bytes)); }

kith::v1::ServerMessage list_page(TestDevice& d, const std::string& after = {},
                                  std::uint32_t limit = 0) {
  return d.request(message_with(d.next_request++, [&](kith::v1::ClientMessage& m) {
    m.mutable_list_plans()->set_after_plan_id(after);
    m.mutable_list_plans()->set_limit(limit);
  }));
}

// Every page, in order; fails the test on an error.
std::vector<Listed> list_all(TestDevice& d, std::uint32_t limit = 0) {
  std::vector<Listed> out;
  std::string after;
  for (int page = 0; page < 100; ++page) {
    const auto reply = list_page(d, after, limit);
    EXPECT_TRUE(reply.has_plan_list()) << reply.DebugString();
    if (!reply.has_plan_list()) return out;
    for (const auto& p : reply.plan_list().plans()) {
      out.push_back({hex_of(p.plan_id()), p.owner(), hex_of(p.owner_account_id()),
                     p.expires_at_ms(), p.expired()});
      after = p.plan_id();
    }
    if (!reply.plan_list().more()) return out;
  }
  ADD_FAILURE() << "more than 100 pages";
  return out;
}

Listed owned(const sync::PlanId& plan, const TestDevice& owner) {
  return {plan.hex(), true, owner.account().hex(), 0, false};
}
Listed joined(const sync::PlanId& plan, const TestDevice& owner) {
  return {plan.hex(), false, owner.account().hex(), 0, false};
}

// Takes kithd's database back to schema 2, as a kithd from before plan discovery left it: no
// account -> plans index (3), op ids still in the ops table's unique index (4, 6), and chain
// tips still in its ops_by_chain index (5).
void rewind_to_schema_2(sync::sqlite::Database& db) {
  db.exec("CREATE INDEX ops_by_chain ON ops (plan_id, author, section, author_seq, seq)");
  db.exec("DROP TABLE chain_tips");
  db.exec("CREATE UNIQUE INDEX ops_by_op_id ON ops (plan_id, op_id)");
  db.exec("DROP TABLE op_ids");
  db.exec("DROP TABLE op_id_marks");
  db.exec("DROP TABLE account_plans");
  db.exec("PRAGMA user_version = 2");
}

std::vector<Listed> sorted(std::vector<Listed> v) {
  std::sort(v.begin(), v.end(), [](const Listed& a, const Listed& b) { return a.plan < b.plan; });
  return v;
}

class KithdDiscoveryTest : public KithdCircleTest {
 protected:
  // The owner's second plan, and a friend's plan the owner joined as family.
  void owner_in_three_plans() {
    owner_with_full_plan();
    second = owner->engine->create_plan("Mary's garden plan");
    owner->engine->add_record(second, "note", {{"text", "Roses need pruning"}});
    ASSERT_TRUE(owner->sync(second).empty());
    friend_ = std::make_unique<TestDevice>(dir.path(), "friend");
    friend_->connect(*server);
    theirs = friend_->engine->create_plan("Joan's plan");
    friend_->engine->add_record(theirs, "note", {{"text", "Joan likes crosswords"}});
    ASSERT_TRUE(friend_->sync(theirs).empty());
    const InviteCode code =
        friend_->engine->invite(theirs, sync::role_grants(Role::kFamily), sync_now() + kWeek);
    ASSERT_TRUE(friend_->sync(theirs).empty());
    ASSERT_TRUE(owner->join(code, "Joan's plan").empty());
    ASSERT_TRUE(friend_->sync(theirs).empty());  // the friend learns of the join
  }

  std::vector<Listed> owners_plans() {
    return sorted({owned(plan, *owner), owned(second, *owner), joined(theirs, *friend_)});
  }

  sync::PlanId second;
  sync::PlanId theirs;
  std::unique_ptr<TestDevice> friend_;
};

TEST_F(KithdDiscoveryTest, AnAccountSeesThePlansItOwnsAndThoseItJoined) {
  owner_in_three_plans();
  EXPECT_EQ(list_all(*owner), owners_plans());
  EXPECT_EQ(list_all(*friend_), std::vector<Listed>{owned(theirs, *friend_)});

  // A device restored from the recovery key, in no plan's log yet, sees the same list: the
  // account is what is asked about, not the device.
  TestDevice phone(dir.path(), "owner-new-phone", &owner->secrets().identity);
  phone.connect(*server);
  EXPECT_EQ(list_all(phone), owners_plans());
}

TEST_F(KithdDiscoveryTest, AnotherAccountNeverSeesPlansItIsNotIn) {
  owner_in_three_plans();
  TestDevice stranger(dir.path(), "stranger");
  stranger.connect(*server);
  const auto reply = list_page(stranger);
  ASSERT_TRUE(reply.has_plan_list()) << reply.DebugString();
  EXPECT_EQ(reply.plan_list().plans_size(), 0);
  EXPECT_FALSE(reply.plan_list().more());
  // Paging from any plan id shows nothing either.
  EXPECT_EQ(list_page(stranger, str(plan.bytes())).plan_list().plans_size(), 0);
}

TEST_F(KithdDiscoveryTest, ARevokedMemberNoLongerSeesThePlan) {
  owner_with_full_plan();
  auto nurse = invite_and_join("nurse", Role::kNurse);
  ASSERT_TRUE(owner->sync(plan).empty());
  EXPECT_EQ(list_all(*nurse), std::vector<Listed>{joined(plan, *owner)});

  // Revoking one section leaves the others: still a member.
  owner->engine->revoke(plan, nurse->account(), Section::parse("health"));
  ASSERT_TRUE(owner->sync(plan).empty());
  EXPECT_EQ(list_all(*nurse), std::vector<Listed>{joined(plan, *owner)});

  owner->engine->revoke(plan, nurse->account(), std::nullopt);
  ASSERT_TRUE(owner->sync(plan).empty());
  EXPECT_TRUE(list_all(*nurse).empty());
  EXPECT_EQ(list_all(*owner), std::vector<Listed>{owned(plan, *owner)});
}

TEST_F(KithdDiscoveryTest, AnExpiredMemberIsListedAsExpired) {
  owner_with_full_plan();
  const std::uint64_t until = wall_ms() + 3000;
  const InviteCode code = owner->engine->invite(
      plan, {GrantSpec{Section::parse("health"), Permission::kRead, until}}, wall_ms() + kWeek);
  ASSERT_TRUE(owner->sync(plan).empty());
  TestDevice nurse(dir.path(), "nurse");
  nurse.connect(*server);
  ASSERT_TRUE(nurse.join(code).empty());
  Listed expect{plan.hex(), false, owner->account().hex(), until, false};
  const auto before_expiry = list_all(nurse);
  // On a slow machine the grant may have run out already; then the next check covers it.
  if (wall_ms() < until) {
    EXPECT_EQ(before_expiry, std::vector<Listed>{expect});
  }

  while (wall_ms() < until + 200) std::this_thread::sleep_for(50ms);
  expect.expired = true;
  EXPECT_EQ(list_all(nurse), std::vector<Listed>{expect});
}

TEST_F(KithdDiscoveryTest, PagesFollowPlanIdOrderWithoutGapsOrRepeats) {
  owner_in_three_plans();
  // One plan per page, then two: the same list either way.
  EXPECT_EQ(list_all(*owner, 1), owners_plans());
  EXPECT_EQ(list_all(*owner, 2), owners_plans());
  const auto first = list_page(*owner, {}, 2);
  ASSERT_TRUE(first.has_plan_list());
  EXPECT_EQ(first.plan_list().plans_size(), 2);
  EXPECT_TRUE(first.plan_list().more());
  const auto last = list_page(*owner, first.plan_list().plans(1).plan_id(), 2);
  EXPECT_EQ(last.plan_list().plans_size(), 1);
  EXPECT_FALSE(last.plan_list().more());
}

TEST_F(KithdDiscoveryTest, UnauthenticatedOrMalformedRequestsAreRefusedWithTheirCodes) {
  owner_with_plan();
  auto conn = server->connect();
  kith::v1::ClientMessage m;
  m.set_request_id(7);
  m.mutable_list_plans();
  conn->send(m);
  auto reply = conn->receive(10s);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->request_id(), 7u);
  EXPECT_EQ(code_of(*reply), kith::v1::UNAUTHENTICATED);

  // Authenticated, but a plan id of the wrong size, or a page over the limit.
  reply = list_page(*owner, std::string(15, 'x'));
  EXPECT_EQ(code_of(*reply), kith::v1::MALFORMED);
  EXPECT_NE(reply->error().message().find("list_plans.after_plan_id"), std::string::npos);
  reply = list_page(*owner, {}, 1001);
  EXPECT_EQ(code_of(*reply), kith::v1::TOO_LARGE);
  // The connection goes on.
  EXPECT_EQ(list_all(*owner), std::vector<Listed>{owned(plan, *owner)});
}

TEST_F(KithdDiscoveryTest, AnUpgradedDatabaseListsThePlansItAlreadyHeld) {
  owner_in_three_plans();
  auto nurse = invite_and_join("nurse", Role::kNurse);
  ASSERT_TRUE(owner->sync(plan).empty());  // the owner learns of the join
  owner->engine->revoke(plan, nurse->account(), std::nullopt);
  ASSERT_TRUE(owner->sync(plan).empty());
  const auto before = list_all(*owner);
  ASSERT_EQ(before, owners_plans());

  // The database as a kithd of schema 2 left it: no index.
  owner->conn->close();
  friend_->conn->close();
  nurse->conn->close();
  ASSERT_TRUE(server->stop().clean()) << server->log_tail();
  {
    sync::sqlite::Database db(server->data_dir() / "kithd.db");
    rewind_to_schema_2(db);
  }
  server->start();
  owner->connect(*server);
  friend_->connect(*server);
  nurse->connect(*server);
  EXPECT_EQ(list_all(*owner), before);
  EXPECT_EQ(list_all(*friend_), std::vector<Listed>{owned(theirs, *friend_)});
  EXPECT_TRUE(list_all(*nurse).empty());
}

TEST_F(KithdDiscoveryTest, AnUpgradeIndexesADamagedLogAsFarAsItVerifies) {
  owner_in_three_plans();
  owner->conn->close();
  friend_->conn->close();
  ASSERT_TRUE(server->stop().clean()) << server->log_tail();
  {
    // Schema 2, and the friend's plan's log altered from entry 2 (the owner's join) on: one
    // signature byte changed.
    sync::sqlite::Database db(server->data_dir() / "kithd.db");
    rewind_to_schema_2(db);
    auto q = db.query(
        "UPDATE membership SET entry = substr(entry, 1, length(entry) - 1) || "
        "CASE WHEN substr(entry, -1) = X'00' THEN X'01' ELSE X'00' END "
        "WHERE plan_id = ?1 AND idx >= 2");
    q->bind(1, theirs.bytes());
    q->run();
    ASSERT_GT(db.changes(), 0);
  }
  // kithd starts; the owner's join no longer verifies, so the owner is not listed in that plan,
  // while its creator still is.
  server->start();
  owner->connect(*server);
  friend_->connect(*server);
  EXPECT_EQ(list_all(*owner), sorted({owned(plan, *owner), owned(second, *owner)}));
  EXPECT_EQ(list_all(*friend_), std::vector<Listed>{owned(theirs, *friend_)});
}

}  // namespace
}  // namespace kith::test
