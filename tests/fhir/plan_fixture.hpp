// Plans made by hand for kith_fhir's tests: records as PlanState::records() gives them and
// members as MembershipLog::members() does, without an engine, so each test says exactly what
// the plan holds.
//
//   PlanFixture p;
//   auto& goal = p.add("outcome", {{"text", "Walk to the shop"}, {"status", "in-progress"}});
//   p.edit(goal, "status", "achieved", p.family, kT0 + 60'000);
//   nlohmann::json bundle = p.exported();
#pragma once

#include <cstdint>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "kith/fhir/bundle.hpp"
#include "kith/sync/record_types.hpp"
#include "kith/sync/roles.hpp"

namespace kith::test {

inline constexpr std::uint64_t kT0 = 1'767'261'600'000;  // 2026-01-01T10:00:00Z

template <class Id>
Id id_of(std::uint8_t n) {
  return Id::from_bytes(crypto::Bytes(Id::kSize, n));
}

struct PlanFixture {
  sync::PlanId plan = id_of<sync::PlanId>(7);
  sync::AccountId owner = id_of<sync::AccountId>(1);
  sync::AccountId family = id_of<sync::AccountId>(2);
  sync::AccountId nurse = id_of<sync::AccountId>(3);
  std::deque<sync::RecordView> records;  // stable references for edit()
  std::vector<sync::MemberView> members;
  std::map<sync::AccountId, std::string> names;  // the names members share
  std::uint64_t now_ms = kT0 + 86'400'000;

  PlanFixture() { members.push_back({owner, true, {id_of<sync::DeviceId>(11)}, {}}); }

  sync::RecordView& add(const std::string& type, const fhir::Fields& fields,
                        std::optional<sync::AccountId> by = std::nullopt, std::uint64_t at = kT0) {
    sync::RecordView r;
    r.id = id_of<sync::RecordId>(static_cast<std::uint8_t>(records.size() + 1));
    r.type = type;
    const sync::RecordType* t = sync::find_record_type(type);
    r.section = sync::Section::parse(t ? t->section : "budget");
    r.created_by = by.value_or(owner);
    r.created_on = id_of<sync::DeviceId>(11);
    r.created_at = sync::Hlc{at, 0};
    records.push_back(r);
    for (const auto& [f, v] : fields) edit(records.back(), f, v, r.created_by, at);
    return records.back();
  }

  void edit(sync::RecordView& r, const std::string& field, const std::string& value,
            const sync::AccountId& by, std::uint64_t at) {
    sync::FieldCandidate c{
        {id_of<sync::OpId>(9), 0}, value, sync::Hlc{at, 0}, id_of<sync::DeviceId>(12), by};
    r.fields[field] = sync::FieldView{value, c.version, {c}};
  }

  // A member with `grants` (section, permission, expiry).
  void member(const sync::AccountId& who, std::vector<sync::GrantSpec> grants) {
    sync::MemberView m{who, false, {id_of<sync::DeviceId>(20 + who.bytes()[0])}, {}};
    for (auto& g : grants) m.grants.emplace(g.section, g);
    members.push_back(std::move(m));
  }

  fhir::ExportInput input() const {
    return {plan,  "Ada's plan", {records.begin(), records.end()}, members, owner, "Ada",
            now_ms, names};
  }
  // The bundle as a file holds it (what import reads).
  nlohmann::json exported() const {
    return nlohmann::json::parse(fhir::export_bundle(input()).dump());
  }
};

inline sync::GrantSpec grant(const char* section, sync::Permission p, std::uint64_t expires = 0) {
  return {sync::Section::parse(section), p, expires};
}

// Every record type with every field it knows, each with a valid value.
struct TypeCase {
  const char* type;
  const char* resource_type;
  fhir::Fields fields;
};
inline const std::vector<TypeCase>& every_record_type() {
  static const std::vector<TypeCase> cases = {
      {"profile",
       "Patient",
       {{"text", "Ada"},
        {"about_me", "Retired teacher"},
        {"what_matters", "My garden"},
        {"communication", "Hearing aid, left ear"},
        {"date_of_birth", "1941-03-02"}}},
      {"outcome",
       "Goal",
       {{"text", "Walk to the shop"},
        {"status", "in-progress"},
        {"target_date", "2026-06-01"},
        {"review_date", "2026-03-01"}}},
      {"support",
       "CarePlan",
       {{"text", "Help with shopping"},
        {"who", "Nia"},
        {"when", "Mondays"},
        {"time", "09:30"},
        {"cost", "12.50"},
        {"start_date", "2026-01-05"},
        {"end_date", "2026-12-31"},
        {"status", "active"}}},
      {"activity",
       "Observation",
       {{"text", "Visit done"}, {"kind", "visit"}, {"at", "2026-01-05T09:30"}, {"mood", "bright"}}},
      {"note", "Communication", {{"text", "Called the GP"}, {"at", "2026-01-06T10:00"}}},
      {"risk",
       "RiskAssessment",
       {{"text", "Falls at night"},
        {"level", "medium"},
        {"review_date", "2026-02-01"},
        {"crisis_plan", "Call Nia, then 999"}}},
      {"health",
       "Condition",
       {{"text", "Type 2 diabetes"},
        {"medicine", "Metformin"},
        {"dose", "500 mg"},
        {"time", "08:00"},
        {"start_date", "2020-01-01"}}},
      {"contact",
       "RelatedPerson",
       {{"text", "Daughter"},
        {"name", "Nia Jones"},
        {"kind", "person"},
        {"phone", "07700 900123"}}},
      {"assessment",
       "QuestionnaireResponse",
       {{"text", "Needs a frame"},
        {"domain", "mobility"},
        {"score", "3"},
        {"status", "approved"},
        {"date", "2026-01-02"}}},
      {"budget",
       "Observation",
       {{"text", "Indicative budget"}, {"amount", "120.50"}, {"date", "2026-01-10"}}},
  };
  return cases;
}

// The resources of `bundle` of one type, in order.
inline std::vector<nlohmann::json> resources(const nlohmann::json& bundle,
                                             const std::string& type) {
  std::vector<nlohmann::json> out;
  for (const auto& e : bundle["entry"]) {
    if (e["resource"]["resourceType"] == type) out.push_back(e["resource"]);
  }
  return out;
}

// The value of the Kith field extension `name` of `resource`, or "".
inline std::string field_extension(const nlohmann::json& resource, const std::string& name) {
  for (const auto& e : resource.value("extension", nlohmann::json::array())) {
    if (e["url"] == "https://kith.care/fhir/StructureDefinition/field" &&
        e["extension"][0]["valueString"] == name) {
      return e["extension"][1]["valueString"];
    }
  }
  return "";
}

}  // namespace kith::test
