// One Kith record as one FHIR resource, and back. Internal to kith_fhir.
//
// A table says, per record type, which resource it becomes and which fields have an exact FHIR
// element (a date as Goal.target.dueDate, a status as a code, an amount as a GBP Quantity). A
// field is written there only when its value fits exactly and reads back the same; every other
// field (free text FHIR has no element for, a value that does not fit, a field Kith does not
// know) becomes a `field` extension holding the name and the value as text. So every field
// round-trips, whatever its value.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "kith/fhir/bundle.hpp"
#include "kith/sync/plan_state.hpp"

namespace kith::fhir::detail {

// The fullUrls a record's resource refers to.
struct Links {
  std::string subject;    // the Patient the plan is about
  std::string care_plan;  // the plan's own CarePlan (support items are part of it)
};

// The resource type a record becomes ("Goal", ...).
std::string_view resource_type_of(const sync::RecordView& record);

// The resource for one record, with `id` as its id.
nlohmann::ordered_json record_resource(const sync::RecordView& record, const std::string& id,
                                       const Links& links);

struct RecordOf {
  std::string type;
  Fields fields;
};

// The Kith record a resource stands for, or nullopt for a resource that stands for none (it has
// no record-type extension: the Patient of a plan without a profile, the CareTeam, members,
// Consents, Provenance). Fields are not checked here. Throws FhirError: bad_fhir_entry (a
// malformed record resource; `where` names it), unknown_type.
std::optional<RecordOf> resource_record(const nlohmann::json& resource, const std::string& where);

// The value at `pointer` ("/a/0/b") in `j`, or nullptr. Never throws.
const nlohmann::json* find_at(const nlohmann::json& j, std::string_view pointer);
// The string at `pointer`, or "" when there is none or it is not a string. Never throws.
std::string_view text_at(const nlohmann::json& j, std::string_view pointer);

}  // namespace kith::fhir::detail
