// fhir::read_bundle: a bundle round-trips to the same records and fields; every malformed input
// is refused with its own stable code and a sentence naming what is wrong.
#include <gtest/gtest.h>

#include "kith/fhir/error.hpp"
#include "plan_fixture.hpp"

namespace kith::test {
namespace {

using nlohmann::json;

// Records as (type, sorted fields), sorted: what "the same records" means across plans (ids and
// authors are new in the imported plan).
using Content = std::vector<std::pair<std::string, fhir::Fields>>;

Content content(const std::vector<fhir::ImportedRecord>& records) {
  Content out;
  for (const auto& r : records) {
    auto f = r.fields;
    std::sort(f.begin(), f.end());
    out.emplace_back(r.type, f);
  }
  std::sort(out.begin(), out.end());
  return out;
}

PlanFixture rich_plan() {
  PlanFixture p;
  p.add("profile", {{"about_me", "Retired teacher"}, {"date_of_birth", "1941-03-02"}});
  p.add("outcome", {{"text", "Walk to the shop"}, {"status", "in-progress"}, {"note", "with Nia"}});
  p.add("support", {{"text", "Shopping"}, {"time", "09:30"}, {"cost", "12"}, {"status", "ended"}});
  p.add("activity", {{"kind", "meal"}, {"at", "2026-01-05T12:30"}, {"text", "Soup"}});
  p.add("note", {{"text", "Line one\nLine two, with \"quotes\" and ünïcode"}});
  p.add("risk", {{"level", "high"}, {"crisis_plan", "Call 999"}});
  p.add("health", {{"medicine", "Metformin"}, {"start_date", "2020-01-01"}});
  p.add("contact", {{"name", "Library"}, {"kind", "service"}, {"phone", "01234"}});
  p.add("assessment", {{"domain", "mobility"}, {"score", "3"}, {"status", "draft"}});
  p.add("budget", {{"amount", "0.10"}, {"band", "012"}});
  p.member(p.family, sync::role_grants(sync::Role::kFamily));
  return p;
}

template <class F>
fhir::FhirError error_of(F&& f) {
  try {
    f();
  } catch (const fhir::FhirError& e) {
    return e;
  }
  ADD_FAILURE() << "no FhirError";
  return fhir::FhirError("", "");
}

fhir::FhirError refusal(const json& bundle) {
  return error_of([&] { fhir::read_bundle(bundle.dump()); });
}

TEST(FhirImport, ExportImportExportGivesTheSameRecordsAndFields) {
  PlanFixture p = rich_plan();
  const auto first = fhir::read_bundle(p.exported().dump());
  EXPECT_EQ(first.title, "Ada's plan");
  EXPECT_EQ(first.members, 2u);   // owner and family: not recreated
  EXPECT_EQ(first.consents, 6u);  // the family preset's six grants
  Content want;
  for (const auto& r : p.records) {
    fhir::Fields f;
    for (const auto& [k, v] : r.fields) f.emplace_back(k, v.value);
    want.emplace_back(r.type, f);
  }
  std::sort(want.begin(), want.end());
  EXPECT_EQ(content(first.records), want);

  // The imported records as a new plan of someone else, exported again.
  PlanFixture again;
  again.plan = id_of<sync::PlanId>(9);
  again.owner = id_of<sync::AccountId>(5);
  for (const auto& r : first.records) again.add(r.type, r.fields, again.owner, kT0 + 5);
  const auto second = fhir::read_bundle(again.exported().dump());
  EXPECT_EQ(content(second.records), content(first.records));
}

TEST(FhirImport, EmptyFieldsAreLeftOut) {
  PlanFixture p;
  p.add("outcome", {{"text", "Walk"}, {"status", ""}});
  const auto back = fhir::read_bundle(p.exported().dump());
  EXPECT_EQ(back.records[0].fields, (fhir::Fields{{"text", "Walk"}}));
}

TEST(FhirImport, RefusesWhatIsNotJson) {
  const auto e = error_of([] { fhir::read_bundle("{\"resourceType\": \"Bundle\", oops"); });
  EXPECT_EQ(e.code(), "not_json");
  EXPECT_NE(std::string(e.what()).find("byte"), std::string::npos) << e.what();
}

TEST(FhirImport, RefusesWhatIsNotABundle) {
  EXPECT_EQ(refusal(json{{"resourceType", "Patient"}}).code(), "not_fhir_bundle");
  EXPECT_EQ(refusal(json::array()).code(), "not_fhir_bundle");
}

TEST(FhirImport, RefusesABundleThatIsNotADocument) {
  json b = rich_plan().exported();
  b["type"] = "collection";
  EXPECT_EQ(refusal(b).code(), "not_fhir_document");
}

TEST(FhirImport, RefusesADocumentThatDoesNotStartWithItsComposition) {
  json b = rich_plan().exported();
  std::swap(b["entry"][0], b["entry"][1]);
  EXPECT_EQ(refusal(b).code(), "composition_not_first");
  b["entry"] = json::array();
  EXPECT_EQ(refusal(b).code(), "composition_not_first");
}

TEST(FhirImport, RefusesASectionEntryThatIsNotInTheBundle) {
  json b = rich_plan().exported();
  b["entry"][0]["resource"]["section"][1]["entry"][0]["reference"] = "urn:uuid:nowhere";
  const auto e = refusal(b);
  EXPECT_EQ(e.code(), "unresolved_reference");
  EXPECT_NE(std::string(e.what()).find("urn:uuid:nowhere"), std::string::npos) << e.what();
}

TEST(FhirImport, RefusesASectionEntryWithoutAReference) {
  json b = rich_plan().exported();
  b["entry"][0]["resource"]["section"][1]["entry"][0].erase("reference");
  EXPECT_EQ(refusal(b).code(), "unresolved_reference");
}

TEST(FhirImport, RefusesASubjectThatIsNotAPatientInTheBundle) {
  json b = rich_plan().exported();
  for (const auto& e : b["entry"]) {
    if (e["resource"]["resourceType"] == "CarePlan") {
      b["entry"][0]["resource"]["subject"]["reference"] = e["fullUrl"];
      break;
    }
  }
  EXPECT_EQ(refusal(b).code(), "unresolved_reference");
  b["entry"][0]["resource"].erase("subject");
  EXPECT_EQ(refusal(b).code(), "unresolved_reference");
}

TEST(FhirImport, RefusesAnyOtherReferenceThatDoesNotResolve) {
  json b = rich_plan().exported();
  for (auto& e : b["entry"]) {
    if (e["resource"]["resourceType"] == "Goal")
      e["resource"]["subject"]["reference"] = "Patient/1";
  }
  const auto e = refusal(b);
  EXPECT_EQ(e.code(), "unresolved_reference");
  EXPECT_NE(std::string(e.what()).find("(Goal)"), std::string::npos) << e.what();
}

TEST(FhirImport, RefusesEntriesWithoutAFullUrlOrResourceOrTwiceTheSame) {
  json b = rich_plan().exported();
  json c = b, d = b;
  b["entry"][3].erase("fullUrl");
  EXPECT_EQ(refusal(b).code(), "bad_fhir_entry");
  c["entry"][3].erase("resource");
  EXPECT_EQ(refusal(c).code(), "bad_fhir_entry");
  d["entry"].push_back(d["entry"][3]);
  EXPECT_EQ(refusal(d).code(), "bad_fhir_entry");
}

TEST(FhirImport, RefusesAFieldThatFailsItsTypesCheck) {
  PlanFixture p;
  p.add("outcome", {{"text", "Walk"}, {"target_date", "next week"}});
  const auto e = refusal(p.exported());
  EXPECT_EQ(e.code(), "invalid_field");
  EXPECT_NE(std::string(e.what()).find("'target_date' must be a date"), std::string::npos)
      << e.what();
  // A FHIR code with no Kith status.
  json b = rich_plan().exported();
  for (auto& en : b["entry"]) {
    if (en["resource"]["resourceType"] == "Goal") en["resource"]["lifecycleStatus"] = "on-hold";
  }
  EXPECT_EQ(refusal(b).code(), "invalid_field");
}

TEST(FhirImport, RefusesAFieldOfTheWrongJsonTypeOrGivenTwice) {
  json b = rich_plan().exported();
  json c = b;
  for (auto& en : b["entry"]) {
    if (en["resource"]["resourceType"] == "Goal") en["resource"]["description"]["text"] = 5;
  }
  EXPECT_EQ(refusal(b).code(), "bad_fhir_entry");
  for (auto& en : c["entry"]) {
    auto& r = en["resource"];
    if (r["resourceType"] == "Goal") r["extension"].push_back(r["extension"][1]);
  }
  EXPECT_EQ(refusal(c).code(), "bad_fhir_entry");
}

TEST(FhirImport, RefusesElementsOfTheWrongJsonTypeWithItsOwnCode) {
  EXPECT_EQ(refusal(json{{"resourceType", 5}}).code(), "not_fhir_bundle");
  json b = rich_plan().exported();
  json c = b, d = b, e = b;
  b["type"] = json::array();
  EXPECT_EQ(refusal(b).code(), "not_fhir_document");
  c["entry"][2]["fullUrl"] = 5;
  EXPECT_EQ(refusal(c).code(), "bad_fhir_entry");
  d["entry"][0]["resource"]["section"] = "all of them";
  EXPECT_EQ(refusal(d).code(), "bad_fhir_entry");
  for (auto& en : e["entry"]) {
    auto& r = en["resource"];
    if (r["resourceType"] == "QuestionnaireResponse") r["item"][0]["answer"] = json::array({7});
  }
  EXPECT_EQ(refusal(e).code(), "bad_fhir_entry");
}

TEST(FhirImport, RefusesARecordTypeKithDoesNotKnow) {
  json b = rich_plan().exported();
  for (auto& en : b["entry"]) {
    if (en["resource"]["resourceType"] == "Goal")
      en["resource"]["extension"][0]["valueCode"] = "wish";
  }
  const auto e = refusal(b);
  EXPECT_EQ(e.code(), "unknown_type");
  EXPECT_NE(std::string(e.what()).find("'wish'"), std::string::npos) << e.what();
}

TEST(FhirImport, RefusesAFileLargerThanTheCap) {
  const std::string big(fhir::kMaxBundleBytes + 1, ' ');
  EXPECT_EQ(error_of([&] { fhir::read_bundle(big); }).code(), "file_too_large");
}

}  // namespace
}  // namespace kith::test
