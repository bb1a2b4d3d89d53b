// Data written straight into kithd's database, as a dishonest operator (or an attacker on the
// server's disk) would: an envelope, an op with a head, a membership entry. kithd serves what it
// stored without re-checking envelopes and ops, so it is every client's own checks that must
// refuse them, with a clear error, and keep what it had. A forged membership entry kithd refuses
// itself, on loading the plan.
#include <gtest/gtest.h>

#include <algorithm>

#include "kith/crypto/envelope.hpp"
#include "kith/sync/invite.hpp"
#include "kith/sync/key_ring.hpp"
#include "kith/sync/roles.hpp"
#include "kith/sync/section_digest.hpp"
#include "kith/sync/sqlite/database.hpp"
#include "kith/sync/sqlite/statement.hpp"
#include "kithd_test_fixture.hpp"
#include "support/plan_steps.hpp"

namespace kith::test {
namespace {

using sync::Section;
using sync::SyncErrorCode;


std::vector<SyncErrorCode> problem_codes(const TestDevice& d) {
  std::vector<SyncErrorCode> out;
  for (const auto& e : d.events) {
    if (e.kind == sync::SyncEvent::Kind::kProblem) out.push_back(e.code);
  }
  return out;
}

bool has_problem(const TestDevice& d, SyncErrorCode code) {
  auto all = problem_codes(d);
  return std::find(all.begin(), all.end(), code) != all.end();
}

class KithdInjectedTest : public KithdTest {
 protected:
  // A data directory of the test's own, which outlives each kithd process started on it.
  KithdOptions options() override {
    KithdOptions o;
    o.data_dir = dir.path() / "kithd-data";
    return o;
  }

  // The owner's plan (a profile record), and a family member who has synced it.
  void SetUp() override {
    KithdTest::SetUp();
    if (IsSkipped()) return;
    owner_with_plan();
    auto code = owner->engine->invite(plan, sync::role_grants(sync::Role::kFamily),
                                      wall_ms() + 3600 * 1000);
    ASSERT_TRUE(owner->sync(plan).empty());
    family = std::make_unique<TestDevice>(dir.path(), "family");
    family->connect(*server);
    ASSERT_TRUE(family->join(code, "Mary's plan").empty());
    ASSERT_EQ(family->engine->state(plan).records(Section::parse("profile")).size(), 1u);
    ASSERT_TRUE(owner->sync(plan).empty());
  }

  // Stops kithd, runs `change` on its database, starts it again on the same data.
  void tamper(const std::function<void(sync::sqlite::Database&)>& change) {
    const auto data = server->data_dir();
    // Closed first, so that kithd's drain has no session to wait for.
    owner->conn->close();
    family->conn->close();
    server->stop();
    {
      sync::sqlite::Database db(data / "kithd.db");
      change(db);
    }
    server.reset();
    server = std::make_unique<KithdProcess>(options());
    owner->connect(*server);
    family->connect(*server);
  }

