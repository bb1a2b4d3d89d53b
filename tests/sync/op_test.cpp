#include "kith/sync/op.hpp"

#include <gtest/gtest.h>

#include "fixtures.hpp"
#include "kith/sync/error.hpp"

namespace kith::sync {
namespace {

using test::error_of;

OpHeader sample_header() {
  OpHeader h;
  h.plan = PlanId::random();
  h.op_id = OpId::random();
  h.section = Section::parse("health");
  h.epoch = 3;
  h.author = DeviceId::random();
  h.author_seq = 7;
  h.prev.fill(0xab);
  h.clock = {1795305600123, 4};
  h.membership_index = 12;
  return h;
}

OpBody sample_body() {
  OpBody b;
  RecordId r = RecordId::random();
  b.mutations.push_back({Mutation::Kind::kCreate, r, "health", "", "", {}});
  b.mutations.push_back(
      {Mutation::Kind::kSet, r, "", "dose", "5 mg", {VersionId{OpId::random(), 3}}});
  return b;
}

TEST(OpHeader, RoundTripsEveryField) {
  OpHeader h = sample_header();
  OpHeader back = OpHeader::parse(h.serialize());
  EXPECT_EQ(back.serialize(), h.serialize());
  EXPECT_EQ(back.plan, h.plan);
  EXPECT_EQ(back.section, h.section);
  EXPECT_EQ(back.clock, h.clock);
  EXPECT_EQ(back.membership_index, 12u);
}

TEST(OpHeader, RejectsTruncatedTrailingAndInvalidHeaders) {
  Bytes bytes = sample_header().serialize();
  for (std::size_t n = 0; n < bytes.size(); n += 5) {
    EXPECT_EQ(error_of([&] { OpHeader::parse(ByteView(bytes).first(n)); }),
              SyncErrorCode::kMalformed);
  }
  Bytes extended = bytes;
  extended.push_back(0);
  EXPECT_EQ(error_of([&] { OpHeader::parse(extended); }), SyncErrorCode::kMalformed);
  Bytes future = bytes;
  future[0] = 9;
  EXPECT_EQ(error_of([&] { OpHeader::parse(future); }), SyncErrorCode::kMalformed);
  Bytes bad_section = bytes;
  bad_section[1 + 16 + 16 + 1] = 'H';  // "Health": not a section name
  EXPECT_EQ(error_of([&] { OpHeader::parse(bad_section); }), SyncErrorCode::kUnknownSection);
  OpHeader zero = sample_header();
  zero.author_seq = 0;
  EXPECT_EQ(error_of([&] { OpHeader::parse(zero.serialize()); }), SyncErrorCode::kMalformed);
}

TEST(OpBody, RoundTrips) {
  OpBody b = sample_body();
  OpBody back = OpBody::parse(b.serialize().view());
  EXPECT_EQ(back.mutations, b.mutations);
}

TEST(OpBody, EnforcesLimits) {
  OpBody many;
  for (int i = 0; i < 257; ++i) {
    many.mutations.push_back({Mutation::Kind::kSet, RecordId::random(), "", "text", "x", {}});
  }
  EXPECT_EQ(error_of([&] { many.serialize(); }), SyncErrorCode::kTooLarge);
  OpBody big;
  big.mutations.push_back(
      {Mutation::Kind::kSet, RecordId::random(), "", "text", std::string(16 * 1024 + 1, 'x'), {}});
  EXPECT_EQ(error_of([&] { big.serialize(); }), SyncErrorCode::kTooLarge);
  EXPECT_EQ(error_of([&] { OpBody::parse(Bytes{1, 0xff, 0xff, 0, 0}); }), SyncErrorCode::kTooLarge);
  EXPECT_EQ(error_of([&] { OpBody::parse(Bytes{1, 1, 0, 0, 0, 9}); }), SyncErrorCode::kMalformed);
}

TEST(Op, OpensOnlyWithItsOwnHeaderAndKey) {
  auto key = crypto::SectionKey::generate();
  OpHeader h = sample_header();
  OpBody body = sample_body();
  Op op = seal_op(h, body, key);
  auto opened = open_op(op, key);
  ASSERT_TRUE(opened.has_value());
  EXPECT_EQ(opened->mutations, body.mutations);

  EXPECT_FALSE(open_op(op, crypto::SectionKey::generate()).has_value());
  // Any header field changed (section, epoch, author, position, clock) breaks the AD.
  for (auto change :
       {+[](OpHeader& x) { x.section = Section::parse("notes"); }, +[](OpHeader& x) { x.epoch++; },
        +[](OpHeader& x) { x.author_seq++; }, +[](OpHeader& x) { x.clock.counter++; },
        +[](OpHeader& x) { x.op_id = OpId::random(); }}) {
    OpHeader other = h;
    change(other);
    Op moved{other.serialize(), op.body};
    EXPECT_FALSE(open_op(moved, key).has_value());
  }
}

// Small bodies open into a buffer on the stack and larger ones into the heap: both ways, at
// the boundary too, give the body back, and neither opens under another key.
TEST(Op, OpensBodiesOfEverySize) {
  auto key = crypto::SectionKey::generate();
  // The plaintext is the value plus 38 bytes of layout: 2,010 is the largest value on the stack.
  for (std::size_t value : {0, 100, 2009, 2010, 2011, 2100, 16 * 1024}) {
    OpBody body;
    RecordId r = RecordId::random();
    body.mutations.push_back({Mutation::Kind::kSet, r, "", "text", std::string(value, 'v'), {}});
    Op op = seal_op(sample_header(), body, key);
    ASSERT_EQ(op.body.size(), value + 38 + crypto::kSealedOverhead);
    auto opened = open_op(op, key);
    ASSERT_TRUE(opened.has_value()) << value;
    EXPECT_EQ(opened->mutations, body.mutations) << value;
    EXPECT_FALSE(open_op(op, crypto::SectionKey::generate()).has_value()) << value;
  }
}

TEST(Op, HashCoversHeaderAndBody) {
  auto key = crypto::SectionKey::generate();
  Op op = seal_op(sample_header(), sample_body(), key);
  OpHash h = op.hash();
  Op changed = op;
  changed.body.back() ^= 1;
  EXPECT_NE(changed.hash(), h);
  changed = op;
  changed.header.back() ^= 1;
  EXPECT_NE(changed.hash(), h);
}

TEST(Hlc, PrintsParsesAndOrders) {
  Hlc h{1795305600123, 4};
  EXPECT_EQ(h.text(), "1795305600123.4");
  EXPECT_EQ(Hlc::parse(h.text()), h);
  EXPECT_LT((Hlc{5, 9}), (Hlc{6, 0}));
  EXPECT_THROW(Hlc::parse("12"), SyncError);
  EXPECT_THROW(Hlc::parse("12.x"), SyncError);
}

TEST(HlcClock, NeverGoesBackwards) {
  HlcClock c;
  Hlc a = c.tick(1000);
  Hlc b = c.tick(999);  // the phone's clock was set back
  EXPECT_LT(a, b);
  c.observe({5000, 2});  // a device whose clock is ahead
  Hlc d = c.tick(1001);
  EXPECT_LT((Hlc{5000, 2}), d);
  c.observe({6000, UINT32_MAX});
  EXPECT_LT((Hlc{6000, UINT32_MAX}), c.tick(10));
}

TEST(Section, AcceptsKnownAndNewNamesRejectsOthers) {
  EXPECT_TRUE(Section::parse("health").is_known());
  EXPECT_FALSE(Section::parse("housing").is_known());
  for (const char* bad : {"", "Health", "1abc", "a b", "toolongtoolongtoolongtoolongtoolong"}) {
    EXPECT_EQ(error_of([&] { Section::parse(bad); }), SyncErrorCode::kUnknownSection) << bad;
  }
}

}  // namespace
}  // namespace kith::sync
