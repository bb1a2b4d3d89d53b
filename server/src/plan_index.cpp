#include "plan_index.hpp"

#include <algorithm>
#include <set>

namespace kith::server {
namespace {

AccountId account_of(const crypto::DeviceCertificate& certificate) {
  return AccountId::from_bytes(certificate.identity().bytes());
}

// The row of a member (not the owner) as `view` shows it; nullopt without any grant.
std::optional<AccountPlan> member_row(const sync::MembershipLog& log, const sync::MemberView& view,
                                      std::uint64_t created_at_ms) {
  if (view.grants.empty()) return std::nullopt;  // never granted, or every section revoked
  // Access lasts while any grant does: the latest expiry, or never if one grant never expires.
  std::uint64_t latest = 0;
  bool never = false;
  for (const auto& [section, grant] : view.grants) {
    never |= grant.expires_at_ms == 0;
    latest = std::max(latest, grant.expires_at_ms);
  }
  const std::uint64_t expires_at_ms = never ? 0 : latest;
  return AccountPlan{view.account, log.plan(), false, *log.owner(), created_at_ms, expires_at_ms};
}

}  // namespace

std::optional<AccountPlan> plan_index_row(const sync::MembershipLog& log, const AccountId& account,
                                          std::uint64_t created_at_ms) {
  if (!log.owner()) return std::nullopt;  // an empty log: no plan yet
  if (*log.owner() == account) {
    return AccountPlan{account, log.plan(), true, account, created_at_ms, 0};
  }
  for (const sync::MemberView& view : log.members()) {
    if (view.account == account) return member_row(log, view, created_at_ms);
  }
  return std::nullopt;
}

std::vector<AccountPlan> plan_index_rows(const sync::MembershipLog& log,
                                         std::uint64_t created_at_ms) {
  std::vector<AccountPlan> out;
  if (!log.owner()) return out;
  bool owner_seen = false;
  for (const sync::MemberView& view : log.members()) {
    if (view.owner) {
      owner_seen = true;
      out.push_back({view.account, log.plan(), true, view.account, created_at_ms, 0});
    } else if (auto row = member_row(log, view, created_at_ms)) {
      out.push_back(std::move(*row));
    }
  }
  if (!owner_seen) out.push_back({*log.owner(), log.plan(), true, *log.owner(), created_at_ms, 0});
  std::sort(out.begin(), out.end(),
            [](const AccountPlan& a, const AccountPlan& b) { return a.account < b.account; });
  return out;
}

std::vector<AccountId> accounts_named(const sync::MembershipEntry& entry) {
  using Kind = sync::MembershipEntry::Kind;
  switch (entry.kind) {
    case Kind::kPlanCreated:
    case Kind::kDeviceAdded:
    case Kind::kInviteAccepted:
      if (entry.certificate) return {account_of(*entry.certificate)};
      return {};
    case Kind::kGrant:
    case Kind::kRevoke:
      return {entry.member};
    case Kind::kInviteCreated:
    case Kind::kKeyRotation:
      return {};
  }
  return {};
}

void add_plan_index_changes(const sync::MembershipLog& log,
                            std::span<const sync::MembershipEntry> added,
                            std::uint64_t created_at_ms, WriteBatch& batch) {
  std::set<AccountId> named;
  for (const sync::MembershipEntry& e : added) {
    for (const AccountId& a : accounts_named(e)) named.insert(a);
  }
  for (const AccountId& account : named) {
    if (auto row = plan_index_row(log, account, created_at_ms)) {
      batch.plan_index_put.push_back(std::move(*row));
    } else {
      batch.plan_index_drop.push_back(account);
    }
  }
}

}  // namespace kith::server
