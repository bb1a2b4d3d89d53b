// export_bundle: the plan as this member reads it, as a FHIR R4 document Bundle.
#include <algorithm>
#include <map>

#include "kith/fhir/bundle.hpp"
#include "kith/fhir/vocabulary.hpp"
#include "kith/sync/roles.hpp"
#include "record_mapping.hpp"

namespace kith::fhir {
namespace {

using nlohmann::ordered_json;

constexpr std::pair<std::string_view, std::string_view> kHeadings[] = {
    {"profile", "About me"}, {"outcomes", "Outcomes"},
    {"support", "Support"},  {"activity", "Activity records"},
    {"notes", "Case notes"}, {"risk", "Risks"},
    {"health", "Health"},    {"assessment", "Assessment"},
    {"budget", "Budget"},    {"circle", "Circle of support"}};

ordered_json coding(std::string_view system, std::string_view code, std::string_view display = {}) {
  ordered_json c = {{"system", system}, {"code", code}};
  if (!display.empty()) c["display"] = display;
  return c;
}

ordered_json reference(const std::string& url) { return {{"reference", url}}; }

// What a permission lets a member do, as HL7 consent actions (each permission includes the ones
// before it: read, append, write, manage).
std::vector<std::string_view> consent_actions(sync::Permission p) {
  std::vector<std::string_view> out = {"access"};
  if (p >= sync::Permission::kAppend) out.push_back("collect");
  if (p >= sync::Permission::kWrite) out.push_back("correct");
  if (p >= sync::Permission::kManage) out.push_back("disclose");
  return out;
}

class Builder {
 public:
  explicit Builder(const ExportInput& in) : in_(in) {}

  ordered_json build();

 private:
  std::string url(std::string_view name) const { return resource_url(in_.plan, name); }
  static std::string id_of(const std::string& url) { return url.substr(9); }  // "urn:uuid:"
  void add(const std::string& url, ordered_json resource) {
    entries_.push_back({{"fullUrl", url}, {"resource", std::move(resource)}});
  }
  std::string member_url(const sync::AccountId& a) const { return url("member:" + a.hex()); }
  bool is_member(const sync::AccountId& a) const {
    return std::any_of(in_.members.begin(), in_.members.end(),
                       [&](const sync::MemberView& m) { return m.account == a; });
  }
  ordered_json who(const sync::AccountId& a) const {
    if (is_member(a)) return reference(member_url(a));
    return {{"identifier", {{"system", kAccountSystem}, {"value", a.hex()}}}};
  }

  ordered_json care_plan(const std::vector<std::string>& goals,
                         const std::vector<std::string>& conditions) const;
  ordered_json member(const sync::MemberView& m) const;
  ordered_json care_team() const;
  ordered_json consent(const sync::MemberView& m, const sync::GrantSpec& g,
                       const std::string& id) const;
  ordered_json provenance(const sync::RecordView& r, const std::string& id) const;
  ordered_json composition(const std::string& id) const;
  static ordered_json section(std::string_view code, std::string_view title,
                              const std::vector<std::string>& urls);

