// A plan as an HL7 FHIR R4 `document` Bundle, and back (DESIGN.md §2.5, "Portability").
//
//   fhir::ExportInput in{plan, title, state.records(), log.members(), me, my_name, now_ms};
//   nlohmann::ordered_json bundle = fhir::export_bundle(in);          // what this member may read
//   fhir::ImportedPlan p = fhir::read_bundle(text);           // checked; throws FhirError
//
// The bundle holds, in this order: the Composition (one section per Kith section that has
// records, then the circle, consents and provenance, each entry a reference into the bundle);
// the Patient the plan is about; the CarePlan; one resource per record (profile -> Patient,
// outcome -> Goal, support -> CarePlan part of the plan, activity -> Observation, note ->
// Communication, risk -> RiskAssessment, health -> Condition, contact -> RelatedPerson or
// Organization, assessment -> QuestionnaireResponse, budget -> Observation with the amount as a
// GBP Quantity); the CareTeam and one RelatedPerson per member; one Consent per grant (the
// section as meta.security, the expiry as provision.period.end); one Provenance per record (who
// created it and who wrote its current values, when). Each record resource carries its Kith
// type (extension record-type) and id (identifier), and every field FHIR has no exact place for
// as a `field` extension, so every field of every record comes back on import unchanged. Fields
// whose value is empty (cleared) are left out; a field in conflict exports the value shown
// meanwhile.
//
// Never in a bundle: keys, envelopes, ciphertext, device ids, or anything the member's device
// cannot read. Account ids (public identity keys) name the members, as `kith members` does.
//
// Pure functions of their input; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kith/sync/membership.hpp"
#include "kith/sync/plan_state.hpp"

namespace kith::fhir {

// The largest bundle read_bundle accepts: a plan's records are small, and a bigger file is more
// likely a mistake (or an attempt to exhaust memory) than a plan.
inline constexpr std::size_t kMaxBundleBytes = 16 * 1024 * 1024;

struct ExportInput {
  sync::PlanId plan;
  std::string title;
  // PlanState::records(): what this member may read, but not the `names` section (its
  // `member` records are the names below).
  std::vector<sync::RecordView> records;
  std::vector<sync::MemberView> members;  // MembershipLog::members()
  sync::AccountId exporter;               // who exports (the Composition's author)
  std::string exporter_name;              // their display name, if known
  std::uint64_t now_ms = 0;               // Bundle.timestamp, Composition.date, grant expiry
  // RelatedPerson.name of each member: the names they share with the circle
  // (SyncEngine::shared_names). Names a person gave members on their own device stay there.
  std::map<sync::AccountId, std::string> names;
};

// Members keep their insertion order (resourceType first), as people expect to read FHIR JSON.
nlohmann::ordered_json export_bundle(const ExportInput& in);

// FIELD=VALUE pairs, as sync::SyncEngine::add_record takes them (the same type as sync::Fields).
using Fields = std::vector<std::pair<std::string, std::string>>;

struct ImportedRecord {
  std::string type;
  Fields fields;
  std::string full_url;  // the entry it came from, for messages
};

struct ImportedPlan {
  std::string title;
  std::vector<ImportedRecord> records;  // in bundle order
  std::size_t members = 0;              // RelatedPersons of members: not recreated
  std::size_t consents = 0;             // Consents: not recreated
};

// Checks the document rules a JSON schema cannot express: entry[0] is a Composition, every
// entry has a unique fullUrl and a resource, Composition.subject is a Patient in the bundle,
// and every reference (Composition.section.entry and any other) resolves to an entry's
// fullUrl. Throws FhirError (not_fhir_bundle, not_fhir_document, composition_not_first,
// bad_fhir_entry, unresolved_reference).
void check_document(const nlohmann::json& bundle);

// Parses and checks `text` (at most kMaxBundleBytes; JSON; a FHIR document Bundle as above)
// and reads the records out of it, each field checked as `kith add` checks it
// (sync::check_field). Throws FhirError; reading has no side effects.
ImportedPlan read_bundle(std::string_view text);

}  // namespace kith::fhir
