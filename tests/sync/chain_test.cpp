#include "kith/sync/chain.hpp"

#include <gtest/gtest.h>

namespace kith::sync {
namespace {

class ChainTest : public ::testing::Test {
 protected:
  PlanId plan = PlanId::random();
  crypto::SigningKey device = crypto::SigningKey::generate();
  crypto::SectionKey key = crypto::SectionKey::generate();
  ChainWriter writer{plan, device};
  Section health = Section::parse("health");

  Op write(std::uint64_t clock) {
    OpHeader h;
    h.plan = plan;
    h.op_id = OpId::random();
    h.section = health;
    h.clock = {clock, 0};
    writer.stamp(h);
    OpBody body;
    body.mutations.push_back({Mutation::Kind::kSet, RecordId::random(), "", "text", "x", {}});
    Op op = seal_op(h, body, key);
    writer.append(h, op);
    return op;
  }
  SignedHead head() { return *writer.head(health); }
  bool has(const ChainOutcome& o, SyncErrorCode code) {
    return std::any_of(o.problems.begin(), o.problems.end(),
                       [&](const ChainProblem& p) { return p.code == code; });
  }
};

TEST_F(ChainTest, AcceptsOpsOnceASignedHeadCoversThem) {
  ChainVerifier v(plan);
  std::vector<Op> ops{write(1), write(2), write(3)};
  auto waiting = v.add(ops, {});
  EXPECT_TRUE(waiting.accepted.empty());
  EXPECT_EQ(v.pending_ops(), 3u);
  auto out = v.add({}, {head()});
  ASSERT_EQ(out.accepted.size(), 3u);
  EXPECT_TRUE(out.problems.empty());
  EXPECT_EQ(out.accepted[0].header.author_seq, 1u);
  EXPECT_EQ(out.accepted[2].header.author_seq, 3u);
  EXPECT_EQ(v.pending_ops(), 0u);
}

TEST_F(ChainTest, OneHeadPerBatchAcrossBatches) {
  ChainVerifier v(plan);
  std::vector<Op> a{write(1), write(2)};
  auto ha = head();
  std::vector<Op> b{write(3), write(4)};
  auto hb = head();
  EXPECT_EQ(v.add(a, {ha}).accepted.size(), 2u);
  EXPECT_EQ(v.add(b, {hb}).accepted.size(), 2u);
  EXPECT_EQ(v.accepted_seq({DeviceId::from_bytes(device.public_key().bytes()), health}), 4u);
}

TEST_F(ChainTest, DuplicatesAreIgnored) {
  ChainVerifier v(plan);
  std::vector<Op> ops{write(1), write(2)};
  auto h = head();
  v.add(ops, {h});
  auto again = v.add(ops, {h});
  EXPECT_TRUE(again.accepted.empty());
  EXPECT_TRUE(again.problems.empty());
  EXPECT_EQ(again.duplicates, 2u);
}

TEST_F(ChainTest, GapIsReportedAndFilledLater) {
  ChainVerifier v(plan);
  Op o1 = write(1), o2 = write(2), o3 = write(3);
  auto out = v.add({o1, o3}, {head()});  // a server dropped op 2
  EXPECT_TRUE(out.accepted.empty());
  EXPECT_TRUE(has(out, SyncErrorCode::kChainGap));
  auto later = v.add({o2}, {});
  EXPECT_EQ(later.accepted.size(), 3u);
}

TEST_F(ChainTest, ForkIsDetected) {
  ChainVerifier v(plan);
  Op o1 = write(1);
  auto h1 = head();
  v.add({o1}, {h1});
  // A second history: another op claiming position 1.
  ChainWriter other(plan, device);
  OpHeader h;
  h.plan = plan;
  h.op_id = OpId::random();
  h.section = health;
  other.stamp(h);
  Op forked = seal_op(h, OpBody{}, key);
  other.append(h, forked);
  auto out = v.add({forked}, {*other.head(health)});
  EXPECT_TRUE(out.accepted.empty());
  EXPECT_TRUE(has(out, SyncErrorCode::kChainFork));
}

// Waiting ops reuse the pending-map nodes that accepted ops left: ops that arrive out of order
// still wait and link, a second op at a waiting op's position is still a fork, and the waiting
// ops come out intact.
TEST_F(ChainTest, SecondVersionOfAWaitingOpIsAFork) {
  ChainVerifier v(plan);
  Op o1 = write(1), o2 = write(2), o3 = write(3);
  ASSERT_EQ(v.add({o1, o2, o3}, {head()}).accepted.size(), 3u);
  ChainWriter other(plan, device);  // another history from op 4 on
  other.restore(health, 3, o3.hash());
  OpHeader h;
  h.plan = plan;
  h.op_id = OpId::random();
  h.section = health;
  other.stamp(h);
  Op forked = seal_op(h, OpBody{}, key);
  Op o4 = write(4), o5 = write(5);
  auto waiting = v.add({o5, o4, forked}, {});
  EXPECT_TRUE(waiting.accepted.empty());
  ASSERT_EQ(waiting.problems.size(), 1u);
  EXPECT_EQ(waiting.problems[0].code, SyncErrorCode::kChainFork);
  EXPECT_EQ(waiting.problems[0].seq, 4u);
  EXPECT_EQ(v.pending_ops(), 2u);
  auto out = v.add({}, {head()});
  EXPECT_TRUE(out.problems.empty());
  ASSERT_EQ(out.accepted.size(), 2u);
  EXPECT_EQ(out.accepted[0].op.header, o4.header);
  EXPECT_EQ(out.accepted[0].op.body, o4.body);
  EXPECT_EQ(out.accepted[1].op.body, o5.body);
  EXPECT_EQ(out.accepted[1].hash, o5.hash());
  // The refused op's id was not kept: it is refused again, not counted as a duplicate.
  EXPECT_TRUE(has(v.add({forked}, {}), SyncErrorCode::kChainFork));
}

TEST_F(ChainTest, ReplayedOpIdWithOtherContentIsDetected) {
  ChainVerifier v(plan);
  Op o1 = write(1);
  v.add({o1}, {head()});
  Op replay = o1;
  replay.body.back() ^= 1;
  auto out = v.add({replay}, {});
  EXPECT_TRUE(has(out, SyncErrorCode::kChainReplay));
}

TEST_F(ChainTest, TamperedOpDoesNotMatchItsHead) {
  ChainVerifier v(plan);
  Op o1 = write(1);
  auto h = head();
  o1.body[10] ^= 1;  // a server alters the ciphertext
  auto out = v.add({o1}, {h});
  EXPECT_TRUE(out.accepted.empty());
  EXPECT_TRUE(has(out, SyncErrorCode::kChainFork));
}

TEST_F(ChainTest, ReorderedOpsDoNotLink) {
  ChainVerifier v(plan);
  Op o1 = write(1), o2 = write(2);
  // Swap the bodies' positions by re-stamping: op 2's header claims seq 1.
  OpHeader h2 = OpHeader::parse(o2.header);
  h2.author_seq = 1;
  Op wrong{h2.serialize(), o2.body};
  auto out = v.add({wrong}, {head()});
  EXPECT_TRUE(out.accepted.empty());
  EXPECT_FALSE(out.problems.empty());
  (void)o1;
}

TEST_F(ChainTest, BadHeadSignatureAcceptsNothing) {
  ChainVerifier v(plan);
  Op o1 = write(1);
  auto h = head();
  h.signature[0] ^= 1;
  auto out = v.add({o1}, {h});
  EXPECT_TRUE(out.accepted.empty());
  EXPECT_TRUE(has(out, SyncErrorCode::kBadSignature));
  // A head signed by another device for this author's chain is refused too.
  auto mallory = crypto::SigningKey::generate();
  SignedHead forged{h.head, mallory.sign(crypto::labels::kOpBatchHead, h.head)};
  EXPECT_TRUE(has(v.add({}, {forged}), SyncErrorCode::kBadSignature));
}

TEST_F(ChainTest, SignatureForAnotherPurposeIsNotAHead) {
  ChainVerifier v(plan);
  Op o1 = write(1);
  auto h = head();
  SignedHead wrong_label{h.head, device.sign(crypto::labels::kMembershipEntry, h.head)};
  auto out = v.add({o1}, {wrong_label});
  EXPECT_TRUE(out.accepted.empty());
  EXPECT_TRUE(has(out, SyncErrorCode::kBadSignature));
}

TEST_F(ChainTest, OpsOfAnotherPlanAreRefused) {
  ChainVerifier v(PlanId::random());
  Op o1 = write(1);
  auto out = v.add({o1}, {head()});
  EXPECT_TRUE(out.accepted.empty());
  EXPECT_EQ(out.problems.size(), 2u);
}

}  // namespace
}  // namespace kith::sync
