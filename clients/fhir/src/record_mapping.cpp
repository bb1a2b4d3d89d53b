#include "record_mapping.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <set>
#include <span>

#include "kith/fhir/error.hpp"
#include "kith/fhir/vocabulary.hpp"
#include "kith/sync/record_types.hpp"

namespace kith::fhir::detail {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

// How a field's text becomes a FHIR value. Each is exact both ways for the values it accepts
// (encode() says which); the others stay in a `field` extension.
enum class Codec {
  kString,   // FHIR string
  kDate,     // Kith date -> FHIR date (the same text)
  kTime,     // Kith HH:MM -> FHIR time HH:MM:00
  kAmount,   // Kith pounds -> a JSON number: 12 as an integer, 12.50 as a decimal
  kInteger,  // 1..999999999 without leading zeros -> a JSON integer
  kCode,     // a Kith choice -> a FHIR code, through `codes` (none: the same text)
};

struct CodePair {
  std::string_view kith;
  std::string_view fhir;
};

// An element written beside the field's own (a coding's system, a Quantity's unit).
struct Fixed {
  std::string_view pointer;
  std::string_view value;
};

struct Native {
  std::string_view field;
  std::string_view pointer;
  Codec codec = Codec::kString;
  std::span<const CodePair> codes = {};
  std::span<const Fixed> fixed = {};
  // For an element FHIR requires: its value when the field is absent. A field whose value would
  // encode to it goes to an extension instead, so that reading it back is not ambiguous.
  std::string_view when_absent = {};
};

struct Mapping {
  std::string_view record_type;
  std::string_view resource_type;
  std::string_view skeleton;  // JSON object the resource starts from
  std::string_view subject;   // where the reference to the Patient goes ("": none)
  std::string_view part_of;   // where the reference to the plan's CarePlan goes ("": none)
  std::span<const Native> natives;
  std::span<const std::string_view> kinds = {};  // only for records whose `kind` is one of these
  bool items = false;  // every field is an item of a QuestionnaireResponse; natives are derived
  bool single_identifier = false;
};

constexpr std::string_view kContactKinds = "https://kith.care/fhir/CodeSystem/contact-kind";

constexpr CodePair kGoalStatus[] = {{"not-started", "planned"},
                                    {"in-progress", "active"},
                                    {"achieved", "completed"},
                                    {"abandoned", "cancelled"}};
constexpr CodePair kSupportStatus[] = {
    {"planned", "draft"}, {"active", "active"}, {"paused", "on-hold"}, {"ended", "completed"}};
constexpr CodePair kRiskLevel[] = {{"low", "low"}, {"medium", "moderate"}, {"high", "high"}};
// Derived only (QuestionnaireResponse.status): the Kith status itself is an item.
constexpr CodePair kAssessmentStatus[] = {
    {"draft", "in-progress"}, {"completed", "completed"}, {"approved", "completed"}};

constexpr Fixed kDetail[] = {{"/activity/0/detail/status", "unknown"}};
constexpr Fixed kPhone[] = {{"/telecom/0/system", "phone"}};
constexpr Fixed kRelationshipKind[] = {{"/relationship/0/coding/0/system", kContactKinds}};
constexpr Fixed kOrganizationKind[] = {{"/type/0/coding/0/system", kContactKinds}};
constexpr Fixed kActivityKind[] = {
    {"/code/coding/0/system", "https://kith.care/fhir/CodeSystem/activity-kind"}};
constexpr Fixed kRiskSystem[] = {{"/prediction/0/qualitativeRisk/coding/0/system",
                                  "http://terminology.hl7.org/CodeSystem/risk-probability"}};
constexpr Fixed kPounds[] = {{"/valueQuantity/unit", "GBP"},
                             {"/valueQuantity/system", "urn:iso:std:iso:4217"},
                             {"/valueQuantity/code", "GBP"}};
constexpr Fixed kBand[] = {{"/component/0/code/text", "Global Needs Band"}};

using C = Codec;
constexpr Native kPatient[] = {{"date_of_birth", "/birthDate", C::kDate}};
constexpr Native kGoal[] = {{"text", "/description/text", C::kString, {}, {}, "(no description)"},
                            {"status", "/lifecycleStatus", C::kCode, kGoalStatus, {}, "proposed"},
                            {"target_date", "/target/0/dueDate", C::kDate}};
constexpr Native kSupport[] = {
    {"text", "/description"},
    {"status", "/status", C::kCode, kSupportStatus, {}, "unknown"},
    {"who", "/activity/0/detail/performer/0/display", C::kString, {}, kDetail},
    {"when", "/activity/0/detail/scheduledTiming/code/text", C::kString, {}, kDetail},
    {"time", "/activity/0/detail/scheduledTiming/repeat/timeOfDay/0", C::kTime, {}, kDetail},
    {"start_date", "/period/start", C::kDate},
    {"end_date", "/period/end", C::kDate}};
constexpr Native kActivity[] = {{"kind", "/code/coding/0/code", C::kCode, {}, kActivityKind},
                                {"text", "/valueString"}};
constexpr Native kNote[] = {{"text", "/payload/0/contentString"}};
constexpr Native kRisk[] = {
    {"text", "/note/0/text"},
    {"level", "/prediction/0/qualitativeRisk/coding/0/code", C::kCode, kRiskLevel, kRiskSystem},
    {"crisis_plan", "/mitigation"}};
constexpr Native kHealth[] = {{"text", "/code/text"}, {"start_date", "/onsetDateTime", C::kDate}};
constexpr Native kOrganization[] = {
    {"name", "/name"},
    {"phone", "/telecom/0/value", C::kString, {}, kPhone},
    {"kind", "/type/0/coding/0/code", C::kCode, {}, kOrganizationKind}};
constexpr Native kRelatedPerson[] = {
    {"name", "/name/0/text"},
    {"phone", "/telecom/0/value", C::kString, {}, kPhone},
    {"kind", "/relationship/0/coding/0/code", C::kCode, {}, kRelationshipKind}};
constexpr Native kAssessment[] = {
    {"status", "/status", C::kCode, kAssessmentStatus, {}, "in-progress"}};
constexpr Native kBudget[] = {{"amount", "/valueQuantity/value", C::kAmount, {}, kPounds},
                              {"date", "/effectiveDateTime", C::kDate},
                              {"text", "/note/0/text"},
                              {"band", "/component/0/valueInteger", C::kInteger, {}, kBand}};

constexpr std::string_view kOrganizationKinds[] = {"community-asset", "service"};

constexpr Mapping kMappings[] = {
    {"profile", "Patient", "{}", "", "", kPatient},
    {"outcome", "Goal", "{}", "/subject/reference", "", kGoal},
    {"support", "CarePlan", R"({"intent":"plan"})", "/subject/reference", "/partOf/0/reference",
     kSupport},
    {"activity", "Observation",
     R"({"status":"final","category":[{"coding":[{"system":"https://kith.care/fhir/CodeSystem/record-type","code":"activity","display":"Activity record"}]}],"code":{"text":"Activity record"}})",
     "/subject/reference", "", kActivity},
    {"note", "Communication",
     R"({"status":"completed","category":[{"coding":[{"system":"https://kith.care/fhir/CodeSystem/record-type","code":"note","display":"Case note"}]}]})",
     "/subject/reference", "", kNote},
    {"risk", "RiskAssessment", R"({"status":"final"})", "/subject/reference", "", kRisk},
    {"health", "Condition", "{}", "/subject/reference", "", kHealth},
    {"contact", "Organization", "{}", "", "", kOrganization, kOrganizationKinds},
    {"contact", "RelatedPerson", "{}", "/patient/reference", "", kRelatedPerson},
    {"assessment",
     "QuestionnaireResponse",
     "{}",
     "/subject/reference",
     "",
     kAssessment,
     {},
     true,
     true},
    {"budget", "Observation",
     R"({"status":"final","category":[{"coding":[{"system":"https://kith.care/fhir/CodeSystem/record-type","code":"budget","display":"Budget"}]}],"code":{"text":"Indicative personal budget"}})",
     "/subject/reference", "", kBudget},
};

// A record of a type this version has no mapping for (one from a newer Kith): a Basic resource
// with every field as an extension. Import refuses it, as `kith add` would.
constexpr Mapping kFallback = {"", "Basic", "{}", "/subject/reference", "", {}};

std::string field_value(const sync::RecordView& r, std::string_view name) {
  auto it = r.fields.find(std::string(name));
  return it == r.fields.end() ? std::string() : it->second.value;
}

const Mapping& mapping_for(const sync::RecordView& r) {
  for (const Mapping& m : kMappings) {
    if (m.record_type != r.type) continue;
    if (m.kinds.empty() ||
        std::find(m.kinds.begin(), m.kinds.end(), field_value(r, "kind")) != m.kinds.end()) {
      return m;
    }
  }
  return kFallback;
}

// Whether `value` is a valid Kith value of `kind` (the checks `kith add` makes).
bool is_kind(sync::FieldKind kind, std::string_view value) {
  const sync::FieldSpec spec[] = {{"v", kind, {}}};
  const sync::RecordType type{"fhir", "fhir", false, spec};
  return !value.empty() && !sync::check_field(type, "v", value);
}

std::optional<ordered_json> encode(std::string_view record_type, const Native& n,
                                   const std::string& value) {
  switch (n.codec) {
    case Codec::kString:
      return ordered_json(value);
    case Codec::kDate:
      if (!is_kind(sync::FieldKind::kDate, value)) return std::nullopt;
      return ordered_json(value);
    case Codec::kTime:
      if (!is_kind(sync::FieldKind::kTime, value)) return std::nullopt;
      return ordered_json(value + ":00");
    case Codec::kAmount: {
      if (!is_kind(sync::FieldKind::kAmount, value)) return std::nullopt;
      if (value.find('.') == std::string::npos) return ordered_json(std::stoull(value));
      return ordered_json(std::stod(value));
    }
    case Codec::kInteger: {
      if (value.empty() || value.size() > 9 || value[0] == '0' ||
          !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return std::nullopt;
      }
      return ordered_json(std::stoull(value));
    }
    case Codec::kCode: {
      if (n.codes.empty()) {
        const sync::RecordType* t = sync::find_record_type(record_type);
        if (!t || sync::check_field(*t, n.field, value)) return std::nullopt;
        return ordered_json(value);
      }
      for (const auto& c : n.codes) {
        if (c.kith == value) return ordered_json(c.fhir);
      }
      return std::nullopt;
    }
  }
  return std::nullopt;
}

// The field's text from a FHIR value, or nullopt when the JSON type is wrong. A value that has
// no Kith form comes back as it is, so that the field check names the field.
std::optional<std::string> decode(const Native& n, const json& v) {
  switch (n.codec) {
    case Codec::kString:
    case Codec::kDate:
      if (!v.is_string()) return std::nullopt;
      return v.get<std::string>();
    case Codec::kTime: {
      if (!v.is_string()) return std::nullopt;
      std::string s = v.get<std::string>();
      if (s.size() == 8 && s.ends_with(":00")) s.resize(5);
      return s;
    }
    case Codec::kAmount: {
      if (v.is_number_unsigned()) return std::to_string(v.get<std::uint64_t>());
      if (v.is_number_integer()) return std::to_string(v.get<std::int64_t>());
      if (!v.is_number_float()) return std::nullopt;
      const double d = v.get<double>();
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.2f", d);
      double back = 0;
      std::from_chars(buf, buf + std::char_traits<char>::length(buf), back);
      return back == d ? std::string(buf) : v.dump();
    }
    case Codec::kInteger:
      if (v.is_number_unsigned()) return std::to_string(v.get<std::uint64_t>());
      if (v.is_number_integer()) return std::to_string(v.get<std::int64_t>());
      return std::nullopt;
    case Codec::kCode: {
      if (!v.is_string()) return std::nullopt;
      const std::string s = v.get<std::string>();
      for (const auto& c : n.codes) {
        if (c.fhir == s) return std::string(c.kith);
      }
      return s;
    }
  }
  return std::nullopt;
}

ordered_json field_extension(const std::string& name, const std::string& value) {
  return {{"url", kFieldExtension},
          {"extension",
           {{{"url", "name"}, {"valueString", name}}, {{"url", "value"}, {"valueString", value}}}}};
}

// A QuestionnaireResponse item per field: the answer a date where it is one, else text.
ordered_json item(const std::string& name, const std::string& value, bool date) {
  ordered_json answer = date && is_kind(sync::FieldKind::kDate, value)
                            ? ordered_json{{"valueDate", value}}
                            : ordered_json{{"valueString", value}};
  return {{"linkId", name}, {"text", name}, {"answer", {answer}}};
}

bool is_date_field(std::string_view record_type, const std::string& field) {
  const sync::RecordType* t = sync::find_record_type(record_type);
  if (!t) return false;
  return std::any_of(t->fields.begin(), t->fields.end(), [&](const sync::FieldSpec& f) {
    return f.name == field && f.kind == sync::FieldKind::kDate;
  });
}

[[noreturn]] void bad(const std::string& where, const std::string& what) {
  throw FhirError("bad_fhir_entry", where + ": " + what);
}

const std::string* string_at(const json& j, std::string_view key) {
  auto it = j.find(std::string(key));
  if (it == j.end() || !it->is_string()) return nullptr;
  return it->get_ptr<const std::string*>();
}

}  // namespace

