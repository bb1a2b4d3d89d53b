// Names for the members of a plan: "Nia" rather than "member 3fa2c1d0". Two sources, the first
// winning:
//   - the name this device's person gave a member (`kith name`, or `kith invite --name` for
//     whoever accepts that invitation), sealed in the local store and never sent anywhere;
//   - the name the member shares with the circle (`kith init --name`, sealed in the plan's
//     `names` section: SyncEngine::shared_names), which they chose themselves.
// Two members called alike both show the start of their account id after the name, so a member
// cannot pass for another by taking their name.
//
//   auto names = MemberNames::load(device.store(), engine, plan);
//   NameOf who = name_of(device.info(), names);   // who(account) -> "Nia", "you (Jo)", ...
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kith/cli/home.hpp"
#include "kith/cli/render.hpp"
#include "kith/sync/engine.hpp"
#include "kith/sync/local_store.hpp"
#include "kith/sync/membership.hpp"

namespace kith::cli {

struct MemberNames {
  // What each named member is called here (with their account id's start when another member
  // is called alike).
  std::map<sync::AccountId, std::string> by_account;
  // The names as given, for matching what a person types.
  std::map<sync::AccountId, std::string> given;

  // The names stored for `plan` (a named invitation's name goes to whoever accepted it, by the
  // plan's log, unless that account has a name of its own), then the names members share.
  static MemberNames load(const sync::LocalStore& store, const sync::SyncEngine& engine,
                          const sync::PlanId& plan);
  const std::string* find(const sync::AccountId& account) const;
  // The accounts `name` (any case) stands for: as given, or as shown.
  std::vector<sync::AccountId> accounts_named(std::string_view name) const;
};

// Throws CliError(bad_name, usage) for a name sync::check_member_name refuses (empty, over 64
// bytes, control or direction-changing characters, not UTF-8).
void check_name(std::string_view name);

// MEMBER as a person gives it in `plan`: an account id, its start, or a name this device gave
// them (resolve_member with this device's names). Throws as resolve_member.
sync::AccountId resolve_member_here(const sync::LocalStore& store, const sync::SyncEngine& engine,
                                    const sync::PlanId& plan, std::string_view ref);

// Calls the member `member_ref` (account id, its start, or their current name) `name` in
// `plan` on this device: check_name, then CliError(name_taken) for a name another member has
// here. For this account itself, changes the name it shares in the plan instead
// (SyncEngine::share_name; CliError(forbidden) when it may not). Returns the member.
sync::AccountId name_member(sync::LocalStore& store, sync::SyncEngine& engine,
                            const sync::PlanId& plan, std::string_view member_ref,
                            std::string_view name);

// Who an account is, for people: "you" / "you (Jo)", the member's name, else "member 3fa2c1d0".
NameOf name_of(const DeviceInfo& me, MemberNames names);

}  // namespace kith::cli