  const ExportInput& in_;
  std::string subject_;
  ordered_json entries_ = ordered_json::array();
  std::vector<ordered_json> sections_;
};

ordered_json Builder::section(std::string_view code, std::string_view title,
                              const std::vector<std::string>& urls) {
  ordered_json entry = ordered_json::array();
  for (const auto& u : urls) entry.push_back(reference(u));
  return {{"title", title},
          {"code", {{"coding", {coding(kSectionSystem, code, title)}}}},
          {"entry", entry}};
}

ordered_json Builder::care_plan(const std::vector<std::string>& goals,
                                const std::vector<std::string>& conditions) const {
  const std::string u = url("careplan");
  ordered_json cp = {{"resourceType", "CarePlan"},
                     {"id", id_of(u)},
                     {"identifier", {{{"system", kPlanIdSystem}, {"value", in_.plan.hex()}}}},
                     {"status", "active"},
                     {"intent", "plan"},
                     {"title", in_.title.empty() ? "Care and support plan" : in_.title},
                     {"subject", reference(subject_)},
                     {"careTeam", {reference(url("careteam"))}}};
  if (!goals.empty()) {
    cp["goal"] = ordered_json::array();
    for (const auto& g : goals) cp["goal"].push_back(reference(g));
  }
  if (!conditions.empty()) {
    cp["addresses"] = ordered_json::array();
    for (const auto& c : conditions) cp["addresses"].push_back(reference(c));
  }
  return cp;
}

// A member of the circle: a RelatedPerson identified by account id, named as they share their
// name (the exporter as they named themselves).
ordered_json Builder::member(const sync::MemberView& m) const {
  const bool active = m.owner || !m.grants.empty();
  ordered_json p = {
      {"resourceType", "RelatedPerson"},
      {"id", id_of(member_url(m.account))},
      {"identifier", {{{"system", kAccountSystem}, {"value", m.account.hex()}}}},
      {"active", active},
      {"patient", reference(subject_)},
      {"relationship",
       {{{"coding",
          {coding(kMemberRoleSystem, m.owner ? "owner" : "member",
                  m.owner ? "Owner of the plan" : "Member of the circle of support")}}}}}};
  if (m.account == in_.exporter && !in_.exporter_name.empty()) {
    p["name"] = {{{"text", in_.exporter_name}}};
  } else if (auto n = in_.names.find(m.account); n != in_.names.end()) {
    p["name"] = {{{"text", n->second}}};
  }
  return p;
}

ordered_json Builder::care_team() const {
  ordered_json participants = ordered_json::array();
  for (const auto& m : in_.members) {
    if (!m.owner && m.grants.empty()) continue;  // revoked: not in the circle any more
    std::string role = "owner";
    if (!m.owner) {
      std::vector<sync::GrantSpec> grants;
      for (const auto& [s, g] : m.grants) grants.push_back(g);
      const auto preset = sync::role_of(grants);
      role = preset ? std::string(sync::role_name(*preset)) : "custom";
    }
    participants.push_back(
        {{"role", {{{"coding", {coding(kMemberRoleSystem, role)}}, {"text", role}}}},
         {"member", reference(member_url(m.account))}});
  }
  const std::string u = url("careteam");
  ordered_json team = {{"resourceType", "CareTeam"},
                       {"id", id_of(u)},
                       {"status", "active"},
                       {"name", "Circle of support"},
                       {"subject", reference(subject_)}};
  if (!participants.empty()) team["participant"] = participants;
  return team;
}

// One grant: who may do what with one section, until when.
ordered_json Builder::consent(const sync::MemberView& m, const sync::GrantSpec& g,
                              const std::string& id) const {
  const std::string& section = g.section.name();
  const bool expired = g.expires_at_ms != 0 && g.expires_at_ms <= in_.now_ms;
  ordered_json actions = {
      {{"coding", {coding(kPermissionSystem, sync::permission_name(g.permission))}},
       {"text", sync::permission_name(g.permission)}}};
  for (auto a : consent_actions(g.permission)) {
    actions.push_back(
        {{"coding", {coding("http://terminology.hl7.org/CodeSystem/consentaction", a)}}});
  }
  ordered_json provision = {
      {"type", "permit"},
      {"actor",
       {{{"role",
          {{"coding",
            {coding("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP",
                    "information recipient")}}}},
         {"reference", reference(member_url(m.account))}}}},
      {"action", actions},
      {"securityLabel", {coding(kSectionSystem, section)}}};
  if (g.expires_at_ms != 0) provision["period"] = {{"end", fhir_instant(g.expires_at_ms)}};
  ordered_json c = {
      {"resourceType", "Consent"},
      {"id", id},
      {"meta", {{"security", {coding(kSectionSystem, section, section)}}}},
      {"status", expired ? "inactive" : "active"},
      {"scope",
       {{"coding",
         {coding("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy",
                 "Privacy Consent")}}}},
      {"category", {{{"coding", {coding("http://loinc.org", "59284-0", "Patient Consent")}}}}},
      {"patient", reference(subject_)},
      {"policyRule",
       {{"text", "Kith section grant: " + section + " " +
                     std::string(sync::permission_name(g.permission))}}},
      {"provision", provision}};
  for (const auto& owner : in_.members) {
    if (owner.owner) c["performer"] = {reference(member_url(owner.account))};
  }
  return c;
}

// Who wrote a record, from its signed ops: the account that created it, and those whose
// values it holds now, with the times their devices' clocks gave.
ordered_json Builder::provenance(const sync::RecordView& r, const std::string& id) const {
  std::vector<sync::AccountId> authors = {r.created_by};
  std::uint64_t last = r.created_at.wall_ms;
  for (const auto& [name, f] : r.fields) {
    for (const auto& c : f.candidates) {
      last = std::max(last, c.clock.wall_ms);
      if (std::find(authors.begin(), authors.end(), c.account) == authors.end()) {
        authors.push_back(c.account);
      }
    }
  }
  ordered_json agents = ordered_json::array();
  for (const auto& a : authors) {
    agents.push_back(
        {{"type",
          {{"coding",
            {coding("http://terminology.hl7.org/CodeSystem/provenance-participant-type", "author",
                    "Author")}}}},
         {"who", who(a)}});
  }
  return {{"resourceType", "Provenance"},
          {"id", id},
          {"target", {reference(url("record:" + r.id.hex()))}},
          {"occurredPeriod",
           {{"start", fhir_instant(r.created_at.wall_ms)}, {"end", fhir_instant(last)}}},
          {"recorded", fhir_instant(last)},
          {"agent", agents}};
}

ordered_json Builder::composition(const std::string& id) const {
  ordered_json c = {{"resourceType", "Composition"},
                    {"id", id},
                    {"identifier", {{"system", kPlanIdSystem}, {"value", in_.plan.hex()}}},
                    {"status", "final"},
                    {"type",
                     {{"coding", {coding("http://loinc.org", "18776-5", "Plan of care note")}},
                      {"text", "Care and support plan"}}},
                    {"subject", reference(subject_)},
                    {"date", fhir_instant(in_.now_ms)},
                    {"author",
                     {is_member(in_.exporter) ? reference(member_url(in_.exporter))
                                              : ordered_json{{"display", "Kith"}}}},
                    {"title", in_.title.empty() ? "Care and support plan" : in_.title},
                    {"confidentiality", "R"},
                    {"section", sections_}};
  return c;
}

ordered_json Builder::build() {
  // The Patient the plan is about: the first profile record's, else one with nothing in it.
  std::map<std::string, std::vector<const sync::RecordView*>> by_section;
  for (const auto& r : in_.records) by_section[r.section.name()].push_back(&r);
  const auto& profiles = by_section["profile"];
  subject_ = profiles.empty() ? url("patient") : url("record:" + profiles.front()->id.hex());
  detail::Links links{subject_, url("careplan")};

  // Sections in the order a care plan reads, then any others by name.
  std::vector<std::string> order;
  for (const auto& [s, heading] : kHeadings) order.emplace_back(s);
  for (const auto& [s, records] : by_section) {
    if (std::find(order.begin(), order.end(), s) == order.end()) order.push_back(s);
  }
  ordered_json records = ordered_json::array();
  std::vector<std::string> goals, conditions, circle;
  for (const auto& s : order) {
    auto it = by_section.find(s);
    if (it == by_section.end() || it->second.empty()) continue;
    std::vector<std::string> urls;
    for (const auto* r : it->second) {
      const std::string u = url("record:" + r->id.hex());
      const auto type = detail::resource_type_of(*r);
      if (type == "Goal") goals.push_back(u);
      if (type == "Condition") conditions.push_back(u);
      records.push_back(
          {{"fullUrl", u}, {"resource", detail::record_resource(*r, id_of(u), links)}});
      urls.push_back(u);
    }
    if (s == "circle") {
      circle = urls;
      continue;  // with the members, below
    }
    auto h = std::find_if(std::begin(kHeadings), std::end(kHeadings),
                          [&](const auto& p) { return p.first == s; });
    sections_.push_back(
        section(s, h == std::end(kHeadings) ? std::string_view(s) : h->second, urls));
  }
  sections_.insert(sections_.begin(), section("plan", "Care and support plan", {url("careplan")}));

  if (profiles.empty()) add(subject_, {{"resourceType", "Patient"}, {"id", id_of(subject_)}});
  add(url("careplan"), care_plan(goals, conditions));
  for (auto& e : records) entries_.push_back(std::move(e));

  circle.push_back(url("careteam"));
  add(url("careteam"), care_team());
  for (const auto& m : in_.members) {
    circle.push_back(member_url(m.account));
    add(member_url(m.account), member(m));
  }
  sections_.push_back(section("circle", "Circle of support", circle));

  std::vector<std::string> consents;
  for (const auto& m : in_.members) {
    if (m.owner) continue;  // the owner holds every section; nothing was granted to them
    for (const auto& [s, g] : m.grants) {
      // Sharing names with the circle is Kith's own; the names are in RelatedPerson.name.
      if (s.name() == sync::kNamesSection) continue;
      const std::string u = url("consent:" + m.account.hex() + ":" + s.name());
      consents.push_back(u);
      add(u, consent(m, g, id_of(u)));
    }
  }
  if (!consents.empty()) sections_.push_back(section("consent", "Who may see what", consents));

  std::vector<std::string> provenances;
  for (const auto& r : in_.records) {
    const std::string u = url("provenance:" + r.id.hex());
    provenances.push_back(u);
    add(u, provenance(r, id_of(u)));
  }
  if (!provenances.empty()) {
    sections_.push_back(section("provenance", "Who wrote what", provenances));
  }

  const std::string comp = url("composition");
  ordered_json first = {{"fullUrl", comp}, {"resource", composition(id_of(comp))}};
  entries_.insert(entries_.begin(), std::move(first));
  const std::string bundle = resource_uuid(in_.plan, "bundle:" + std::to_string(in_.now_ms));
  return {{"resourceType", "Bundle"},
          {"id", bundle},
          {"identifier", {{"system", "urn:ietf:rfc:3986"}, {"value", "urn:uuid:" + bundle}}},
          {"type", "document"},
          {"timestamp", fhir_instant(in_.now_ms)},
          {"entry", std::move(entries_)}};
}

}  // namespace

ordered_json export_bundle(const ExportInput& in) { return Builder(in).build(); }

}  // namespace kith::fhir
