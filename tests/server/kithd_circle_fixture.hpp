// The circle-of-support fixture shared by the kithd circle and recovery tests: an owner's plan
// with a record in every section, people joining with role presets, and what each device sees.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "kith/sync/invite.hpp"
#include "kith/sync/roles.hpp"
#include "kithd_test_fixture.hpp"
#include "support/plan_steps.hpp"

namespace kith::test {

using sync::GrantSpec;
using sync::InviteCode;
using sync::Permission;
using sync::Role;
using sync::Section;
using sync::SyncErrorCode;

constexpr std::uint64_t kWeek = 7ull * 24 * 3600 * 1000;

inline crypto::Bytes str_bytes(const std::string& s) { return crypto::Bytes(s.begin(), s.end()); }

// The sections of the records a device can see in the plan.
inline std::set<std::string> sections_seen(TestDevice& d, const sync::PlanId& plan) {
  std::set<std::string> out;
  for (const auto& r : d.engine->state(plan).records()) out.insert(r.section.name());
  return out;
}

// The text of every record a device holds in one section.
inline std::vector<std::string> texts(TestDevice& d, const sync::PlanId& plan, std::string_view section) {
  std::vector<std::string> out;
  for (const auto& r : d.engine->state(plan).records(Section::parse(section))) {
    auto f = r.fields.find("text");
    out.push_back(f == r.fields.end() ? "" : f->second.value);
  }
  std::sort(out.begin(), out.end());
  return out;
}

inline std::vector<SyncErrorCode> problem_codes(const TestDevice& d) {
  std::vector<SyncErrorCode> out;
  for (const auto& e : d.events) {
    if (e.kind == sync::SyncEvent::Kind::kProblem) out.push_back(e.code);
  }
  return out;
}

class KithdCircleTest : public KithdTest {
 protected:
  // The owner's plan with one record in every section, synced.
  void owner_with_full_plan() {
    owner = std::make_unique<TestDevice>(dir.path(), "owner");
    owner->connect(*server);
    plan = owner->engine->create_plan("Mary's support plan");
    auto& e = *owner->engine;
    e.add_record(plan, "profile", {{"text", "Mary, retired teacher"}});
    e.add_record(plan, "outcome", {{"text", "Walk to the shop each week"}});
    e.add_record(plan, "support", {{"text", "Morning visit, 8am"}});
    e.add_record(plan, "activity", {{"text", "Visit by owner"}});
    e.add_record(plan, "note", {{"text", "Prefers tea to coffee"}});
    e.add_record(plan, "risk", {{"text", "Falls on the stairs"}});
    e.add_record(plan, "health", {{"text", "Metformin 500 mg"}});
    e.add_record(plan, "assessment", {{"text", "Care Act assessment"}});
    e.add_record(plan, "budget", {{"text", "Indicative budget"}});
    e.add_record(plan, "contact", {{"text", "Neighbour Joan"}});
    ASSERT_TRUE(owner->sync(plan).empty());
  }

  // A new person who joins with an invitation of `role` made by the owner.
  std::unique_ptr<TestDevice> invite_and_join(const std::string& name, Role role) {
    InviteCode code =
        owner->engine->invite(plan, sync::role_grants(role), sync_now() + kWeek);
    EXPECT_TRUE(owner->sync(plan).empty());
    auto person = std::make_unique<TestDevice>(dir.path(), name);
    person->connect(*server);
    auto errors = person->join(code, "Mary's plan");
    EXPECT_TRUE(errors.empty()) << name << ": " << (errors.empty() ? "" : errors[0].message());
    EXPECT_TRUE(problem_codes(*person).empty()) << name;
    return person;
  }

  static std::uint64_t sync_now() { return wall_ms(); }
};

}  // namespace kith::test