const json* find_at(const json& j, std::string_view pointer) {
  const json* at = &j;
  while (!pointer.empty()) {
    pointer.remove_prefix(1);  // the '/'
    const auto slash = pointer.find('/');
    const std::string_view token = pointer.substr(0, slash);
    pointer = slash == std::string_view::npos ? std::string_view() : pointer.substr(slash);
    if (at->is_object()) {
      auto it = at->find(std::string(token));
      if (it == at->end()) return nullptr;
      at = &*it;
    } else if (at->is_array()) {
      std::size_t i = 0;
      const auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), i);
      if (ec != std::errc() || end != token.data() + token.size() || i >= at->size()) {
        return nullptr;
      }
      at = &(*at)[i];
    } else {
      return nullptr;
    }
  }
  return at;
}

std::string_view text_at(const json& j, std::string_view pointer) {
  const json* v = find_at(j, pointer);
  return v && v->is_string() ? std::string_view(v->get_ref<const std::string&>())
                             : std::string_view();
}

std::string_view resource_type_of(const sync::RecordView& record) {
  return mapping_for(record).resource_type;
}

ordered_json record_resource(const sync::RecordView& r, const std::string& id, const Links& links) {
  const Mapping& m = mapping_for(r);
  ordered_json res = {{"resourceType", m.resource_type}, {"id", id}};
  const ordered_json skeleton = ordered_json::parse(m.skeleton);
  for (const auto& [k, v] : skeleton.items()) res[k] = v;
  if (&m == &kFallback) res["code"] = {{"text", r.type}};
  res["extension"] = ordered_json::array();
  res["extension"].push_back({{"url", kRecordTypeExtension}, {"valueCode", r.type}});
  const ordered_json identifier = {{"system", kRecordIdSystem}, {"value", r.id.hex()}};
  res["identifier"] = m.single_identifier ? identifier : ordered_json::array({identifier});
  using Ptr = ordered_json::json_pointer;
  if (!m.subject.empty()) res[Ptr(std::string(m.subject))] = links.subject;
  if (!m.part_of.empty()) res[Ptr(std::string(m.part_of))] = links.care_plan;

  // Each field goes where it fits exactly, else into an extension (or, for an assessment, an
  // item: there the natives are derived from the items and not read back).
  std::set<std::string_view> written;
  for (const Native& n : m.natives) {
    const std::string value = field_value(r, n.field);
    auto enc = value.empty() ? std::nullopt : encode(r.type, n, value);
    if (enc && !n.when_absent.empty() && *enc == ordered_json(n.when_absent)) enc.reset();
    if (enc) {
      for (const Fixed& f : n.fixed) res[Ptr(std::string(f.pointer))] = f.value;  // system first
      res[Ptr(std::string(n.pointer))] = *enc;
      if (!m.items) written.insert(n.field);
    } else if (!n.when_absent.empty()) {
      res[Ptr(std::string(n.pointer))] = n.when_absent;
    }
  }
  ordered_json extensions = ordered_json::array();
  ordered_json items = ordered_json::array();
  for (const auto& [name, f] : r.fields) {
    if (f.value.empty() || written.count(name)) continue;
    if (m.items) {
      items.push_back(item(name, f.value, is_date_field(r.type, name)));
    } else {
      extensions.push_back(field_extension(name, f.value));
    }
  }
  for (auto& e : extensions) res["extension"].push_back(std::move(e));
  if (!items.empty()) res["item"] = std::move(items);
  return res;
}

