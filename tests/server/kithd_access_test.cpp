// Who receives what, through a real kithd: grants that expire, the fetch log only the owner may
// read, and a rotated section key reaching a subscribed member live.
#include <thread>

#include "kithd_test_fixture.hpp"
#include "support/plan_steps.hpp"

namespace kith::test {
namespace {

using kith::v1::ClientMessage;
using kith::v1::ErrorCode;

const sync::Section kNotes = sync::Section::parse("notes");

// The ops of every live OpsBatch that reaches `device` within `wait` (nothing else is sent).
std::vector<kith::v1::DeliveredOp> live_ops(TestDevice& device, std::chrono::milliseconds wait) {
  std::vector<kith::v1::DeliveredOp> out;
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < deadline) {
    auto m = device.conn->receive(50ms);
    if (!m || !m->has_ops_batch()) continue;
    EXPECT_EQ(m->request_id(), 0u) << "a live batch answers no request";
    for (const auto& op : m->ops_batch().ops()) out.push_back(op);
  }
  return out;
}

std::string op_id_of(const sync::Op& op) {
  return str(sync::OpHeader::parse(op.header).op_id.bytes());
}

std::string op_id_of(const kith::v1::DeliveredOp& op) {
  return str(sync::OpHeader::parse(crypto::as_bytes(op.op().header())).op_id.bytes());
}

// --- Grant expiry ------------------------------------------------------------------------------

TEST_F(KithdTest, ExpiredMemberIsRefusedAndGetsNothingNew) {
  owner_with_plan();
  TestDevice nurse(dir.path(), "nurse");
  nurse.connect(*server);
  // The nurse's only grant ends in two seconds.
  const std::uint64_t expires = wall_ms() + 2000;
  admit_member(*owner, nurse, plan, {{kNotes, sync::Permission::kAppend, expires}});
  auto f = forge(*owner);

  // Before the expiry: subscribed and live, the nurse receives the owner's note.
  auto catch_up = raw_catch_up(nurse, plan, 0);
  ASSERT_TRUE(catch_up.complete.has_value()) << (catch_up.error ? catch_up.error->message() : "");
  const auto before = f.op("notes", 1, {});
  ASSERT_TRUE(owner->request(f.push({before})).has_push_ack());
  auto got = live_ops(nurse, 500ms);
  ASSERT_LT(wall_ms(), expires) << "the machine is too slow for this test's 2 s grant";
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(op_id_of(got[0]), op_id_of(before));
  const std::uint64_t before_seq = got[0].server_seq();

  // After it: the nurse stays connected and subscribed, but the owner's next note is not sent.
  std::this_thread::sleep_for(std::chrono::milliseconds(expires - wall_ms() + 100));
  const auto after = f.op("notes", 2, before.hash());
  auto ack = owner->request(f.push({after}));
  ASSERT_TRUE(ack.has_push_ack()) << ack.DebugString();
  EXPECT_TRUE(live_ops(nurse, 1000ms).empty()) << "an expired member received a new op";
  // Nor may the nurse write there any longer, nor subscribe again.
  Forge nurse_forge{plan, &nurse.secrets(), catch_up.entries.size()};
  auto push = nurse.request(nurse_forge.push({nurse_forge.op("notes", 1, {})}));
  EXPECT_EQ(code_of(push), ErrorCode::GRANT_EXPIRED);
  auto again = raw_catch_up(nurse, plan, 0);
  ASSERT_TRUE(again.error.has_value()) << "an expired member was allowed to subscribe";
  EXPECT_EQ(again.error->code(), ErrorCode::GRANT_EXPIRED);
  EXPECT_NE(again.error->message().find("expired"), std::string::npos);
  EXPECT_TRUE(again.ops.empty());

  // The fetch log agrees: the nurse's last delivery is the note before the expiry.
  std::uint64_t nurse_up_to = 0;
  const auto t0 = std::chrono::steady_clock::now();
  while (nurse_up_to < before_seq && std::chrono::steady_clock::now() - t0 < 3s) {
    for (const auto& e : fetch_whole_log(*owner, plan, 100).entries) {
      if (e.device_id() == str(nurse.device().bytes())) {
        nurse_up_to = std::max(nurse_up_to, e.up_to_seq());
      }
    }
    if (nurse_up_to < before_seq) std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(nurse_up_to, before_seq);
  EXPECT_LT(nurse_up_to, ack.push_ack().acked(0).server_seq());
}

// --- The fetch log -----------------------------------------------------------------------------

TEST_F(KithdTest, FetchLogIsTheOwnersAndNamesEachCatchUp) {
  owner_with_plan();
  owner->engine->add_record(plan, "note", {{"text", "District nurse visits on Tuesdays"}});
  ASSERT_TRUE(owner->sync(plan).empty());
  TestDevice nurse(dir.path(), "nurse");
  nurse.connect(*server);
  add_member(*owner, nurse, plan, {{kNotes, sync::Permission::kRead, 0}});
  auto c = raw_catch_up(nurse, plan, 0);
  ASSERT_TRUE(c.complete.has_value());
  const std::uint64_t up_to = c.complete->server_seq();

  // A member may not read it, a stranger is not told the plan exists.
  auto refused = fetch_whole_log(nurse, plan, 10);
  ASSERT_TRUE(refused.error.has_value()) << "a member read the owner's access log";
  EXPECT_EQ(refused.error->code(), ErrorCode::FORBIDDEN);
  EXPECT_EQ(refused.error->plan_id(), str(plan.bytes()));
  EXPECT_NE(refused.error->message().find("owner"), std::string::npos);
  TestDevice stranger(dir.path(), "stranger");
  stranger.connect(*server);
  auto unknown = fetch_whole_log(stranger, plan, 10);
  ASSERT_TRUE(unknown.error.has_value());
  EXPECT_EQ(unknown.error->code(), ErrorCode::NOT_MEMBER);

  // The owner reads it in pages of two; the nurse's catch-up is there (records are written
  // after the catch-up is sent, so allow them a moment), in the one section the nurse may read.
  bool found = false;
  FetchLogPages log;
  const auto t0 = std::chrono::steady_clock::now();
  while (!found && std::chrono::steady_clock::now() - t0 < 3s) {
    log = fetch_whole_log(*owner, plan, 2);
    ASSERT_FALSE(log.error.has_value()) << log.error->message();
    for (const auto& e : log.entries) {
      found |= e.device_id() == str(nurse.device().bytes()) && e.section() == "notes" &&
               e.kind() == kith::v1::AccessLogEntry::CATCH_UP && e.up_to_seq() == up_to;
    }
    if (!found) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(found) << "no CATCH_UP record of notes up to " << up_to << " for the nurse";
  EXPECT_GT(log.pages, 1u);
  for (const auto& e : log.entries) {
    if (e.device_id() != str(nurse.device().bytes())) continue;
    EXPECT_EQ(e.account_id(), str(nurse.account().bytes()));
    EXPECT_EQ(e.section(), "notes") << "the log says the nurse fetched a section they may not read";
    EXPECT_GT(e.at_ms(), 0u);
  }
}

// --- Envelopes reach subscribed members live ---------------------------------------------------

TEST_F(KithdTest, RotatedKeyReachesASubscribedMemberLive) {
  owner_with_plan();
  TestDevice nurse(dir.path(), "nurse");
  nurse.connect(*server);
  add_member(*owner, nurse, plan, {{kNotes, sync::Permission::kRead, 0}});
  const std::uint64_t old_epoch = nurse.engine->membership(plan).epoch(kNotes);

  // The nurse only reads from now on: live messages, never a new Subscribe.
  bool envelope_arrived = false;
  auto pump = [&](const std::function<bool()>& until) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!until() && std::chrono::steady_clock::now() < deadline) {
      auto m = nurse.conn->receive(100ms);
      if (!m) continue;
      if (m->envelope_batch().envelopes_size() > 0) {
        EXPECT_EQ(m->request_id(), 0u);
        envelope_arrived = true;
      }
      for (auto& reply : nurse.engine->handle(*m)) {
        EXPECT_FALSE(reply.has_subscribe()) << "the member had to subscribe again";
        nurse.conn->send(reply);
      }
    }
    return until();
  };

  owner->engine->rotate_key(plan, kNotes);
  ASSERT_TRUE(owner->sync(plan).empty());
  EXPECT_TRUE(pump([&] {
    return envelope_arrived && nurse.engine->membership(plan).epoch(kNotes) == old_epoch + 1;
  })) << "the new key did not reach the subscribed member";

  // A note sealed under the new key: the nurse opens it as it arrives.
  auto note = owner->engine->add_record(plan, "note", {{"text", "Key safe code changed"}});
  ASSERT_TRUE(owner->sync(plan).empty());
  EXPECT_TRUE(pump([&] {
    auto r = nurse.engine->state(plan).record(note);
    return r && r->fields.count("text") && r->fields.at("text").value == "Key safe code changed";
  })) << "the member could not open an op under the new epoch";
  // It was sealed under the new epoch, which the nurse could not have had before the rotation.
  const auto stored = raw_catch_up(*owner, plan, 0);
  bool checked = false;
  for (const auto& d : stored.ops) {
    const auto h = sync::OpHeader::parse(crypto::as_bytes(d.op().header()));
    if (h.section == kNotes) {
      EXPECT_EQ(h.epoch, old_epoch + 1);
      checked = true;
    }
  }
  EXPECT_TRUE(checked);
}

}  // namespace
}  // namespace kith::test