  std::unique_ptr<TestDevice> family;
};

TEST_F(KithdInjectedTest, AnEnvelopeNoManagerSignedIsRefusedAndTheKeyKept) {
  const auto before = family->store->section_key(plan, "profile", 1);
  ASSERT_TRUE(before.has_value());
  // A key of the server's own for profile, sealed to the family's device, signed by a key
  // that belongs to no one in the plan.
  const auto box = family->engine->identity().certificate.device_encryption();
  const auto forged = crypto::Envelope::create(crypto::SectionKey::generate(),
                                               sync::section_key_context(plan, Section::parse("profile"), 1),
                                               box, crypto::SigningKey::generate())
                          .serialize();
  tamper([&](sync::sqlite::Database& db) {
    auto q = db.query(
        "INSERT INTO envelopes (plan_id, recipient, section, epoch, envelope) "
        "VALUES (?1, ?2, 'profile', 1, ?3)");
    q->bind(1, plan.bytes());
    q->bind(2, box.bytes());
    q->bind(3, crypto::ByteView(forged));
    q->run();
  });
  family->events.clear();
  family->sync(plan);
  EXPECT_TRUE(has_problem(*family, SyncErrorCode::kBadSignature))
      << ::testing::PrintToString(problem_codes(*family).size());
  auto after = family->store->section_key(plan, "profile", 1);
  ASSERT_TRUE(after.has_value());
  EXPECT_TRUE(*after == *before);  // the genuine key is kept
  EXPECT_EQ(family->engine->state(plan).records(Section::parse("profile")).size(), 1u);
}

TEST_F(KithdInjectedTest, AnOpInTheOwnersNameWithAHeadTheOwnerDidNotSignIsRefused) {
  // The next op of the owner's profile chain, made up by the server, with a head over it signed
  // by a key of the server's.
  std::optional<sync::StoredOp> last;
  for (const auto& s : owner->store->ops(plan)) {
    if (s.section == "profile" && s.author == owner->device()) last = s;
  }
  ASSERT_TRUE(last.has_value());
  const sync::OpHash prev = sync::op_hash(last->header, last->body);
  Forge as_owner{plan, &owner->secrets(), owner->engine->membership(plan).size()};
  const sync::Op op = as_owner.op("profile", last->author_seq + 1, prev);
  const auto h = sync::OpHeader::parse(op.header);
  auto head = sync::SignedHead::sign(
      sync::ChainHead{plan, h.section, h.author, h.author_seq, op.hash()},
      crypto::SigningKey::generate());
  const auto records_before = family->engine->state(plan).records().size();
  tamper([&](sync::sqlite::Database& db) {
    std::int64_t seq = 0;
    std::int64_t count = 0;
    crypto::Bytes digest;
    {
      auto q = db.query("SELECT max(seq) FROM ops WHERE plan_id = ?1");
      q->bind(1, plan.bytes());
      ASSERT_TRUE(q->step());
      seq = q->column_int(0) + 1;
    }
    {
      auto q = db.query(
          "SELECT section_count, section_digest FROM ops WHERE plan_id = ?1 AND section = "
          "'profile' ORDER BY seq DESC LIMIT 1");
      q->bind(1, plan.bytes());
      ASSERT_TRUE(q->step());
      count = q->column_int(0);
      digest = q->column_bytes(1);
    }
    // Counted in the server's checksum too, as a server that meant it would.
    sync::SectionDigest d{static_cast<std::uint64_t>(count), {}};
    std::copy(digest.begin(), digest.end(), d.digest.begin());
    d.add(op.hash());
    auto q = db.query(
        "INSERT INTO ops (plan_id, seq, op_id, section, author, author_seq, epoch, hash, "
        "section_count, section_digest, header, body) "
        "VALUES (?1, ?2, ?3, 'profile', ?4, ?5, 1, ?6, ?7, ?8, ?9, ?10)");
    q->bind(1, plan.bytes());
    q->bind(2, seq);
    q->bind(3, h.op_id.bytes());
    q->bind(4, h.author.bytes());
    q->bind(5, static_cast<std::int64_t>(h.author_seq));
    const sync::OpHash hash = op.hash();
    q->bind(6, crypto::ByteView(hash.data(), hash.size()));
    q->bind(7, static_cast<std::int64_t>(d.op_count));
    q->bind(8, crypto::ByteView(d.digest.data(), d.digest.size()));
    q->bind(9, crypto::ByteView(op.header));
    q->bind(10, crypto::ByteView(op.body));
    q->run();
    auto hq = db.query(
        "INSERT INTO heads (plan_id, author, section, seq, head, signature) "
        "VALUES (?1, ?2, 'profile', ?3, ?4, ?5)");
    hq->bind(1, plan.bytes());
    hq->bind(2, h.author.bytes());
    hq->bind(3, static_cast<std::int64_t>(h.author_seq));
    hq->bind(4, crypto::ByteView(head.head));
    hq->bind(5, crypto::ByteView(head.signature.data(), head.signature.size()));
    hq->run();
  });
  family->events.clear();
  family->sync(plan);
  EXPECT_TRUE(has_problem(*family, SyncErrorCode::kBadSignature));
  EXPECT_EQ(family->engine->state(plan).records().size(), records_before);
  // The owner, whose name it bears, refuses it just the same.
  owner->events.clear();
  owner->sync(plan);
  EXPECT_FALSE(problem_codes(*owner).empty());
  EXPECT_EQ(owner->engine->state(plan).records(Section::parse("profile")).size(), 1u);
}

TEST_F(KithdInjectedTest, AMembershipEntryNoMemberSignedStopsTheServerServingThePlan) {
  // A grant of health to the family member, "by" a device of the server's own.
  const auto log = owner->engine->membership(plan);
  crypto::DeviceKeys server_device = crypto::DeviceKeys::generate();
  auto grant = log.next(sync::MembershipEntry::Kind::kGrant,
                        sync::DeviceId::from_bytes(server_device.signing.public_key().bytes()),
                        wall_ms());
  grant.member = family->account();
  grant.grants = {sync::GrantSpec{Section::parse("health"), sync::Permission::kRead, 0}};
  grant.sign(server_device.signing);
  tamper([&](sync::sqlite::Database& db) {
    auto q = db.query("INSERT INTO membership (plan_id, idx, entry) VALUES (?1, ?2, ?3)");
    q->bind(1, plan.bytes());
    q->bind(2, static_cast<std::int64_t>(grant.index));
    q->bind(3, crypto::ByteView(grant.serialize()));
    q->run();
  });
  // kithd replays the log as clients do and will not serve a plan whose log does not verify.
  family->events.clear();
  auto errors = family->sync(plan, std::chrono::seconds(10));
  ASSERT_FALSE(errors.empty());
  EXPECT_EQ(errors[0].code(), kith::v1::INTERNAL);
  EXPECT_NE(server->log_text().find("changed outside kithd"), std::string::npos);
  EXPECT_EQ(family->engine->membership(plan).permission(family->account(), Section::parse("health")),
            sync::Permission::kNone);

  // And a client given that entry by a server that does serve it refuses it on its own.
  kith::v1::ServerMessage m;
  m.mutable_membership_batch()->set_plan_id(str(plan.bytes()));
  m.mutable_membership_batch()->set_first_index(grant.index);
  m.mutable_membership_batch()->add_entries(str(grant.serialize()));
  family->events.clear();
  const auto entries_before = family->engine->membership(plan).size();
  family->engine->handle(m);
  EXPECT_TRUE(has_problem(*family, SyncErrorCode::kNotMember) ||
              has_problem(*family, SyncErrorCode::kBadSignature));
  EXPECT_EQ(family->engine->membership(plan).size(), entries_before);
}

}  // namespace
}  // namespace kith::test
