// The export checked by a real validator: the official HL7 FHIR R4 JSON schema (draft-06) through
// python3-jsonschema (validate_fhir.py). Fails, never skips, without the schema or the validator.
#include <gtest/gtest.h>

#include <fstream>

#include "fhir_validator.hpp"
#include "plan_fixture.hpp"
#include "support/temp_dir.hpp"

namespace kith::test {
namespace {

using P = sync::Permission;

std::filesystem::path write(const TempDir& dir, const std::string& name, const std::string& text) {
  const auto path = dir / name;
  std::ofstream(path) << text;
  return path;
}

// A plan with every record type, members with role presets, expiring and expired grants, and
// edits by several people.
PlanFixture full_plan() {
  PlanFixture p;
  p.add("profile", {{"about_me", "Retired teacher"},
                    {"what_matters", "My garden"},
                    {"communication", "Hearing aid"},
                    {"date_of_birth", "1941-03-02"}});
  auto& goal = p.add("outcome", {{"text", "Walk to the shop"}, {"target_date", "2026-06-01"}});
  p.edit(goal, "status", "in-progress", p.family, kT0 + 1000);
  p.add("outcome", {});
  p.add("support", {{"text", "Shopping"},
                    {"who", "Nia"},
                    {"when", "Mondays"},
                    {"time", "09:30"},
                    {"cost", "12.50"},
                    {"start_date", "2026-01-05"},
                    {"end_date", "2026-12-31"},
                    {"status", "planned"}});
  p.add("activity", {{"kind", "medication-prompt"}, {"at", "2026-01-05T09:30"}, {"text", "Done"}},
        p.nurse);
  p.add("note", {{"text", "Came for tea"}, {"at", "2026-01-06T16:00"}}, p.family);
  p.add("risk", {{"text", "Falls"},
                 {"level", "low"},
                 {"crisis_plan", "Call Nia"},
                 {"review_date", "2026-02-01"}});
  p.add("health",
        {{"text", "Diabetes"},
         {"medicine", "Metformin"},
         {"dose", "500 mg"},
         {"time", "08:00"},
         {"start_date", "2020-01-01"}},
        p.nurse);
  p.add("contact", {{"name", "Nia"}, {"kind", "person"}, {"phone", "07700 900123"}});
  p.add("contact", {{"name", "Lunch club"}, {"kind", "community-asset"}, {"text", "Tuesdays"}});
  p.add("contact", {{"name", "GP surgery"}, {"kind", "service"}});
  p.add("assessment", {{"domain", "mobility"},
                       {"score", "3"},
                       {"status", "completed"},
                       {"date", "2026-01-02"},
                       {"text", "Needs a frame"}});
  p.add("budget", {{"amount", "120.50"}, {"date", "2026-01-10"}, {"band", "7"}, {"text", "RAS"}});
  p.add("budget", {{"amount", "300"}});
  p.member(p.family, sync::role_grants(sync::Role::kFamily, p.now_ms + 86'400'000));
  p.member(p.nurse, {grant("health", P::kWrite, p.now_ms - 1), grant("risk", P::kManage)});
  return p;
}

TEST(FhirSchema, ValidatorAndSchemaArePresent) {
  ASSERT_TRUE(std::filesystem::exists(KITH_FHIR_SCHEMA))
      << KITH_FHIR_SCHEMA << " is missing: deploy/fetch-fhir-schema.sh runs when CMake configures";
  TempDir dir("kith-fhir-schema");
  // Not a bare {"resourceType":"Patient"}: the package's schema also lists some of Medplum's own
  // element types in its top-level oneOf, and a bare object matches one of them as well.
  const auto run = validate_with_schema(write(
      dir, "patient.json", R"({"resourceType":"Patient","id":"a","birthDate":"1941-03-02"})"));
  EXPECT_EQ(run.status, 0) << run.output;
}

TEST(FhirSchema, ExportOfEveryKindOfRecordIsValidFhirR4) {
  TempDir dir("kith-fhir-schema");
  const PlanFixture p = full_plan();
  const auto run =
      validate_with_schema(write(dir, "plan.json", fhir::export_bundle(p.input()).dump(2)));
  EXPECT_EQ(run.status, 0) << run.output;
  expect_document_rules(p.exported());
}

TEST(FhirSchema, ExportOfAnEmptyPlanIsValidFhirR4) {
  TempDir dir("kith-fhir-schema");
  const PlanFixture p;
  const auto run =
      validate_with_schema(write(dir, "empty.json", fhir::export_bundle(p.input()).dump()));
  EXPECT_EQ(run.status, 0) << run.output;
}

// The validator is not vacuous: a bundle the schema forbids fails, naming where.
TEST(FhirSchema, ValidatorRefusesAnInvalidBundle) {
  TempDir dir("kith-fhir-schema");
  nlohmann::json b = full_plan().exported();
  for (auto& e : b["entry"]) {
    if (e["resource"]["resourceType"] == "Goal") e["resource"]["lifecycleStatus"] = "someday";
  }
  const auto run = validate_with_schema(write(dir, "bad.json", b.dump()));
  EXPECT_EQ(run.status, 1) << run.output;
  EXPECT_NE(run.output.find("lifecycleStatus"), std::string::npos) << run.output;
}

}  // namespace
}  // namespace kith::test
