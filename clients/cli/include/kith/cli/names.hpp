// Names for the members of a plan as this device's person knows them: "Nia" rather than
// "member 3fa2c1d0". Each person names their circle for themselves (`kith name`, or
// `kith invite --name` for whoever accepts that invitation). Names are sealed in the local store
// and never sent anywhere: neither the server nor the other members see them.
//
//   auto names = MemberNames::load(device.store(), plan, engine.membership(plan));
//   NameOf who = name_of(device.info(), names);   // who(account) -> "Nia", "you (Jo)", ...
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "kith/cli/home.hpp"
#include "kith/cli/render.hpp"
#include "kith/sync/engine.hpp"
#include "kith/sync/local_store.hpp"
#include "kith/sync/membership.hpp"

namespace kith::cli {

struct MemberNames {
  std::map<sync::AccountId, std::string> by_account;

  // The names stored for `plan`; a named invitation's name goes to whoever accepted it (by the
  // plan's log) unless that account has a name of its own.
  static MemberNames load(const sync::LocalStore& store, const sync::PlanId& plan,
                          const sync::MembershipLog& log);
  const std::string* find(const sync::AccountId& account) const;
  // The account `name` (any case) stands for, or nullopt.
  std::optional<sync::AccountId> account_named(std::string_view name) const;
};

// Throws CliError(bad_name, usage) for an empty name, one over 64 bytes, one with control
// characters, or one of hex digits only (it would read as an account id).
void check_name(std::string_view name);

// MEMBER as a person gives it in `plan`: an account id, its start, or a name this device gave
// them (resolve_member with this device's names). Throws as resolve_member.
sync::AccountId resolve_member_here(const sync::LocalStore& store, const sync::SyncEngine& engine,
                                    const sync::PlanId& plan, std::string_view ref);

// Calls the member `member_ref` (account id, its start, or their current name) `name` in
// `plan` on this device: check_name, then CliError(usage) for this account itself and
// CliError(name_taken) for a name another member has here. Returns the member.
sync::AccountId name_member(sync::LocalStore& store, const sync::SyncEngine& engine,
                            const sync::PlanId& plan, std::string_view member_ref,
                            std::string_view name);

// Who an account is, for people: "you" / "you (Jo)", the member's name, else "member 3fa2c1d0".
NameOf name_of(const DeviceInfo& me, MemberNames names);

}  // namespace kith::cli
