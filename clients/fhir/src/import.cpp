// read_bundle and check_document: a FHIR document Bundle checked, then read into Kith records.
#include <map>

#include "kith/fhir/bundle.hpp"
#include "kith/fhir/error.hpp"
#include "kith/fhir/vocabulary.hpp"
#include "kith/sync/op.hpp"
#include "kith/sync/record_types.hpp"
#include "record_mapping.hpp"

namespace kith::fhir {
namespace {

using nlohmann::json;

std::string entry_name(std::size_t i, const json& entry) {
  std::string out = "entry " + std::to_string(i);
  const json* type = detail::find_at(entry, "/resource/resourceType");
  if (type && type->is_string()) out += " (" + type->get<std::string>() + ")";
  return out;
}

// Every {"reference": "..."} under `j` that does not point into the resource itself ("#...").
void collect_references(const json& j, const std::string& where,
                        std::vector<std::pair<std::string, std::string>>& out) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      if (k == "reference" && v.is_string()) {
        const std::string& ref = v.get_ref<const std::string&>();
        if (!ref.starts_with("#")) out.emplace_back(ref, where);
      } else {
        collect_references(v, where, out);
      }
    }
  } else if (j.is_array()) {
    for (const auto& v : j) collect_references(v, where, out);
  }
}

void check_sections(const json& sections, const std::map<std::string, std::string>& urls,
                    const std::string& where) {
  if (!sections.is_array()) {
    throw FhirError("bad_fhir_entry", where + ": Composition.section is not a list");
  }
  for (std::size_t i = 0; i < sections.size(); ++i) {
    const json& s = sections[i];
    const std::string name = "Composition section " + std::to_string(i);
    if (const json* entries = detail::find_at(s, "/entry")) {
      if (!entries->is_array()) throw FhirError("bad_fhir_entry", name + ": entry is not a list");
      for (std::size_t k = 0; k < entries->size(); ++k) {
        const json* ref = detail::find_at((*entries)[k], "/reference");
        if (!ref || !ref->is_string() || !urls.count(ref->get<std::string>())) {
          throw FhirError("unresolved_reference",
                          name + ": entry " + std::to_string(k) +
                              (ref && ref->is_string() ? " refers to " + ref->get<std::string>() +
                                                             ", which is not in the bundle"
                                                       : " has no reference"));
        }
      }
    }
    if (const json* sub = detail::find_at(s, "/section")) check_sections(*sub, urls, where);
  }
}

// The records of a bundle check_document() accepted, each field checked as `kith add` does.
ImportedPlan read_records(const json& bundle) {
  const json& entries = bundle["entry"];
  ImportedPlan plan;
  const json& title = entries[0]["resource"]["title"];
  plan.title = title.is_string() ? title.get<std::string>() : "Imported plan";
  for (std::size_t i = 1; i < entries.size(); ++i) {
    const json& res = entries[i]["resource"];
    const std::string where = entry_name(i, entries[i]);
    const std::string& type = res["resourceType"].get_ref<const std::string&>();
    auto record = detail::resource_record(res, where);
    if (!record) {
      if (type == "Consent") ++plan.consents;
      const json* system = detail::find_at(res, "/identifier/0/system");
      if (type == "RelatedPerson" && system && *system == kAccountSystem) ++plan.members;
      continue;
    }
    const sync::RecordType* spec = sync::find_record_type(record->type);
    if (record->fields.size() >= sync::kMaxMutationsPerOp) {
      throw FhirError("invalid_field", where + ": a record holds at most " +
                                           std::to_string(sync::kMaxMutationsPerOp - 1) +
                                           " fields");
    }
    for (const auto& [f, v] : record->fields) {
      std::optional<std::string> bad = sync::check_field(*spec, f, v);  // also refuses _deleted
      if (!bad && v.size() > sync::kMaxFieldValue) {
        bad = "'" + f + "' is longer than " + std::to_string(sync::kMaxFieldValue) + " bytes";
      }
      if (bad) throw FhirError("invalid_field", where + ": " + *bad);
    }
    plan.records.push_back({std::move(record->type), std::move(record->fields),
                            entries[i]["fullUrl"].get<std::string>()});
  }
  return plan;
}

}  // namespace

