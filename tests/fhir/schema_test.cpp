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
  for (const auto& c : every_record_type()) p.add(c.type, c.fields);
  p.add("outcome", {});
  p.add("activity", {{"kind", "medication-prompt"}, {"text", "Done"}}, p.nurse);
  p.add("note", {{"text", "Came for tea"}}, p.family);
  p.edit(p.records[1], "status", "achieved", p.family, kT0 + 1000);
  p.add("contact", {{"name", "Lunch club"}, {"kind", "community-asset"}, {"text", "Tuesdays"}});
  p.add("contact", {{"name", "GP surgery"}, {"kind", "service"}});
  p.add("budget", {{"amount", "120.50"}, {"band", "7"}});
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
