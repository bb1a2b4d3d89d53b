// The names a Kith FHIR bundle uses: Kith's own URLs (extensions, code systems, identifier
// systems, all under https://kith.care/fhir/), the stable urn:uuid of every resource, and FHIR
// instants.
//
// A resource's fullUrl is derived from the plan id and a name ("record:<id hex>", "patient",
// "member:<account hex>", ...): BLAKE2b over a fixed label, the plan id and the name, cut to a
// UUID (version 8, RFC 9562's custom form). The same plan exports the same fullUrls every time,
// and nothing else can be read from them. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "kith/sync/ids.hpp"

namespace kith::fhir {

inline constexpr std::string_view kBase = "https://kith.care/fhir/";
// Extensions.
inline constexpr std::string_view kRecordTypeExtension =
    "https://kith.care/fhir/StructureDefinition/record-type";
inline constexpr std::string_view kFieldExtension =
    "https://kith.care/fhir/StructureDefinition/field";
// Identifier systems.
inline constexpr std::string_view kRecordIdSystem = "https://kith.care/fhir/record";
inline constexpr std::string_view kPlanIdSystem = "https://kith.care/fhir/plan";
inline constexpr std::string_view kAccountSystem = "https://kith.care/fhir/account";
// Code systems.
inline constexpr std::string_view kSectionSystem = "https://kith.care/fhir/CodeSystem/section";
inline constexpr std::string_view kRecordTypeSystem =
    "https://kith.care/fhir/CodeSystem/record-type";
inline constexpr std::string_view kPermissionSystem =
    "https://kith.care/fhir/CodeSystem/permission";
inline constexpr std::string_view kMemberRoleSystem =
    "https://kith.care/fhir/CodeSystem/member-role";

// "3f2a...-...": the UUID of resource `name` in `plan` (lower-case, 8-4-4-4-12).
std::string resource_uuid(const sync::PlanId& plan, std::string_view name);
// "urn:uuid:" + resource_uuid(plan, name).
std::string resource_url(const sync::PlanId& plan, std::string_view name);

// A FHIR instant in UTC with milliseconds: "2026-11-22T09:30:00.000Z".
std::string fhir_instant(std::uint64_t unix_ms);

}  // namespace kith::fhir
