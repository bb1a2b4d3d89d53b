#include "kith/cli/names.hpp"

#include <algorithm>
#include <cctype>

#include "kith/cli/circle.hpp"
#include "kith/cli/error.hpp"
#include "kith/cli/refs.hpp"

namespace kith::cli {

MemberNames MemberNames::load(const sync::LocalStore& store, const sync::PlanId& plan,
                              const sync::MembershipLog& log) {
  MemberNames out;
  std::map<sync::OpId, std::string> invitations;
  for (auto& [subject, name] : store.names(plan)) {
    if (subject.size() == sync::AccountId::kSize) {
      out.by_account[sync::AccountId::from_bytes(subject)] = std::move(name);
    } else if (subject.size() == sync::OpId::kSize) {
      invitations[sync::OpId::from_bytes(subject)] = std::move(name);
    }
  }
  for (const auto& [id, invite] : log.invites()) {
    auto named = invitations.find(id);
    if (named == invitations.end() || !invite.accepted_by) continue;
    out.by_account.try_emplace(*invite.accepted_by, named->second);
  }
  return out;
}

const std::string* MemberNames::find(const sync::AccountId& account) const {
  auto it = by_account.find(account);
  return it == by_account.end() ? nullptr : &it->second;
}

std::optional<sync::AccountId> MemberNames::account_named(std::string_view name) const {
  const std::string want = lower(name);
  for (const auto& [account, n] : by_account) {
    if (lower(n) == want) return account;
  }
  return std::nullopt;
}

void check_name(std::string_view name) {
  auto bad = [&](const std::string& why) {
    throw CliError(Exit::kUsage, "bad_name", "that name " + why);
  };
  if (name.empty()) bad("is empty");
  if (name.size() > 64) bad("is longer than 64 bytes");
  if (std::any_of(name.begin(), name.end(),
                  [](unsigned char c) { return c < 0x20 || c == 0x7f; })) {
    bad("has control characters in it");
  }
  if (is_hex(name)) {
    bad("is all hex digits, so it would read as an account id; add a letter past f or a space");
  }
}

sync::AccountId resolve_member_here(const sync::LocalStore& store, const sync::SyncEngine& engine,
                                    const sync::PlanId& plan, std::string_view ref) {
  const auto& log = engine.membership(plan);
  const MemberNames names = MemberNames::load(store, plan, log);
  return resolve_member(log, ref, &names);
}

sync::AccountId name_member(sync::LocalStore& store, const sync::SyncEngine& engine,
                            const sync::PlanId& plan, std::string_view member_ref,
                            std::string_view name) {
  check_name(name);
  const auto& log = engine.membership(plan);
  const MemberNames known = MemberNames::load(store, plan, log);
  const sync::AccountId member = resolve_member(log, member_ref, &known);
  if (member == engine.identity().account()) {
    throw CliError(Exit::kUsage, "usage",
                   "that is you; your own name is the one `kith init --name` was given");
  }
  if (auto other = known.account_named(name); other && *other != member) {
    throw CliError(Exit::kUsage, "name_taken",
                   "member " + other->short_hex() + " is already called '" + std::string(name) +
                       "' here; choose another name");
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
