// The account -> plans index (storage.hpp, AccountPlan) as a plan's membership log defines it.
//
// kithd answers ListPlans from this index rather than replaying every plan's log per request.
// The rows are derived here, in one place, for the two writers: SyncService::push_membership
// (the rows an accepted push changes, committed with its entries) and the schema migration that
// builds the index from the entries a database already holds. An account is in a plan's index
// while it is the owner, or holds a grant of at least `read` on some section that no revocation
// removed. Expiry keeps the row (with expires_at_ms), since the owner may extend the grant and
// the member should learn why nothing new arrives; the server's clock decides at read time.
//
// Pure functions of their arguments; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "kith/sync/membership.hpp"
#include "storage.hpp"

namespace kith::server {

// The row of `account` in the plan of `log`, or nullopt when it is not a member there.
// `created_at_ms`: the at_ms of the plan's first entry.
std::optional<AccountPlan> plan_index_row(const sync::MembershipLog& log, const AccountId& account,
                                          std::uint64_t created_at_ms);

// Every row of the plan of `log`, in ascending account order.
std::vector<AccountPlan> plan_index_rows(const sync::MembershipLog& log,
                                         std::uint64_t created_at_ms);

// The accounts whose row `entry` may change: the certified identity of a plan-created,
// device-added or invite-accepted entry, the member of a grant or revocation; none otherwise.
std::vector<AccountId> accounts_named(const sync::MembershipEntry& entry);

// Adds to `batch` the index rows to put or drop after `added` was appended to the plan's log,
// which is now `log` (the rows of every account the entries name, as `log` has them).
void add_plan_index_changes(const sync::MembershipLog& log,
                            std::span<const sync::MembershipEntry> added,
                            std::uint64_t created_at_ms, WriteBatch& batch);

}  // namespace kith::server
