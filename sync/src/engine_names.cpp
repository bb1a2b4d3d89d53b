// SyncEngine: the names members share with their circle (the `names` section).
//
// A person's name travels like everything else in a plan: as an op, sealed under a section key
// the server never holds. Every invitation made by a manager of `names` adds `names: append`
// (invite()), so each member may write their own `member` record there and read everyone's;
// revoking a member rotates that key like any other. The server sees only that a `names` op was
// stored.
#include <algorithm>

#include "engine_plan.hpp"
#include "kith/sync/error.hpp"
#include "kith/sync/record_types.hpp"

namespace kith::sync {
namespace {

const Section& names_section() {
  static const Section s = Section::parse(kNamesSection);
  return s;
}

}  // namespace

std::vector<GrantSpec> SyncEngine::with_names_grant(const Plan& p,
                                                    std::vector<GrantSpec> grants) const {
  const Section& names = names_section();
  if (grants.empty() || p.log.permission(me_.account(), names, {}, now_ms_()) < Permission::kManage) {
    return grants;
  }
  // The member shares their name for as long as any of their grants lasts.
  std::uint64_t expires = 0;
  bool forever = false;
  for (const GrantSpec& g : grants) {
    if (g.section == names) continue;
    if (g.expires_at_ms == 0) forever = true;
    expires = std::max(expires, g.expires_at_ms);
  }
  auto it = std::find_if(grants.begin(), grants.end(),
                         [&](const GrantSpec& g) { return g.section == names; });
  if (it == grants.end()) {
    grants.push_back(GrantSpec{names, Permission::kAppend, forever ? 0 : expires});
    std::sort(grants.begin(), grants.end(),
              [](const GrantSpec& a, const GrantSpec& b) { return a.section < b.section; });
  } else if (it->permission < Permission::kAppend) {
    it->permission = Permission::kAppend;
  }
  return grants;
}

std::vector<Section> SyncEngine::keep_names_grant_in_step(Plan& p, const AccountId& member) {
  const Section& names = names_section();
  if (p.log.permission(me_.account(), names) < Permission::kManage) return {};
  std::optional<GrantSpec> held;
  std::vector<GrantSpec> others;
  for (const MemberView& m : p.log.members()) {
    if (m.account != member || m.owner) continue;
    for (const auto& [s, g] : m.grants) {
      if (g.permission == Permission::kNone) continue;
      if (s == names) {
        held = g;
      } else {
        others.push_back(g);
      }
    }
  }
  if (!held) return {};
  // Someone left with no other access no longer shares names with the circle.
  if (others.empty()) return revoke(p.id, member, names);
  // Only a names grant an invitation gave (append) follows; one a manager set otherwise stays.
  if (held->permission != Permission::kAppend) return {};
  for (const GrantSpec& g : with_names_grant(p, others)) {
    if (g.section == names && g.expires_at_ms != held->expires_at_ms) grant(p.id, member, g);
  }
  return {};
}

void SyncEngine::share_name_as(std::string name) {
  if (!name.empty()) {
    if (auto bad = check_member_name(name)) {
      throw SyncError(SyncErrorCode::kInvalidField, "that name " + *bad);
    }
  }
  shared_name_ = std::move(name);
}

void SyncEngine::share_name_if_unshared(Plan& p) {
  if (shared_name_.empty()) return;
  const Section& names = names_section();
  if (p.log.permission(me_.account(), names, {}, now_ms_()) < Permission::kAppend) return;
  if (!key_for(p, names, p.log.epoch(names))) return;
  for (const RecordView& r : p.state.records(names, /*include_deleted=*/true)) {
    if (r.created_by == me_.account() && r.type == kMemberNameType) return;
  }
  add_record(p.id, kMemberNameType, {{"name", shared_name_}});
}

void SyncEngine::share_name(const PlanId& plan, std::string_view name) {
  Plan& p = plan_ref(plan);
  if (auto bad = check_member_name(name)) {
    throw SyncError(SyncErrorCode::kInvalidField, "that name " + std::string(*bad));
  }
  std::optional<RecordView> mine;
  for (RecordView& r : p.state.records(names_section())) {
    if (r.created_by != me_.account() || r.type != kMemberNameType) continue;
    if (!mine || mine->created_at < r.created_at) mine = std::move(r);
  }
  if (mine) {
    set_fields(plan, mine->id, {{"name", std::string(name)}});
  } else {
    add_record(plan, kMemberNameType, {{"name", std::string(name)}});
  }
}

std::map<AccountId, std::string> SyncEngine::shared_names(const PlanId& plan) const {
  return sync::shared_names(plan_ref(plan).state);
}

}  // namespace kith::sync
