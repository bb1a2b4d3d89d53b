#include "kith/cli/render.hpp"

#include <algorithm>
#include <ctime>
#include <map>
#include <set>

#include "kith/sync/record_types.hpp"

namespace kith::cli {
namespace {

using sync::RecordView;

std::string when(const sync::Hlc& clock) {
  const std::time_t secs = static_cast<std::time_t>(clock.wall_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M", &tm);
  return buf;
}

std::string field(const RecordView& r, std::string_view name) {
  auto it = r.fields.find(std::string(name));
  return it == r.fields.end() ? std::string() : sync::printable(it->second.value);
}

std::string shorten(std::string s, std::size_t width) {
  for (char& c : s) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  if (s.size() > width && width > 3) {
    s.resize(width - 3);
    // Do not cut a UTF-8 sequence in half.
    while (!s.empty() && (static_cast<unsigned char>(s.back()) & 0xC0) == 0x80) s.pop_back();
    if (!s.empty() && (static_cast<unsigned char>(s.back()) & 0x80)) s.pop_back();
    s += "...";
  }
  return s;
}

std::vector<std::string> conflicted_fields(const RecordView& r) {
  std::vector<std::string> out;
  for (const auto& [name, f] : r.fields) {
    if (f.conflict()) out.push_back(name);
  }
  return out;
}

// "text — status: active; who: ...", the fields in `skip` left out.
std::string describe(const RecordView& r, const std::set<std::string>& skip = {}) {
  std::string head = field(r, "text");
  std::string rest;
  for (const auto& [name, f] : r.fields) {
    if (name == "text" || skip.count(name) || f.value.empty()) continue;
    if (!rest.empty()) rest += "; ";
    rest += name + ": " + sync::printable(f.value);
  }
  if (head.empty()) return rest;
  return rest.empty() ? head : head + " (" + rest + ")";
}

std::string conflict_note(const RecordView& r) {
  auto c = conflicted_fields(r);
  if (c.empty()) return "";
  std::string out = "  [conflict on ";
  for (std::size_t i = 0; i < c.size(); ++i) out += (i ? ", " : "") + c[i];
  return out + "]";
}

void item(std::ostream& out, const RecordView& r, const std::string& text) {
  out << "  - " << (text.empty() ? "(empty)" : text) << "  [" << r.id.short_hex() << "]"
      << conflict_note(r) << "\n";
}

const char* heading_for(const std::string& section) {
  static const std::map<std::string, const char*> kHeadings = {
      {"outcomes", "Outcomes"}, {"support", "Support"},          {"risk", "Risks"},
      {"health", "Health"},     {"circle", "Circle of support"}, {"assessment", "Assessment"},
      {"budget", "Budget"}};
  auto it = kHeadings.find(section);
  return it == kHeadings.end() ? nullptr : it->second;
}

// The time an activity record or note is about: its `at` field, else when it was written.
std::string moment(const RecordView& r) {
  std::string at = field(r, "at");
  return at.empty() ? when(r.created_at) : at;
}

}  // namespace

std::string record_summary(const RecordView& r, std::size_t width) {
  std::string s = field(r, "text");
  if (s.empty()) {
    for (const auto& [name, f] : r.fields) {
      if (!f.value.empty()) {
        s = name + ": " + f.value;
        break;
      }
    }
  }
  return sync::printable(shorten(s, width));
}

std::vector<RecordView> plan_records(const sync::PlanState& state,
                                     const std::optional<sync::Section>& section) {
  std::vector<RecordView> out = state.records(section);
  if (!section) {
    std::erase_if(out, [](const RecordView& r) { return r.section.name() == sync::kNamesSection; });
  }
  return out;
}

nlohmann::json plans_json(const sync::SyncEngine& engine) {
  nlohmann::json plans = nlohmann::json::array();
  for (const auto& [id, title] : engine.plans()) {
    plans.push_back({{"id", id.hex()},
                     {"title", title},
                     {"records", plan_records(engine.state(id)).size()},
                     {"conflicts", engine.state(id).conflicts().size()},
                     {"waiting", engine.outbox_size(id)},
                     {"cursor", engine.cursor(id)}});
  }
  return plans;
}

nlohmann::json record_json(const RecordView& r, const NameOf& name) {
  nlohmann::json fields = nlohmann::json::object();
  std::vector<std::string> conflicts;
  for (const auto& [k, f] : r.fields) {
    fields[k] = f.value;
    if (f.conflict()) conflicts.push_back(k);
  }
  return {{"id", r.id.hex()},
          {"type", r.type},
          {"section", r.section.name()},
          {"created_by", r.created_by.hex()},
          {"created_by_name", name(r.created_by)},
          {"created_at", when(r.created_at)},
          {"fields", fields},
          {"conflicts", conflicts}};
}

nlohmann::json conflict_json(const sync::Conflict& c, const NameOf& name) {
  nlohmann::json values = nlohmann::json::array();
  for (const auto& v : c.candidates) {
    values.push_back({{"value", v.value},
                      {"by", v.account.hex()},
                      {"by_name", name(v.account)},
                      {"device", v.device.hex()},
                      {"at", when(v.clock)}});
  }
  return {{"record", c.record.hex()}, {"field", c.field}, {"values", values}};
}

void print_record_lines(std::ostream& out, const std::vector<RecordView>& records) {
  if (records.empty()) {
    out << "No records.\n";
    return;
  }
  for (const auto& r : records) {
    std::string type = sync::printable(r.type);
    type.resize(std::max<std::size_t>(type.size(), 10), ' ');
    std::string section = r.section.name();
    section.resize(std::max<std::size_t>(section.size(), 10), ' ');
    out << r.id.short_hex() << "  " << type << " " << section << " " << record_summary(r)
        << conflict_note(r) << "\n";
  }
}

void print_record(std::ostream& out, const RecordView& r, const NameOf& name) {
  out << sync::printable(r.type) << " " << r.id.hex() << "\n"
      << "  section:    " << r.section.name() << "\n"
      << "  written by: " << name(r.created_by) << " at " << when(r.created_at) << " (UTC)\n";
  for (const auto& [k, f] : r.fields) {
    out << "  " << k << ": " << sync::printable(f.value, /*keep_line_breaks=*/true) << "\n";
    if (f.conflict()) {
      out << "    conflict: " << f.candidates.size() << " concurrent values\n";
      for (const auto& c : f.candidates) {
        out << "      \"" << sync::printable(c.value) << "\" by " << name(c.account) << " at " << when(c.clock)
            << "\n";
      }
    }
  }
}

void print_care_plan(std::ostream& out, const std::string& title, const sync::PlanState& state,
                     const NameOf& name, std::size_t recent) {
  const auto records = plan_records(state);
  out << title << "\n" << std::string(std::min<std::size_t>(title.size(), 72), '=') << "\n";
  if (records.empty()) {
    out << "\nNothing in this plan yet. Add to it with `kith add PLAN TYPE FIELD=VALUE ...`.\n";
    return;
  }
  std::map<std::string, std::vector<const RecordView*>> by_section;
  for (const auto& r : records) by_section[r.section.name()].push_back(&r);

  // About me, and what matters to me: the profile, as the person wrote it.
  const auto& profile = by_section["profile"];
  bool about = false, matters = false;
  for (const auto* r : profile) {
    about |= !field(*r, "about_me").empty() || !field(*r, "text").empty() ||
             !field(*r, "communication").empty() || !field(*r, "date_of_birth").empty();
    matters |= !field(*r, "what_matters").empty();
  }
  if (about) {
    out << "\nAbout me\n";
    for (const auto* r : profile) {
      std::string text = field(*r, "about_me");
      if (text.empty()) text = field(*r, "text");
      std::string rest = describe(*r, {"about_me", "what_matters", "text"});
      if (text.empty() && rest.empty()) continue;
      item(out, *r, text.empty() ? rest : (rest.empty() ? text : text + " (" + rest + ")"));
    }
  }
  if (matters) {
    out << "\nWhat matters to me\n";
    for (const auto* r : profile) {
      if (!field(*r, "what_matters").empty()) item(out, *r, field(*r, "what_matters"));
    }
  }
  auto section = [&](const std::string& name_of_section) {
    auto it = by_section.find(name_of_section);
    if (it == by_section.end() || it->second.empty()) return;
    const char* heading = heading_for(name_of_section);
    out << "\n" << (heading ? heading : name_of_section.c_str()) << "\n";
    for (const auto* r : it->second) item(out, *r, describe(*r));
  };
  section("outcomes");
  section("support");

  // Recent activity: activity records and notes, latest first.
  std::vector<const RecordView*> activity;
  for (const char* s : {"activity", "notes"}) {
    for (const auto* r : by_section[s]) activity.push_back(r);
  }
  if (!activity.empty()) {
    std::stable_sort(
        activity.begin(), activity.end(),
        [](const RecordView* a, const RecordView* b) { return moment(*a) > moment(*b); });
    out << "\nRecent activity\n";
    for (std::size_t i = 0; i < activity.size() && i < recent; ++i) {
      const auto& r = *activity[i];
      out << "  " << moment(r) << "  " << sync::printable(r.type) << ": " << describe(r, {"at"}) << "  (by "
          << name(r.created_by) << ")  [" << r.id.short_hex() << "]\n";
    }
    if (activity.size() > recent) {
      out << "  ... " << (activity.size() - recent)
          << " earlier; `kith list PLAN --section activity` shows them all\n";
    }
  }
  section("risk");
  std::set<std::string> shown = {"profile", "outcomes", "support", "activity", "notes", "risk"};
  for (const auto& [s, recs] : by_section) {
    if (!shown.count(s)) section(s);
  }
  const auto conflicts = state.conflicts();
  if (!conflicts.empty()) {
    out << "\n"
        << conflicts.size() << (conflicts.size() == 1 ? " field has" : " fields have")
        << " concurrent edits waiting for a person: `kith conflicts PLAN`\n";
  }
}

nlohmann::json care_plan_json(const std::string& title, const sync::PlanState& state,
                              const NameOf& name) {
  nlohmann::json sections = nlohmann::json::object();
  for (const auto& r : plan_records(state)) sections[r.section.name()].push_back(record_json(r, name));
  nlohmann::json conflicts = nlohmann::json::array();
  for (const auto& c : state.conflicts()) conflicts.push_back(conflict_json(c, name));
  return {{"title", title}, {"sections", sections}, {"conflicts", conflicts}};
}

void print_conflicts(std::ostream& out, const sync::PlanState& state,
                     const std::vector<sync::Conflict>& conflicts, const NameOf& name) {
  if (conflicts.empty()) {
    out << "No conflicts.\n";
    return;
  }
  for (const auto& c : conflicts) {
    auto r = state.record(c.record);
    out << (r ? r->type : std::string("record")) << " " << c.record.short_hex() << " field '"
        << c.field << "': " << c.candidates.size() << " concurrent values\n";
    for (std::size_t i = 0; i < c.candidates.size(); ++i) {
      const auto& v = c.candidates[i];
      out << "  " << (i == 0 ? "* " : "  ") << "\"" << sync::printable(v.value) << "\" by " << name(v.account)
          << " at " << when(v.clock) << "\n";
    }
    out << "  resolve with: kith resolve PLAN " << c.record.short_hex() << " " << c.field
        << " VALUE\n";
  }
  out << "(* is shown until a person resolves it)\n";
}

}  // namespace kith::cli