void check_document(const json& bundle) {
  if (detail::text_at(bundle, "/resourceType") != "Bundle") {
    throw FhirError("not_fhir_bundle",
                    "the file is not a FHIR Bundle (resourceType is not Bundle)");
  }
  if (detail::text_at(bundle, "/type") != "document") {
    throw FhirError("not_fhir_document",
                    "the Bundle is not a FHIR document (its type must be \"document\")");
  }
  const json* entries = detail::find_at(bundle, "/entry");
  if (!entries || !entries->is_array() || entries->empty()) {
    throw FhirError("composition_not_first",
                    "the document has no entries; it must start with a Composition");
  }
  std::map<std::string, std::string> urls;  // fullUrl -> resourceType
  for (std::size_t i = 0; i < entries->size(); ++i) {
    const json& e = (*entries)[i];
    const std::string name = entry_name(i, e);
    const json* url = detail::find_at(e, "/fullUrl");
    const json* type = detail::find_at(e, "/resource/resourceType");
    if (!url || !url->is_string() || url->get_ref<const std::string&>().empty()) {
      throw FhirError("bad_fhir_entry", name + " has no fullUrl");
    }
    if (!type || !type->is_string()) throw FhirError("bad_fhir_entry", name + " has no resource");
    if (!urls.emplace(url->get<std::string>(), type->get<std::string>()).second) {
      throw FhirError("bad_fhir_entry", name + " has the same fullUrl as an earlier entry");
    }
  }
  const json& comp = (*entries)[0]["resource"];
  if (comp["resourceType"] != "Composition") {
    throw FhirError("composition_not_first",
                    "the document's first entry must be its Composition, not " +
                        comp["resourceType"].get<std::string>());
  }
  const json* subject = detail::find_at(comp, "/subject/reference");
  if (!subject || !subject->is_string() || !urls.count(subject->get<std::string>())) {
    throw FhirError("unresolved_reference",
                    "the Composition's subject must refer to a Patient in the bundle");
  }
  if (urls[subject->get<std::string>()] != "Patient") {
    throw FhirError(
        "unresolved_reference",
        "the Composition's subject is a " + urls[subject->get<std::string>()] + ", not a Patient");
  }
  if (const json* sections = detail::find_at(comp, "/section")) {
    check_sections(*sections, urls, "entry 0 (Composition)");
  }
  std::vector<std::pair<std::string, std::string>> refs;
  for (std::size_t i = 0; i < entries->size(); ++i) {
    collect_references((*entries)[i]["resource"], entry_name(i, (*entries)[i]), refs);
  }
  for (const auto& [ref, where] : refs) {
    if (!urls.count(ref)) {
      throw FhirError("unresolved_reference",
                      where + " refers to " + ref + ", which is not in the bundle");
    }
  }
}

ImportedPlan read_bundle(std::string_view text) {
  if (text.size() > kMaxBundleBytes) {
    throw FhirError("file_too_large", "the file is larger than " +
                                          std::to_string(kMaxBundleBytes / (1024 * 1024)) +
                                          " MiB; a plan's bundle is far smaller");
  }
  json bundle;
  try {
    bundle = json::parse(text);
  } catch (const json::parse_error& e) {
    // The position only: the parser's own message quotes the text, which may be health data.
    throw FhirError("not_json", "the file is not JSON (it stops making sense at byte " +
                                    std::to_string(e.byte) + ")");
  }
  try {
    check_document(bundle);
    return read_records(bundle);
  } catch (const json::exception&) {
    // Each element's JSON type is checked before it is used; this is the net under those checks.
    throw FhirError("bad_fhir_entry", "the bundle has an element of the wrong JSON type");
  }
}

}  // namespace kith::fhir
