// The sync byte layouts (op header and body, op hash, chain heads, membership entries, section
// key context, section checksums) checked against tests/vectors/ops.json, membership.json and
// section_digests.json, which tests/vectors/generate.py writes from docs/PROTOCOL.md
// independently of this code.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>

#include "kith/sync/chain.hpp"
#include "kith/sync/key_ring.hpp"
#include "kith/sync/membership.hpp"
#include "kith/sync/op.hpp"
#include "kith/sync/section_digest.hpp"
#include "support/vectors.hpp"

namespace kith::sync {
namespace {

using test::hex_field;

TEST(SyncVectors, OpHeadersBodiesAndHashes) {
  auto doc = test::load_json(test::own_vector_path("ops.json"));
  auto key = crypto::SectionKey::parse(hex_field(doc, "section_key"));
  ASSERT_EQ(doc.at("cases").size(), 2u);
  for (const auto& c : doc.at("cases")) {
    OpHeader h = OpHeader::parse(hex_field(c, "header"));
    EXPECT_EQ(h.plan.hex(), c.at("plan"));
    EXPECT_EQ(h.op_id.hex(), c.at("op_id"));
    EXPECT_EQ(h.section.name(), c.at("section"));
    EXPECT_EQ(h.epoch, c.at("epoch").get<std::uint64_t>());
    EXPECT_EQ(h.author.hex(), c.at("author"));
    EXPECT_EQ(h.author_seq, c.at("author_seq").get<std::uint64_t>());
    EXPECT_EQ(crypto::to_hex(h.prev), c.at("prev"));
    EXPECT_EQ(h.clock.text(), c.at("clock"));
    EXPECT_EQ(h.membership_index, c.at("membership_index").get<std::uint64_t>());
    EXPECT_EQ(crypto::to_hex(h.serialize()), c.at("header"));

    OpBody body = OpBody::parse(hex_field(c, "body"));
    EXPECT_EQ(crypto::to_hex(body.serialize().view()), c.at("body"));
    ASSERT_EQ(body.mutations.size(), c.at("mutations").size());

    Op op{hex_field(c, "header"), hex_field(c, "sealed_body")};
    EXPECT_EQ(crypto::to_hex(op.hash()), c.at("hash"));
    auto opened = open_op(op, key);
    ASSERT_TRUE(opened.has_value());
    EXPECT_EQ(opened->mutations, body.mutations);
  }
  // The author's signed head over op 2.
  auto author = crypto::SigningKey::parse(hex_field(doc, "author_seed"));
  const auto& sh = doc.at("signed_head");
  ChainHead head = ChainHead::parse(hex_field(sh, "head"));
  EXPECT_EQ(head.seq, 2u);
  EXPECT_EQ(crypto::to_hex(head.hash), doc.at("cases")[1].at("hash"));
  SignedHead mine = SignedHead::sign(head, author);
  EXPECT_EQ(crypto::to_hex(mine.head), sh.at("head"));
  EXPECT_EQ(crypto::to_hex(mine.signature), sh.at("signature"));

  // And the verifier accepts both ops on that head.
  ChainVerifier v(head.plan);
  std::vector<Op> ops;
  for (const auto& c : doc.at("cases"))
    ops.push_back({hex_field(c, "header"), hex_field(c, "sealed_body")});
  auto out = v.add(ops, {mine});
  EXPECT_EQ(out.accepted.size(), 2u);
  EXPECT_TRUE(out.problems.empty());
}

TEST(SyncVectors, MembershipEntriesReplay) {
  auto doc = test::load_json(test::own_vector_path("membership.json"));
  MembershipLog log(PlanId::parse(doc.at("plan").get<std::string>()));
  ASSERT_EQ(doc.at("cases").size(), 6u);
  for (const auto& c : doc.at("cases")) {
    SCOPED_TRACE(c.at("note").get<std::string>());
    auto e = MembershipEntry::parse(hex_field(c, "entry"));
    EXPECT_EQ(static_cast<int>(e.kind), c.at("kind").get<int>());
    EXPECT_EQ(crypto::to_hex(e.body()), c.at("body"));
    EXPECT_EQ(crypto::to_hex(e.serialize()), c.at("entry"));
    EXPECT_EQ(crypto::to_hex(e.hash()), c.at("hash"));
    ASSERT_NO_THROW(log.append(e));
  }
  auto nurse = AccountId::parse(doc.at("nurse_account").get<std::string>());
  EXPECT_EQ(log.permission(nurse, Section::parse("health")), Permission::kNone);
  EXPECT_EQ(log.epoch(Section::parse("health")), 2u);
  EXPECT_EQ(log.permission(nurse, Section::parse("health"), 4), Permission::kWrite);
  EXPECT_EQ(crypto::to_hex(section_key_context(log.plan(), Section::parse("health"), 2)),
            doc.at("section_key_context"));
  // The invite key is derived from the invite secret as documented.
  auto ik = invite_key_from_secret(hex_field(doc, "invite_secret"));
  auto invite = MembershipEntry::parse(hex_field(doc.at("cases")[1], "entry"));
  EXPECT_EQ(crypto::to_hex(ik.public_key().bytes()), crypto::to_hex(invite.invite_key));
}

TEST(SyncVectors, SectionChecksums) {
  auto doc = test::load_json(test::own_vector_path("section_digests.json"));
  EXPECT_EQ(crypto::to_hex(SectionDigest{}.digest), doc.at("empty_digest"));
  ASSERT_EQ(doc.at("cases").size(), 2u);
  for (const auto& c : doc.at("cases")) {
    SCOPED_TRACE(c.at("note").get<std::string>());
    // The ops in server order: each section's digest moves on with its own ops only.
    std::map<std::string, SectionDigest> sums;
    for (const auto& op : c.at("ops")) {
      OpHash hash{};
      Bytes bytes = hex_field(op, "op_hash");
      ASSERT_EQ(bytes.size(), hash.size());
      std::copy(bytes.begin(), bytes.end(), hash.begin());
      SectionDigest& d = sums[op.at("section").get<std::string>()];
      const crypto::Hash before = d.digest;
      d.add(hash);
      EXPECT_EQ(crypto::to_hex(d.digest), op.at("digest"));
      EXPECT_EQ(next_section_digest(before, hash), d.digest);
    }
    ASSERT_EQ(sums.size(), c.at("checksums").size());
    for (const auto& sum : c.at("checksums")) {
      const SectionDigest& d = sums.at(sum.at("section").get<std::string>());
      EXPECT_EQ(d.op_count, sum.at("op_count").get<std::uint64_t>());
      EXPECT_TRUE(d.matches(sum.at("op_count").get<std::uint64_t>(), hex_field(sum, "digest")));
      // One bit, one op more or less, or a byte short is another checksum.
      Bytes other = hex_field(sum, "digest");
      other[31] ^= 0x80;
      EXPECT_FALSE(d.matches(d.op_count, other));
      EXPECT_FALSE(d.matches(d.op_count + 1, hex_field(sum, "digest")));
      other = hex_field(sum, "digest");
      other.pop_back();
      EXPECT_FALSE(d.matches(d.op_count, other));
    }
  }
}

}  // namespace
}  // namespace kith::sync
