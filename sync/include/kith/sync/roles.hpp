// Role presets: the grants a role stands for (issue 5, DESIGN.md §2.2). A preset is a convenience
// over explicit grants: the invitation and the log hold the grants, never the role's name, so a
// preset changed in a later version changes nothing already granted.
//
// Plain values; thread-safe.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "kith/sync/membership.hpp"

namespace kith::sync {

enum class Role { kFamily, kNurse, kProvider, kSocialWorker };

// "family", "nurse", "provider", "social-worker"; nullopt for any other text.
std::optional<Role> parse_role(std::string_view text) noexcept;
std::string_view role_name(Role role) noexcept;

// The grants of `role`, each with `expires_at_ms` (0: none), in section order.
//   family:        profile, outcomes, support, activity, circle: read; notes: append
//   nurse:         profile, risk, support: read; health: write; activity, notes: append
//   provider:      profile, support, risk, outcomes: read; activity: append
//   social-worker: every known section but names: read; assessment, budget, outcomes, support:
//                  write;
//                  circle: manage
std::vector<GrantSpec> role_grants(Role role, std::uint64_t expires_at_ms = 0);

// The preset whose grants equal `grants` exactly (expiry and the `names` section aside), if
// any: what `kith members` shows next to them.
std::optional<Role> role_of(const std::vector<GrantSpec>& grants);

}  // namespace kith::sync
