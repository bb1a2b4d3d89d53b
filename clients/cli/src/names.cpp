#include "kith/cli/names.hpp"

#include <algorithm>
#include <cctype>

#include "kith/cli/circle.hpp"
#include "kith/cli/error.hpp"
#include "kith/cli/refs.hpp"
#include "kith/sync/error.hpp"
#include "kith/sync/record_types.hpp"

namespace kith::cli {

MemberNames MemberNames::load(const sync::LocalStore& store, const sync::SyncEngine& engine,
                              const sync::PlanId& plan) {
  MemberNames out;
  std::map<sync::OpId, std::string> invitations;
  for (auto& [subject, name] : store.names(plan)) {
    if (subject.size() == sync::AccountId::kSize) {
      out.given[sync::AccountId::from_bytes(subject)] = std::move(name);
    } else if (subject.size() == sync::OpId::kSize) {
      invitations[sync::OpId::from_bytes(subject)] = std::move(name);
    }
  }
  for (const auto& [id, invite] : engine.membership(plan).invites()) {
    auto named = invitations.find(id);
    if (named == invitations.end() || !invite.accepted_by) continue;
    out.given.try_emplace(*invite.accepted_by, named->second);
  }
  for (auto& [account, name] : engine.shared_names(plan)) {
    out.given.try_emplace(account, std::move(name));
  }
  std::map<std::string, int> alike;
  for (const auto& [account, name] : out.given) ++alike[lower(name)];
  for (const auto& [account, name] : out.given) {
    out.by_account[account] =
        alike[lower(name)] > 1 ? name + " (" + account.short_hex() + ")" : name;
  }
  return out;
}

const std::string* MemberNames::find(const sync::AccountId& account) const {
  auto it = by_account.find(account);
  return it == by_account.end() ? nullptr : &it->second;
}

std::vector<sync::AccountId> MemberNames::accounts_named(std::string_view name) const {
  const std::string want = lower(name);
  std::vector<sync::AccountId> out;
  for (const auto& [account, n] : given) {
    if (lower(n) == want || lower(by_account.at(account)) == want) out.push_back(account);
  }
  return out;
}

void check_name(std::string_view name) {
  if (auto bad = sync::check_member_name(name)) {
    throw CliError(Exit::kUsage, "bad_name", "that name " + *bad);
  }
}

sync::AccountId resolve_member_here(const sync::LocalStore& store, const sync::SyncEngine& engine,
                                    const sync::PlanId& plan, std::string_view ref) {
  const MemberNames names = MemberNames::load(store, engine, plan);
  return resolve_member(engine.membership(plan), ref, &names);
}

sync::AccountId name_member(sync::LocalStore& store, sync::SyncEngine& engine,
                            const sync::PlanId& plan, std::string_view member_ref,
                            std::string_view name) {
  check_name(name);
  const MemberNames known = MemberNames::load(store, engine, plan);
  const sync::AccountId member = resolve_member(engine.membership(plan), member_ref, &known);
  for (const sync::AccountId& other : known.accounts_named(name)) {
    if (other == member) continue;
    throw CliError(Exit::kUsage, "name_taken",
                   "member " + other.short_hex() + " is already called '" + std::string(name) +
                       "' here; choose another name");
  }
  if (member == engine.identity().account()) {
    try {
      engine.share_name(plan, name);
    } catch (const sync::SyncError& e) {
      if (e.code() == sync::SyncErrorCode::kForbidden) {
        throw CliError(Exit::kFailed, "forbidden",
                       "you may not share a name in this plan: someone who manages it must give "
                       "you names:append",
                       "they run `kith grant PLAN " + member.short_hex() + " names:append`");
      }
      if (e.code() == sync::SyncErrorCode::kUnknownEpoch) {
        throw CliError(Exit::kFailed, "unknown_epoch",
                       "this device has no key for the plan's names yet; sync first",
                       "run `kith sync`");
      }
      throw;
    }
    return member;
  }
  store.set_name(plan, member.bytes(), name);
  return member;
}

NameOf name_of(const DeviceInfo& me, MemberNames names) {
  return [me_hex = me.account, my_name = me.name,
          names = std::move(names)](const sync::AccountId& a) -> std::string {
    if (a.hex() == me_hex) return my_name.empty() ? std::string("you") : "you (" + my_name + ")";
    if (const std::string* n = names.find(a)) return *n;
    return "member " + a.short_hex();
  };
}

}  // namespace kith::cli
