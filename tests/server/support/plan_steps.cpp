#include "support/plan_steps.hpp"

#include <gtest/gtest.h>

namespace kith::test {
namespace {
std::string str(crypto::ByteView b) { return std::string(b.begin(), b.end()); }
}  // namespace

std::uint64_t wall_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

void admit_member(TestDevice& owner, TestDevice& member, const sync::PlanId& plan,
                  const std::vector<sync::GrantSpec>& grants) {
  using Kind = sync::MembershipEntry::Kind;
  sync::MembershipLog log = owner.engine->membership(plan);
  crypto::Bytes secret(32);
  crypto::random_fill(secret.data(), secret.size());
  const auto invite_key = sync::invite_key_from_secret(secret);
  auto invite = log.next(Kind::kInviteCreated, owner.device(), wall_ms());
  invite.invite_id = sync::OpId::random();
  invite.invite_key.assign(invite_key.public_key().bytes().begin(),
                           invite_key.public_key().bytes().end());
  invite.invite_expires_at_ms = wall_ms() + 3600 * 1000;
  invite.grants = grants;
  invite.sign(owner.secrets().device.signing);
  log.append(invite);
  auto join = log.next(Kind::kInviteAccepted, member.device(), wall_ms());
  join.invite_id = invite.invite_id;
  join.certificate = member.engine->identity().certificate;
  join.invite_signature = invite_key.sign(crypto::labels::kInviteJoin, join.invite_join_message());
  join.sign(member.secrets().device.signing);

  for (auto [device, entry] : {std::pair{&owner, &invite}, std::pair{&member, &join}}) {
    auto reply = device->request(message_with(0, [&](kith::v1::ClientMessage& m) {
      m.mutable_push_membership()->set_plan_id(str(plan.bytes()));
      m.mutable_push_membership()->add_entries(str(entry->serialize()));
    }));
    ASSERT_TRUE(reply.has_push_ack()) << device->name << ": " << reply.DebugString();
  }
}

FetchLogPages fetch_whole_log(TestDevice& device, const sync::PlanId& plan, std::uint32_t page) {
  FetchLogPages out;
  std::uint64_t after = 0;
  for (;;) {
    auto reply = device.request(message_with(0, [&](kith::v1::ClientMessage& m) {
      m.mutable_fetch_log()->set_plan_id(str(plan.bytes()));
      m.mutable_fetch_log()->set_after(after);
      m.mutable_fetch_log()->set_limit(page);
    }));
    if (reply.has_error()) {
      out.error = reply.error();
      return out;
    }
    EXPECT_TRUE(reply.has_access_log()) << reply.DebugString();
    ++out.pages;
    const auto& log = reply.access_log();
    EXPECT_LE(log.entries_size(), static_cast<int>(page));
    for (const auto& e : log.entries()) out.entries.push_back(e);
    if (!log.more()) return out;
    EXPECT_GT(log.next_after(), after);
    if (log.next_after() <= after) return out;
    after = log.next_after();
  }
}

}  // namespace kith::test
