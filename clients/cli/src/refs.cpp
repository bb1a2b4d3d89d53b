#include "kith/cli/refs.hpp"

#include <algorithm>
#include <cctype>
#include <set>

#include "kith/cli/error.hpp"
#include "kith/sync/record_types.hpp"

namespace kith::cli {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool is_hex(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isxdigit(static_cast<unsigned char>(c)) != 0;
  });
}

sync::PlanId resolve_plan(const sync::SyncEngine& engine, std::string_view ref) {
  if (ref.empty()) throw CliError(Exit::kUsage, "unknown_plan", "the plan name is empty");
  const auto plans = engine.plans();
  const std::string id_prefix = lower(ref);
  std::vector<std::pair<sync::PlanId, std::string>> by_title, by_prefix;
  for (const auto& [id, title] : plans) {
    if (id.hex() == id_prefix) return id;
    if (title == ref) by_title.emplace_back(id, title);
    if (is_hex(id_prefix) && id.hex().starts_with(id_prefix)) by_prefix.emplace_back(id, title);
  }
  // A title is what a person typed on purpose; it wins over a prefix that happens to match.
  const auto& found = !by_title.empty() ? by_title : by_prefix;
  if (found.size() == 1) return found.front().first;
  if (found.empty()) {
    throw CliError(Exit::kNotFound, "unknown_plan",
                   "no plan '" + std::string(ref) + "' on this device",
                   "`kith plan list` shows them");
  }
  std::string names;
  for (const auto& [id, title] : found) {
    if (!names.empty()) names += ", ";
    names += id.short_hex() + " (" + title + ")";
  }
  throw CliError(
      Exit::kNotFound, "ambiguous_plan",
      "'" + std::string(ref) + "' names more than one plan: " + names + "; give more of the id");
}

std::string plan_title(const sync::SyncEngine& engine, const sync::PlanId& plan) {
  for (const auto& [id, title] : engine.plans()) {
    if (id == plan) return title;
  }
  return plan.hex();
}

sync::RecordId resolve_record(const sync::PlanState& state, std::string_view ref) {
  const std::string prefix = lower(ref);
  if (!is_hex(prefix)) {
    throw CliError(Exit::kNotFound, "unknown_record",
                   "'" + std::string(ref) + "' is not a record id (ids are hexadecimal)");
  }
  std::vector<sync::RecordId> found;
  for (const auto& r : state.records()) {
    const std::string hex = r.id.hex();
    if (hex == prefix) return r.id;
    if (hex.starts_with(prefix)) found.push_back(r.id);
  }
  if (found.size() == 1) return found.front();
  if (found.empty()) {
    throw CliError(Exit::kNotFound, "unknown_record",
                   "no record '" + std::string(ref) + "' in this plan",
                   "`kith list PLAN` shows them");
  }
  throw CliError(Exit::kNotFound, "ambiguous_record",
                 "'" + std::string(ref) + "' names " + std::to_string(found.size()) +
                     " records; give more of the id");
}

sync::Fields parse_assignments(const std::vector<std::string>& args) {
  sync::Fields out;
  std::set<std::string> seen;
  for (const std::string& arg : args) {
    const auto eq = arg.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw CliError(Exit::kUsage, "bad_field",
                     "'" + arg + "' is not FIELD=VALUE (for example text=\"Walk to the shop\")");
    }
    std::string field = arg.substr(0, eq);
    if (auto bad = sync::check_field_name(field)) {
      throw CliError(Exit::kUsage, "bad_field", "in '" + arg + "': " + *bad);
    }
    if (field == sync::kDeletedField) {
      throw CliError(Exit::kUsage, "bad_field", "'" + field + "' is reserved");
    }
    if (!seen.insert(field).second) {
      throw CliError(Exit::kUsage, "bad_field", "the field '" + field + "' is given twice");
    }
    out.emplace_back(std::move(field), arg.substr(eq + 1));
  }
  return out;
}

}  // namespace kith::cli
