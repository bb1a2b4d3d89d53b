// The sync engine and membership entries of its own: the envelopes it makes wait in the store
// until the server has them, and an entry that lost its place in the log to another device's is
// made again after it — or dropped, with a problem, when it is no longer allowed there.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "engine_fixture.hpp"
#include "kith/sync/engine.hpp"
#include "kith/sync/key_ring.hpp"

namespace kith::sync::engine_test {
namespace {

// --- Envelopes made here wait in the store until the server has them. ---

TEST_F(Engine, EnvelopesMadeOfflineSurviveARestartAndArePushedAfterIt) {
  PlanId plan = a->engine->create_plan("Nia's plan");
  RecordId r = a->engine->add_record(plan, "support", {{"text", "Shopping on Tuesdays"}});
  a->engine->add_device(plan, b->engine->identity().certificate);
  const std::size_t made = a->store->outgoing_envelopes(plan).size();
  EXPECT_GT(made, 0u);
  a->open();  // the app is killed and started again before it could sync
  EXPECT_EQ(a->store->outgoing_envelopes(plan).size(), made);
  a->sync(server, plan);
  EXPECT_TRUE(a->store->outgoing_envelopes(plan).empty());  // the server acknowledged them
  b->engine->follow(plan, "Nia's plan");
  b->sync(server, plan);
  b->expect_no_problems();
  EXPECT_EQ(text(*b, plan, r), "Shopping on Tuesdays");
}

TEST_F(Engine, AckRemovesOnlyTheEnvelopesItAcknowledges) {
  PlanId plan = shared_plan();
  ASSERT_TRUE(a->store->outgoing_envelopes(plan).empty());
  a->engine->rotate_key(plan, Section::parse("health"));
  // The rotation goes first; its envelopes follow its acknowledgement.
  auto first = a->engine->pushes(plan);
  ASSERT_EQ(first.size(), 1u);
  ASSERT_TRUE(first[0].has_push_membership());
  std::vector<ClientMessage> envelopes;
  for (const auto& reply : server.handle(first[0], a->box())) {
    for (auto& m : a->engine->handle(reply)) envelopes.push_back(std::move(m));
  }
  // The new health key, for b; and sealed to a's recovery box, in a push of its own.
  ASSERT_EQ(envelopes.size(), 2u);
  ASSERT_TRUE(envelopes[0].has_push_envelopes());
  ASSERT_EQ(envelopes[0].push_envelopes().envelopes_size(), 1);
  EXPECT_TRUE(envelopes[0].push_envelopes().recovery_proof().empty());
  ASSERT_TRUE(envelopes[1].has_push_envelopes());
  ASSERT_EQ(envelopes[1].push_envelopes().envelopes_size(), 1);
  EXPECT_EQ(envelopes[1].push_envelopes().recovery_proof().size(), 64u);
  // Another rotation while those pushes are on their way: its envelope is not acknowledged by
  // them.
  a->engine->rotate_key(plan, Section::parse("notes"));
  ASSERT_EQ(a->store->outgoing_envelopes(plan).size(), 3u);
  for (const auto& reply : server.handle(envelopes[0], a->box())) a->engine->handle(reply);
  auto left = a->store->outgoing_envelopes(plan);
  ASSERT_EQ(left.size(), 2u);
  EXPECT_TRUE(left[0].recovery);  // the health key's, still unanswered
  left.erase(left.begin());
  auto env = crypto::Envelope::parse(left[0].envelope);
  EXPECT_EQ(parse_section_key_context(env.context(), plan),
            std::make_pair(Section::parse("notes"), std::uint64_t{2}));
  a->sync(server, plan);
  EXPECT_TRUE(a->store->outgoing_envelopes(plan).empty());
  a->expect_no_problems();
}

// --- Two devices that append the same place in the membership log offline. ---

TEST_F(Engine, MembershipEntryThatLostARaceIsMadeAgainAndPushed) {
  PlanId plan = shared_plan();
  RecordId r = a->engine->add_record(plan, "health", {{"dose", "5 mg"}});
  a->sync(server, plan);
  auto c = another("c", owner);
  auto d = another("d", owner);
  // Both offline, a adds the tablet and b the new phone: both write entry 2.
  a->engine->add_device(plan, c->engine->identity().certificate);
  b->engine->add_device(plan, d->engine->identity().certificate);
  ASSERT_EQ(a->engine->membership(plan).size(), 3u);
  ASSERT_EQ(b->engine->membership(plan).size(), 3u);
  a->sync(server, plan);  // the server keeps a's
  b->sync(server, plan);  // b takes a's entry 2 and makes its own again as entry 3
  b->expect_no_problems();
  EXPECT_EQ(server.refused_pushes, 0u);
  const MembershipLog& log = b->engine->membership(plan);
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(log.account_of(c->id()), b->engine->identity().account());
  EXPECT_EQ(log.account_of(d->id()), b->engine->identity().account());
  EXPECT_EQ(log.account_of(d->id(), 3), std::nullopt);  // added by entry 3, not 2
  EXPECT_TRUE(b->store->outgoing_envelopes(plan).empty());
  a->sync(server, plan);
  EXPECT_EQ(a->engine->membership(plan).head_hash(), log.head_hash());
  // The new phone receives its keys from b, and reads what a wrote.
  d->engine->follow(plan, "Nia's plan");
  d->sync(server, plan);
  d->expect_no_problems();
  EXPECT_EQ(text(*d, plan, r, "dose"), "5 mg");
}

TEST_F(Engine, MembershipEntryRefusedAfterARestartIsMadeAgainToo) {
  PlanId plan = shared_plan();
  auto c = another("c", owner);
  auto d = another("d", owner);
  a->engine->add_device(plan, c->engine->identity().certificate);
  b->engine->add_device(plan, d->engine->identity().certificate);
  b->sync(server, plan);  // this time b's entry 2 is first
  // a restarts: every entry it holds is its own, so it cannot tell which the server has, and
  // pushes them all before it subscribes. The server refuses the push; the catch-up then brings
  // b's entry 2, and a's is made again as entry 3.
  a->open();
  a->sync(server, plan);
  EXPECT_EQ(server.refused_pushes, 1u);
  a->expect_no_problems();
  ASSERT_EQ(a->engine->membership(plan).size(), 4u);
  EXPECT_EQ(a->engine->membership(plan).account_of(c->id(), 3), std::nullopt);
  EXPECT_TRUE(a->store->outgoing_envelopes(plan).empty());
  b->sync(server, plan);
  EXPECT_EQ(b->engine->membership(plan).head_hash(), a->engine->membership(plan).head_hash());
  c->engine->follow(plan, "Nia's plan");
  c->sync(server, plan);
  c->expect_no_problems();
}

TEST_F(Engine, MembershipEntryNoLongerAllowedIsDroppedWithAProblem) {
  PlanId plan = a->engine->create_plan("Nia's plan");
  a->sync(server, plan);
  // A nurse joins with the right to manage health (an invite by a, accepted by the nurse's
  // device), written here the way their apps would.
  crypto::SigningKey nurse_identity = crypto::SigningKey::generate();
  auto nurse = another("nurse", nurse_identity);
  MembershipLog log = a->engine->membership(plan);
  const Bytes secret(32, 7);
  auto invite = log.next(MembershipEntry::Kind::kInviteCreated, a->id(), clock);
  invite.invite_id = OpId::random();
  auto invite_key = invite_key_from_secret(secret);
  invite.invite_key.assign(invite_key.public_key().bytes().begin(),
                           invite_key.public_key().bytes().end());
  invite.invite_expires_at_ms = clock + 1'000'000;
  invite.grants = {{Section::parse("health"), Permission::kManage, 0}};
  invite.sign(a->secrets.device.signing);
  log.append(invite);
  push_entry(server, invite, a->box());
  auto join = log.next(MembershipEntry::Kind::kInviteAccepted, nurse->id(), clock);
  join.invite_id = invite.invite_id;
  join.certificate = nurse->engine->identity().certificate;
  join.invite_signature = invite_key.sign(crypto::labels::kInviteJoin, join.invite_join_message());
  join.sign(nurse->secrets.device.signing);
  log.append(join);
  push_entry(server, join, nurse->box());
  a->sync(server, plan);
  nurse->engine->follow(plan, "Nia's plan");
  nurse->sync(server, plan);
  ASSERT_EQ(nurse->engine->membership(plan).size(), 3u);

  // Offline, the nurse rotates the health key; meanwhile the owner takes her manage right away.
  nurse->engine->rotate_key(plan, Section::parse("health"));
  ASSERT_EQ(nurse->engine->membership(plan).epoch(Section::parse("health")), 2u);
  ASSERT_FALSE(nurse->store->outgoing_envelopes(plan).empty());  // the new key, for a
  auto reduce = log.next(MembershipEntry::Kind::kGrant, a->id(), clock);
  reduce.member = nurse->engine->identity().account();
  reduce.grants = {{Section::parse("health"), Permission::kWrite, 0}};
  reduce.sign(a->secrets.device.signing);
  log.append(reduce);
  push_entry(server, reduce, a->box());

  nurse->sync(server, plan);
  // Her rotation, made again after the owner's entry, is no longer hers to make.
  ASSERT_EQ(nurse->count(SyncEvent::Kind::kProblem), 1u);
  const SyncEvent& problem = *std::find_if(nurse->events.begin(), nurse->events.end(), [](auto& e) {
    return e.kind == SyncEvent::Kind::kProblem;
  });
  EXPECT_EQ(problem.code, SyncErrorCode::kForbidden);
  EXPECT_NE(problem.message.find("the new key of health"), std::string::npos) << problem.message;
  const MembershipLog& now = nurse->engine->membership(plan);
  EXPECT_EQ(now.size(), 4u);
  EXPECT_EQ(now.head_hash(), log.head_hash());
  EXPECT_EQ(now.epoch(Section::parse("health")), 1u);
  EXPECT_EQ(now.permission(nurse->engine->identity().account(), Section::parse("health")),
            Permission::kWrite);
  EXPECT_TRUE(nurse->store->outgoing_envelopes(plan).empty());  // its key is not handed out
  EXPECT_EQ(nurse->store->membership(plan).size(), 4u);
  EXPECT_EQ(server.refused_pushes, 0u);
  a->sync(server, plan);
  EXPECT_EQ(a->engine->membership(plan).size(), 4u);  // nothing more reached the server
}

TEST_F(Engine, RotationRefusedForItsCutOffsIsMadeAgainWithNewOnes) {
  server.refuse_cut_offs = true;
  PlanId plan = shared_plan();
  // b's edit reaches the server before a, which has not seen it, rotates the key: the rotation's
  // cut-offs would leave that stored op out, so the server refuses it. (Meanwhile a, judging b's
  // edit by its own rotation, reports it refused.)
  RecordId r = b->engine->add_record(plan, "health", {{"dose", "5 mg"}});
  b->sync(server, plan);
  a->engine->rotate_key(plan, Section::parse("health"));
  a->sync(server, plan);
  EXPECT_EQ(server.refused_pushes, 1u);
  EXPECT_EQ(server.entry_count(plan), 2u);
  // Having caught up meanwhile, a makes the rotation again with b's edit inside its cut-off.
  a->events.clear();
  a->sync(server, plan);
  EXPECT_EQ(text(*a, plan, r, "dose"), "5 mg");
  EXPECT_EQ(server.refused_pushes, 1u);
  EXPECT_EQ(server.entry_count(plan), 3u);
  a->expect_no_problems();
  EXPECT_TRUE(a->store->outgoing_envelopes(plan).empty());
  b->sync(server, plan);
  b->expect_no_problems();
  EXPECT_EQ(b->engine->membership(plan).epoch(Section::parse("health")), 2u);
  EXPECT_EQ(b->engine->state(plan).canonical(), a->engine->state(plan).canonical());
}

}  // namespace
}  // namespace kith::sync::engine_test
