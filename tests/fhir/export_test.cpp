// fhir::export_bundle on plans made by hand: where each record type lands and how its fields
// map, Consents per grant, the CareTeam, Provenance, stable fullUrls, and what never goes in.
#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "fhir_validator.hpp"
#include "kith/fhir/error.hpp"
#include "kith/fhir/vocabulary.hpp"
#include "plan_fixture.hpp"

namespace kith::test {
namespace {

using nlohmann::json;
using P = sync::Permission;

json only(const json& bundle, const std::string& type) {
  auto all = resources(bundle, type);
  EXPECT_EQ(all.size(), 1u) << type;
  return all.empty() ? json() : all[0];
}

TEST(FhirExport, EveryRecordTypeLandsInItsResourceWithEveryField) {
  // The table above covers record_types(): a new type must be added to it (and mapped).
  std::set<std::string> covered;
  for (const auto& c : every_record_type()) covered.insert(c.type);
  for (const auto& t : sync::record_types()) {
    // A `member` record is a shared name: the exporter gives it as RelatedPerson.name.
    if (t.section == sync::kNamesSection) continue;
    EXPECT_TRUE(covered.count(std::string(t.name))) << t.name;
  }

  for (const auto& c : every_record_type()) {
    PlanFixture p;
    const auto& r = p.add(c.type, c.fields);
    const json bundle = p.exported();
    const std::string url = fhir::resource_url(p.plan, "record:" + r.id.hex());
    const json* res = nullptr;
    for (const auto& e : bundle["entry"]) {
      if (e["fullUrl"] == url) res = &e["resource"];
    }
    ASSERT_NE(res, nullptr) << c.type;
    EXPECT_EQ((*res)["resourceType"], c.resource_type) << c.type;
    EXPECT_EQ((*res)["extension"][0]["valueCode"], c.type);
    const json& id =
        (*res)["identifier"].is_array() ? (*res)["identifier"][0] : (*res)["identifier"];
    EXPECT_EQ(id["value"], r.id.hex()) << c.type;
    // Nothing lost: reading the bundle back gives the record with every field.
    const auto back = fhir::read_bundle(bundle.dump());
    ASSERT_EQ(back.records.size(), 1u) << c.type;
    EXPECT_EQ(back.records[0].type, c.type);
    auto want = c.fields, got = back.records[0].fields;
    std::sort(want.begin(), want.end());
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, want) << c.type;
  }
}

TEST(FhirExport, OutcomeIsAGoalWithItsStatusAndTargetDate) {
  PlanFixture p;
  p.add("outcome", {{"text", "Walk to the shop"},
                    {"status", "achieved"},
                    {"target_date", "2026-06-01"},
                    {"review_date", "2026-03-01"}});
  p.add("outcome", {{"text", "Join the lunch club"}});
  const auto goals = resources(p.exported(), "Goal");
  ASSERT_EQ(goals.size(), 2u);
  EXPECT_EQ(goals[0]["description"]["text"], "Walk to the shop");
  EXPECT_EQ(goals[0]["lifecycleStatus"], "completed");
  EXPECT_EQ(goals[0]["target"][0]["dueDate"], "2026-06-01");
  EXPECT_EQ(field_extension(goals[0], "review_date"), "2026-03-01");  // no FHIR element for it
  EXPECT_EQ(goals[1]["lifecycleStatus"], "proposed");                 // required; no status
}

TEST(FhirExport, SupportIsACarePlanPartOfThePlan) {
  PlanFixture p;
  p.add("support", {{"text", "Shopping"},
                    {"who", "Nia"},
                    {"when", "Mondays"},
                    {"time", "09:30"},
                    {"cost", "12.50"},
                    {"start_date", "2026-01-05"},
                    {"status", "paused"}});
  const json b = p.exported();
  const auto plans = resources(b, "CarePlan");
  ASSERT_EQ(plans.size(), 2u);  // the plan itself, then the support item
  const json& item = plans[1];
  EXPECT_EQ(item["partOf"][0]["reference"], fhir::resource_url(p.plan, "careplan"));
  EXPECT_EQ(item["status"], "on-hold");
  EXPECT_EQ(item["description"], "Shopping");
  EXPECT_EQ(item["period"]["start"], "2026-01-05");
  const json& detail = item["activity"][0]["detail"];
  EXPECT_EQ(detail["performer"][0]["display"], "Nia");
  EXPECT_EQ(detail["scheduledTiming"]["code"]["text"], "Mondays");
  EXPECT_EQ(detail["scheduledTiming"]["repeat"]["timeOfDay"][0], "09:30:00");
  EXPECT_EQ(field_extension(item, "cost"), "12.50");
  EXPECT_EQ(plans[0]["title"], "Ada's plan");
}

TEST(FhirExport, BudgetIsAnObservationWithTheAmountInPounds) {
  PlanFixture p;
  p.add("budget", {{"amount", "120.50"}, {"date", "2026-01-10"}, {"band", "7"}});
  p.add("budget", {{"amount", "300"}});
  p.add("budget", {{"amount", "45.00"}});
  const json b = p.exported();
  const auto obs = resources(b, "Observation");
  ASSERT_EQ(obs.size(), 3u);
  EXPECT_EQ(obs[0]["valueQuantity"]["value"], 120.5);
  EXPECT_EQ(obs[0]["valueQuantity"]["code"], "GBP");
  EXPECT_EQ(obs[0]["valueQuantity"]["system"], "urn:iso:std:iso:4217");
  EXPECT_EQ(obs[0]["effectiveDateTime"], "2026-01-10");
  EXPECT_EQ(obs[0]["component"][0]["code"]["text"], "Global Needs Band");
  EXPECT_EQ(obs[0]["component"][0]["valueInteger"], 7);
  EXPECT_TRUE(obs[1]["valueQuantity"]["value"].is_number_integer());
  // Written as it was, and read back the same: 300 and 45.00 stay apart.
  const auto back = fhir::read_bundle(b.dump());
  EXPECT_EQ(back.records[1].fields, (fhir::Fields{{"amount", "300"}}));
  EXPECT_EQ(back.records[2].fields, (fhir::Fields{{"amount", "45.00"}}));
}

TEST(FhirExport, RiskContactsAndAssessmentMapToTheirElements) {
  PlanFixture p;
  p.add("risk", {{"text", "Falls"}, {"level", "medium"}, {"crisis_plan", "Call Nia"}});
  p.add("contact", {{"name", "Nia Jones"}, {"kind", "person"}, {"phone", "07700 900123"}});
  p.add("contact", {{"name", "Lunch club"}, {"kind", "community-asset"}});
  p.add("assessment", {{"domain", "mobility"}, {"status", "approved"}, {"date", "2026-01-02"}});
  const json b = p.exported();
  const json risk = only(b, "RiskAssessment");
  EXPECT_EQ(risk["prediction"][0]["qualitativeRisk"]["coding"][0]["code"], "moderate");
  EXPECT_EQ(risk["mitigation"], "Call Nia");
  EXPECT_EQ(risk["note"][0]["text"], "Falls");
  json person;
  for (const auto& r : resources(b, "RelatedPerson")) {
    if (r.contains("extension")) person = r;  // a contact record, not a member
  }
  EXPECT_EQ(person["name"][0]["text"], "Nia Jones");
  EXPECT_EQ(person["telecom"][0], (json{{"system", "phone"}, {"value", "07700 900123"}}));
  const json club = only(b, "Organization");
  EXPECT_EQ(club["name"], "Lunch club");
  EXPECT_EQ(club["type"][0]["coding"][0]["code"], "community-asset");
  const json qr = only(b, "QuestionnaireResponse");
  EXPECT_EQ(qr["status"], "completed");  // approved: FHIR has no such status
  std::map<std::string, json> items;
  for (const auto& i : qr["item"]) items[i["linkId"]] = i["answer"][0];
  EXPECT_EQ(items["status"]["valueString"], "approved");
  EXPECT_EQ(items["date"]["valueDate"], "2026-01-02");
}

TEST(FhirExport, ValuesWithoutAnExactPlaceAreKeptAsFieldExtensions) {
  PlanFixture p;
  // An unknown field, a text that reads like the placeholder for none, and a value a faulty
  // client wrote that fits no FHIR element.
  p.add("outcome", {{"text", "(no description)"}, {"colour", "green"}, {"target_date", "soon"}});
  const json goal = only(p.exported(), "Goal");
  EXPECT_EQ(field_extension(goal, "colour"), "green");
  EXPECT_EQ(field_extension(goal, "text"), "(no description)");
  EXPECT_EQ(field_extension(goal, "target_date"), "soon");
  EXPECT_FALSE(goal.contains("target"));
}

TEST(FhirExport, ARecordTypeFromANewerKithIsABasicWithEveryField) {
  PlanFixture p;
  p.add("medication", {{"text", "Metformin"}, {"dose", "500 mg"}});
  const json b = p.exported();
  const json basic = only(b, "Basic");
  EXPECT_EQ(basic["code"]["text"], "medication");
  EXPECT_EQ(field_extension(basic, "dose"), "500 mg");
  expect_document_rules(b);
  // Kith cannot add a record of a type it does not know, so import refuses it.
  try {
    fhir::read_bundle(b.dump());
    ADD_FAILURE() << "imported";
  } catch (const fhir::FhirError& e) {
    EXPECT_EQ(e.code(), "unknown_type");
  }
}

TEST(FhirExport, OneConsentPerGrantWithItsSectionAndPeriod) {
  PlanFixture p;
  const std::uint64_t later = p.now_ms + 7 * 86'400'000ull;
  p.member(p.family, {grant("profile", P::kRead), grant("notes", P::kAppend, later)});
  p.member(p.nurse, {grant("health", P::kWrite, p.now_ms - 1)});  // expired
  const json b = p.exported();
  const auto consents = resources(b, "Consent");
  ASSERT_EQ(consents.size(), 3u);  // none for the owner
  std::map<std::string, json> by_section;
  for (const auto& c : consents) {
    ASSERT_EQ(c["meta"]["security"].size(), 1u);
    EXPECT_EQ(c["meta"]["security"][0]["system"], "https://kith.care/fhir/CodeSystem/section");
    by_section[c["meta"]["security"][0]["code"]] = c;
    EXPECT_EQ(c["provision"]["type"], "permit");
    EXPECT_EQ(c["patient"]["reference"], b["entry"][0]["resource"]["subject"]["reference"]);
  }
  const json& notes = by_section["notes"];
  EXPECT_EQ(notes["status"], "active");
  EXPECT_EQ(notes["provision"]["period"]["end"], fhir::fhir_instant(later));
  EXPECT_EQ(notes["provision"]["actor"][0]["reference"]["reference"],
            fhir::resource_url(p.plan, "member:" + p.family.hex()));
  EXPECT_EQ(notes["provision"]["action"][0]["coding"][0]["code"], "append");
  EXPECT_EQ(notes["provision"]["action"].size(), 3u);  // append, consentaction access + collect
  EXPECT_FALSE(by_section["profile"]["provision"].contains("period"));  // no expiry
  EXPECT_EQ(by_section["health"]["status"], "inactive");
  EXPECT_EQ(by_section["health"]["provision"]["action"][0]["coding"][0]["code"], "write");
}

TEST(FhirExport, TheCircleIsACareTeamOfMembers) {
  PlanFixture p;
  p.member(p.family, sync::role_grants(sync::Role::kFamily));
  p.member(p.nurse, {});  // revoked: no grants left
  const json b = p.exported();
  const json team = only(b, "CareTeam");
  ASSERT_EQ(team["participant"].size(), 2u);
  EXPECT_EQ(team["participant"][0]["role"][0]["text"], "owner");
  EXPECT_EQ(team["participant"][1]["role"][0]["text"], "family");
  const auto people = resources(b, "RelatedPerson");
  ASSERT_EQ(people.size(), 3u);
  std::map<std::string, json> by_account;
  for (const auto& r : people) by_account[r["identifier"][0]["value"]] = r;
  EXPECT_EQ(by_account[p.owner.hex()]["name"][0]["text"], "Ada");  // the exporter's own name
  EXPECT_FALSE(by_account[p.family.hex()].contains("name"));       // shared none
  EXPECT_EQ(by_account[p.nurse.hex()]["active"], false);

  // The names members share with the circle name them; their `names` grant is no Consent.
  p.names[p.family] = "Jo";
  const auto names = sync::Section::parse(sync::kNamesSection);
  for (auto& m : p.members) {
    if (m.account == p.family) {
      m.grants.emplace(names, sync::GrantSpec{names, sync::Permission::kAppend, 0});
    }
  }
  const json named = p.exported();
  std::size_t consents_before = resources(b, "Consent").size();
  EXPECT_EQ(resources(named, "Consent").size(), consents_before);
  for (const auto& r : resources(named, "RelatedPerson")) {
    if (r["identifier"][0]["value"] == p.family.hex()) {
      EXPECT_EQ(r["name"][0]["text"], "Jo");
    }
  }
  EXPECT_EQ(b["entry"][0]["resource"]["author"][0]["reference"],
            fhir::resource_url(p.plan, "member:" + p.owner.hex()));
}

TEST(FhirExport, ProvenanceNamesWhoWroteEachRecordAndWhen) {
  PlanFixture p;
  p.member(p.family, {grant("notes", P::kAppend)});
  auto& note = p.add("note", {{"text", "Came round for tea"}}, p.family, kT0);
  auto& goal = p.add("outcome", {{"text", "Walk"}}, p.owner, kT0);
  p.edit(goal, "status", "achieved", p.family, kT0 + 60'000);
  const json b = p.exported();
  const auto prov = resources(b, "Provenance");
  ASSERT_EQ(prov.size(), 2u);
  auto target = [&](const sync::RecordView& r) {
    return fhir::resource_url(p.plan, "record:" + r.id.hex());
  };
  auto member = [&](const sync::AccountId& a) {
    return fhir::resource_url(p.plan, "member:" + a.hex());
  };
  EXPECT_EQ(prov[0]["target"][0]["reference"], target(note));
  ASSERT_EQ(prov[0]["agent"].size(), 1u);
  EXPECT_EQ(prov[0]["agent"][0]["who"]["reference"], member(p.family));
  EXPECT_EQ(prov[0]["recorded"], "2026-01-01T10:00:00.000Z");
  EXPECT_EQ(prov[1]["target"][0]["reference"], target(goal));
  ASSERT_EQ(prov[1]["agent"].size(), 2u);  // created by the owner, status set by family
  EXPECT_EQ(prov[1]["agent"][0]["who"]["reference"], member(p.owner));
  EXPECT_EQ(prov[1]["agent"][1]["who"]["reference"], member(p.family));
  EXPECT_EQ(prov[1]["occurredPeriod"]["start"], "2026-01-01T10:00:00.000Z");
  EXPECT_EQ(prov[1]["recorded"], "2026-01-01T10:01:00.000Z");
}

TEST(FhirExport, FullUrlsAreStableUuidsOfPlanAndRecord) {
  PlanFixture p;
  p.add("outcome", {{"text", "Walk"}});
  p.member(p.family, {grant("profile", P::kRead)});
  const json a = p.exported();
  p.now_ms += 3'600'000;  // exported an hour later
  const json b = p.exported();
  ASSERT_EQ(a["entry"].size(), b["entry"].size());
  const std::regex uuid(
      "urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  for (std::size_t i = 0; i < a["entry"].size(); ++i) {
    const std::string url = a["entry"][i]["fullUrl"];
    EXPECT_TRUE(std::regex_match(url, uuid)) << url;
    EXPECT_EQ(url, b["entry"][i]["fullUrl"]);
    EXPECT_EQ(url.substr(9), a["entry"][i]["resource"]["id"]);
  }
  EXPECT_NE(a["identifier"], b["identifier"]);  // a new document each time
  PlanFixture other;
  other.plan = id_of<sync::PlanId>(8);
  other.add("outcome", {{"text", "Walk"}});
  EXPECT_NE(other.exported()["entry"][0]["fullUrl"], a["entry"][0]["fullUrl"]);
}

TEST(FhirExport, IsADocumentWhoseReferencesAllResolve) {
  PlanFixture p;
  for (const auto& c : every_record_type()) p.add(c.type, c.fields);
  p.member(p.family, sync::role_grants(sync::Role::kFamily, p.now_ms + 1000));
  const json b = p.exported();
  expect_document_rules(b);
  EXPECT_NO_THROW(fhir::check_document(b));
  // Without a profile record the plan's Patient is an empty one, still the subject.
  PlanFixture bare;
  bare.add("note", {{"text", "hello"}});
  expect_document_rules(bare.exported());
}

TEST(FhirExport, HoldsNoDeviceIdsOrKeys) {
  PlanFixture p;
  p.add("outcome", {{"text", "Walk"}});
  p.member(p.family, {grant("profile", P::kRead)});
  const std::string text = p.exported().dump();
  for (const auto& m : p.members) {
    for (const auto& d : m.devices) EXPECT_EQ(text.find(d.hex()), std::string::npos);
  }
  EXPECT_EQ(text.find(p.records[0].created_on.hex()), std::string::npos);
  for (const char* word : {"envelope", "secret", "private", "ciphertext", "epoch"}) {
    EXPECT_EQ(text.find(word), std::string::npos) << word;
  }
}

}  // namespace
}  // namespace kith::test
