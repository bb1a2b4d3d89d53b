// A plan on this device as a FHIR R4 document bundle, and a bundle as a new plan: what
// `kith export PLAN --fhir FILE`, `kith import FILE` and libkith's kith_plan_export_fhir /
// kith_plan_import_fhir share (the mapping itself is kith_fhir's, kith/fhir/bundle.hpp).
//
//   FhirExport out = export_fhir(device, plan);              // JSON text, plaintext health data
//   fhir::ImportedPlan in = fhir::read_bundle(text);          // checked, before any change
//   FhirImport made = import_fhir(device, in, std::nullopt);  // a new plan owned by this person
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>

#include "kith/cli/device.hpp"
#include "kith/fhir/bundle.hpp"

namespace kith::cli {

struct FhirExport {
  std::string text;  // the bundle, indented JSON with a final newline
  std::size_t records = 0;
  std::size_t resources = 0;
};

// What this device may read of `plan`, as fhir::export_bundle makes it, authored by this
// person. Reads only.
FhirExport export_fhir(const Device& device, const sync::PlanId& plan);

struct FhirImport {
  sync::PlanId plan;
  std::string title;
  std::size_t records = 0;
  std::map<std::string, std::size_t> by_type;
  std::size_t members_left_out = 0;   // members in the file: not recreated
  std::size_t consents_left_out = 0;  // consents (grants) in the file: not recreated
};

// Creates a plan owned by this person, titled `title` (else the bundle's), holding `bundle`'s
// records with their fields. Members, grants and consents are not recreated: the new plan is this
// person's alone until they invite people. On any failure the new plan is removed again and the
// error rethrown, so nothing is left.
FhirImport import_fhir(Device& device, const fhir::ImportedPlan& bundle,
                       const std::optional<std::string>& title);

// One sentence for people: members, grants and consents are not recreated, so invite again.
std::string not_recreated_note(const FhirImport& made);

}  // namespace kith::cli
