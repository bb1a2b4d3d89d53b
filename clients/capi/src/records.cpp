// kith_plan_*, kith_record_*, kith_conflict_*: offline, against the local store, as the kith
// CLI's plan and record commands do (the same plan/record references, field checks and JSON).
#include <nlohmann/json.hpp>

#include "handle.hpp"
#include "kith/cli/error.hpp"
#include "kith/cli/refs.hpp"
#include "kith/cli/render.hpp"
#include "kith/sync/record_types.hpp"

using kith::capi::guarded;
using kith::capi::handle;
using kith::capi::require_out;
using kith::capi::required;
namespace cli = kith::cli;
namespace ks = kith::sync;  // `sync` would clash with ::sync()

namespace {

// names[i]=values[i] as FIELD=VALUE assignments, checked as the CLI checks them.
ks::Fields fields_of(const char* const* names, const char* const* values, size_t count) {
  if (count > 0 && (!names || !values)) {
    throw cli::CliError(cli::Exit::kUsage, "invalid_argument",
                        "names and values must be given when count is not 0");
  }
  std::vector<std::string> assignments;
  for (size_t i = 0; i < count; ++i) {
    assignments.push_back(std::string(required(names[i], "a field name")) + "=" +
                          (values[i] ? values[i] : ""));
  }
  return cli::parse_assignments(assignments);
}

std::string plan_list_json(const ks::SyncEngine& engine) {
  return cli::plans_json(engine).dump();
}

}  // namespace

extern "C" {

kith_status kith_plan_create(kith_home* home, const char* title, char** plan_id) noexcept {
  return guarded([&] {
    kith_home& h = handle(home);
    require_out(plan_id, "plan_id");
    const auto id = h.device.engine().create_plan(required(title, "the plan's title"));
    *plan_id = kith::capi::to_c(id.hex());
  });
}

kith_status kith_plan_list(kith_home* home, char** json) noexcept {
  return guarded([&] {
    kith_home& h = handle(home);
    require_out(json, "json");
    *json = kith::capi::to_c(plan_list_json(h.device.engine()));
  });
}

kith_status kith_record_add(kith_home* home, const char* plan, const char* type,
                            const char* const* names, const char* const* values, size_t count,
                            char** record_id) noexcept {
  return guarded([&] {
    kith_home& h = handle(home);
    require_out(record_id, "record_id");
    const std::string type_name(required(type, "the record type"));
    const ks::RecordType* t = ks::find_record_type(type_name);
    if (!t) {
      throw cli::CliError(cli::Exit::kUsage, "unknown_type",
                          "'" + type_name + "' is not a record type");
    }
    const ks::Fields fields = fields_of(names, values, count);
    for (const auto& [f, v] : fields) {
      if (auto bad = ks::check_field(*t, f, v)) {
        throw cli::CliError(cli::Exit::kUsage, "invalid_field", *bad);
      }
    }
    auto& engine = h.device.engine();
    const ks::PlanId p = cli::resolve_plan(engine, required(plan, "the plan"));
    *record_id = kith::capi::to_c(engine.add_record(p, type_name, fields).hex());
  });
}

kith_status kith_record_set(kith_home* home, const char* plan, const char* record,
                            const char* const* names, const char* const* values,
                            size_t count) noexcept {
  return guarded([&] {
    kith_home& h = handle(home);
    const ks::Fields fields = fields_of(names, values, count);
    if (fields.empty()) {
      throw cli::CliError(cli::Exit::kUsage, "invalid_argument", "give at least one field");
    }
    auto& engine = h.device.engine();
    const ks::PlanId p = cli::resolve_plan(engine, required(plan, "the plan"));
    const ks::RecordId r = cli::resolve_record(engine.state(p), required(record, "the record"));
    engine.set_fields(p, r, fields);
  });
}

kith_status kith_record_list(kith_home* home, const char* plan, const char* section,
                             const char* type, char** json) noexcept {
  return guarded([&] {
    kith_home& h = handle(home);
    require_out(json, "json");
    std::optional<ks::Section> only;
    if (auto s = kith::capi::optional_arg(section)) only = ks::Section::parse(*s);
    const auto only_type = kith::capi::optional_arg(type);
    const auto& engine = h.device.engine();
    const ks::PlanId p = cli::resolve_plan(engine, required(plan, "the plan"));
    const auto name = kith::capi::names(h, p);
    nlohmann::json records = nlohmann::json::array();
    for (const auto& r : cli::plan_records(engine.state(p), only)) {
      if (!only_type || r.type == *only_type) records.push_back(cli::record_json(r, name));
    }
    *json = kith::capi::to_c(nlohmann::json{{"plan", p.hex()}, {"records", records}}.dump());
  });
}

kith_status kith_record_show(kith_home* home, const char* plan, const char* record,
                             char** json) noexcept {
  return guarded([&] {
    kith_home& h = handle(home);
    require_out(json, "json");
    const auto& engine = h.device.engine();
    const ks::PlanId p = cli::resolve_plan(engine, required(plan, "the plan"));
    const auto& state = engine.state(p);
    const auto view = state.record(cli::resolve_record(state, required(record, "the record")));
    const auto name = kith::capi::names(h, p);
    nlohmann::json conflicts = nlohmann::json::array();
    for (const auto& c : state.conflicts(view->id))
      conflicts.push_back(cli::conflict_json(c, name));
    *json = kith::capi::to_c(nlohmann::json{
        {"plan", p.hex()},
        {"record", cli::record_json(*view, name)},
        {"conflict_values",
         conflicts}}.dump());
  });
}

kith_status kith_conflict_list(kith_home* home, const char* plan, char** json) noexcept {
  return guarded([&] {
    kith_home& h = handle(home);
    require_out(json, "json");
    const auto& engine = h.device.engine();
    const ks::PlanId p = cli::resolve_plan(engine, required(plan, "the plan"));
    const auto name = kith::capi::names(h, p);
    nlohmann::json out = nlohmann::json::array();
    for (const auto& c : engine.state(p).conflicts()) out.push_back(cli::conflict_json(c, name));
    *json = kith::capi::to_c(nlohmann::json{{"plan", p.hex()}, {"conflicts", out}}.dump());
  });
}

kith_status kith_conflict_resolve(kith_home* home, const char* plan, const char* record,
                                  const char* field, const char* value) noexcept {
  return guarded([&] {
    kith_home& h = handle(home);
    const std::string f(required(field, "the field"));
    if (auto bad = ks::check_field_name(f)) {
      throw cli::CliError(cli::Exit::kUsage, "bad_field", *bad);
    }
    if (!value) throw cli::CliError(cli::Exit::kUsage, "invalid_argument", "the value is NULL");
    auto& engine = h.device.engine();
    const ks::PlanId p = cli::resolve_plan(engine, required(plan, "the plan"));
    const ks::RecordId r = cli::resolve_record(engine.state(p), required(record, "the record"));
    if (!engine.state(p).in_conflict(r, f)) {
      throw cli::CliError(cli::Exit::kNotFound, "no_conflict",
                          "the field '" + f + "' of record " + r.short_hex() + " has no conflict");
    }
    engine.set_fields(p, r, {{f, value}});
  });
}

}  // extern "C"