std::optional<RecordOf> resource_record(const json& res, const std::string& where) {
  const json* exts = find_at(res, "/extension");
  if (!exts || !exts->is_array()) return std::nullopt;
  const json* type_ext = nullptr;
  for (const auto& e : *exts) {
    if (text_at(e, "/url") == kRecordTypeExtension) type_ext = &e;
  }
  if (!type_ext) return std::nullopt;
  const std::string* type = string_at(*type_ext, "valueCode");
  if (!type) bad(where, "the record-type extension has no valueCode");
  const std::string resource_type(text_at(res, "/resourceType"));

  const Mapping* m = nullptr;
  for (const Mapping& x : kMappings) {
    if (x.record_type == *type && x.resource_type == resource_type) m = &x;
  }
  if (!m) {
    if (!sync::find_record_type(*type)) {
      throw FhirError("unknown_type", where + ": '" + *type + "' is not a Kith record type");
    }
    bad(where, "a " + *type + " record cannot be a " + resource_type);
  }

  RecordOf out{*type, {}};
  auto add = [&](const std::string& name, std::string value) {
    for (const auto& [f, v] : out.fields) {
      if (f == name) bad(where, "the field '" + name + "' is given twice");
    }
    out.fields.emplace_back(name, std::move(value));
  };
  if (m->items) {
    if (const json* items = find_at(res, "/item")) {
      if (!items->is_array()) bad(where, "item is not a list");
      for (const auto& it : *items) {
        const std::string* name = it.is_object() ? string_at(it, "linkId") : nullptr;
        const json* answer = name ? find_at(it, "/answer/0") : nullptr;
        const std::string* value = nullptr;
        if (answer && answer->is_object()) {
          value = string_at(*answer, "valueString");
          if (!value) value = string_at(*answer, "valueDate");
        }
        if (!value) bad(where, "an item without a linkId and a text or date answer");
        add(*name, *value);
      }
    }
  } else {
    for (const Native& n : m->natives) {
      const json* v = find_at(res, n.pointer);
      if (!v || (!n.when_absent.empty() && *v == json(n.when_absent))) continue;
      auto text = decode(n, *v);
      if (!text)
        bad(where, std::string(n.pointer) + " (the '" + std::string(n.field) +
                       "' field) has the wrong JSON type");
      add(std::string(n.field), std::move(*text));
    }
  }
  for (const auto& e : *exts) {
    if (text_at(e, "/url") != kFieldExtension) continue;
    const json* name = find_at(e, "/extension/0");
    const json* value = find_at(e, "/extension/1");
    if (!name || !value || !name->is_object() || !value->is_object() ||
        text_at(*name, "/url") != "name" || text_at(*value, "/url") != "value" ||
        !string_at(*name, "valueString") || !string_at(*value, "valueString")) {
      bad(where, "a field extension without a name and a value");
    }
    add(*string_at(*name, "valueString"), *string_at(*value, "valueString"));
  }
  return out;
}

}  // namespace kith::fhir::detail
