// kith add, set, list, show, conflicts, resolve: all offline, against the local store.
#include <memory>

#include "context.hpp"
#include "kith/cli/refs.hpp"
#include "kith/sync/record_types.hpp"

namespace kith::cli {
namespace {

struct Args {
  std::string plan;
  std::string type;
  std::string record;
  std::string field;
  std::string value;
  std::string section;
  std::vector<std::string> assignments;
};

const sync::RecordType& require_type(const std::string& name) {
  if (const auto* t = sync::find_record_type(name)) return *t;
  std::string known;
  for (const auto& t : sync::record_types()) {
    if (!known.empty()) known += ", ";
    known += std::string(t.name) + " (" + std::string(t.section) + ")";
  }
  throw CliError(Exit::kUsage, "unknown_type",
                 "'" + name + "' is not a record type; use one of: " + known);
}

void add(Context& ctx, const Args& a) {
  // Everything that can be checked without the keys is checked before asking for them.
  const sync::RecordType& type = require_type(a.type);
  const sync::Fields fields = parse_assignments(a.assignments);
  for (const auto& [f, v] : fields) {
    if (auto bad = sync::check_field(type, f, v)) {
      throw CliError(Exit::kUsage, "invalid_field", *bad);
    }
  }
  Device device = ctx.open(Device::Access::kWrite);
  const sync::PlanId plan = resolve_plan(device.engine(), a.plan);
  const sync::RecordId id = device.engine().add_record(plan, a.type, fields);
  if (ctx.opts.json) {
    ctx.emit({{"id", id.hex()},
              {"plan", plan.hex()},
              {"type", a.type},
              {"section", std::string(type.section)},
              {"waiting", device.engine().outbox_size(plan)}});
  } else {
    ctx.out << id.hex() << "\n";
  }
}

void set(Context& ctx, const Args& a) {
  const sync::Fields fields = parse_assignments(a.assignments);
  if (fields.empty()) throw CliError(Exit::kUsage, "usage", "give at least one FIELD=VALUE");
  Device device = ctx.open(Device::Access::kWrite);
  auto& engine = device.engine();
  const sync::PlanId plan = resolve_plan(engine, a.plan);
  const sync::RecordId record = resolve_record(engine.state(plan), a.record);
  std::vector<std::string> resolved;
  for (const auto& [f, v] : fields) {
    if (engine.state(plan).in_conflict(record, f)) resolved.push_back(f);
  }
  engine.set_fields(plan, record, fields);
  if (ctx.opts.json) {
    nlohmann::json names = nlohmann::json::array();
    for (const auto& [f, v] : fields) names.push_back(f);
    ctx.emit({{"plan", plan.hex()},
              {"record", record.hex()},
              {"fields", names},
              {"resolved_conflicts", resolved},
              {"waiting", engine.outbox_size(plan)}});
    return;
  }
  const auto view = engine.state(plan).record(record);
  ctx.out << "Updated " << (view ? view->type : "record") << " " << record.short_hex() << ":";
  for (const auto& [f, v] : fields) ctx.out << " " << f;
  ctx.out << "\n";
  for (const auto& f : resolved) ctx.out << "This also resolves the conflict on '" << f << "'.\n";
}

void list(Context& ctx, const Args& a) {
  std::optional<sync::Section> section;
  if (!a.section.empty()) {
    try {
      section = sync::Section::parse(a.section);
    } catch (const sync::SyncError&) {
      throw CliError(Exit::kUsage, "unknown_section", "'" + a.section + "' is not a section name");
    }
  }
  if (!a.type.empty()) require_type(a.type);
  Device device = ctx.open(Device::Access::kRead);
  const auto& engine = device.engine();
  const sync::PlanId plan = resolve_plan(engine, a.plan);
  std::vector<sync::RecordView> records;
  for (auto& r : plan_records(engine.state(plan), section)) {
    if (a.type.empty() || r.type == a.type) records.push_back(std::move(r));
  }
  if (ctx.opts.json) {
    const auto name = ctx.names(device, plan);
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : records) out.push_back(record_json(r, name));
    ctx.emit({{"plan", plan.hex()}, {"records", out}});
    return;
  }
  print_record_lines(ctx.out, records);
}

void show(Context& ctx, const Args& a) {
  Device device = ctx.open(Device::Access::kRead);
  const auto& engine = device.engine();
  const sync::PlanId plan = resolve_plan(engine, a.plan);
  const auto& state = engine.state(plan);
  const auto name = ctx.names(device, plan);
  if (!a.record.empty()) {
    const auto view = state.record(resolve_record(state, a.record));
    if (ctx.opts.json) {
      nlohmann::json j = record_json(*view, name);
      nlohmann::json conflicts = nlohmann::json::array();
      for (const auto& c : state.conflicts(view->id)) conflicts.push_back(conflict_json(c, name));
      ctx.emit({{"plan", plan.hex()}, {"record", j}, {"conflict_values", conflicts}});
    } else {
      print_record(ctx.out, *view, name);
    }
    return;
  }
  const std::string title = plan_title(engine, plan);
  if (ctx.opts.json) {
    nlohmann::json j = care_plan_json(title, state, name);
    j["plan"] = plan.hex();
    j["waiting"] = engine.outbox_size(plan);
    ctx.emit(j);
    return;
  }
  print_care_plan(ctx.out, title, state, name);
  if (const auto waiting = engine.outbox_size(plan)) {
    ctx.out << "\n"
            << count_of(waiting, "change", "changes") << " waiting to upload (`kith sync`).\n";
  }
}

void conflicts(Context& ctx, const Args& a) {
  Device device = ctx.open(Device::Access::kRead);
  const auto& engine = device.engine();
  const sync::PlanId plan = resolve_plan(engine, a.plan);
  const auto& state = engine.state(plan);
  const auto list = state.conflicts();
  const auto name = ctx.names(device, plan);
  if (ctx.opts.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& c : list) out.push_back(conflict_json(c, name));
    ctx.emit({{"plan", plan.hex()}, {"conflicts", out}});
    return;
  }
  print_conflicts(ctx.out, state, list, name);
}

void resolve(Context& ctx, const Args& a) {
  if (auto bad = sync::check_field_name(a.field)) throw CliError(Exit::kUsage, "bad_field", *bad);
  Device device = ctx.open(Device::Access::kWrite);
  auto& engine = device.engine();
  const sync::PlanId plan = resolve_plan(engine, a.plan);
  const sync::RecordId record = resolve_record(engine.state(plan), a.record);
  if (!engine.state(plan).in_conflict(record, a.field)) {
    throw CliError(Exit::kNotFound, "no_conflict",
                   "the field '" + a.field + "' of record " + record.short_hex() +
                       " has no conflict; change it with `kith set`");
  }
  engine.set_fields(plan, record, {{a.field, a.value}});
  if (ctx.opts.json) {
    ctx.emit({{"plan", plan.hex()},
              {"record", record.hex()},
              {"field", a.field},
              {"value", a.value},
              {"waiting", engine.outbox_size(plan)}});
    return;
  }
  ctx.out << "Resolved '" << a.field << "' of " << record.short_hex() << " to \"" << a.value
          << "\".\n";
}

}  // namespace

void register_record_commands(CLI::App& app, Context& ctx) {
  auto bind = [&ctx](CLI::App* cmd, std::shared_ptr<Args> args, void (*fn)(Context&, const Args&)) {
    cmd->callback([&ctx, args, fn] { ctx.action = [&ctx, args, fn] { fn(ctx, *args); }; });
  };
  const char* plan_help = kPlanHelp;
  const char* record_help = "The record: its id or an unambiguous start of it";

  {
    auto a = std::make_shared<Args>();
    auto* c = app.add_subcommand("add", "Add a record (prints its id); TYPE implies the section");
    c->add_option("PLAN", a->plan, plan_help)->required();
    c->add_option("TYPE", a->type,
                  "outcome, support, activity, note, risk, health, contact, profile, assessment, "
                  "budget")
        ->required();
    c->add_option("FIELD=VALUE", a->assignments, "Fields, e.g. text=\"Walk to the shop\"");
    bind(c, a, add);
  }
  {
    auto a = std::make_shared<Args>();
    auto* c = app.add_subcommand("set", "Edit a record's fields");
    c->add_option("PLAN", a->plan, plan_help)->required();
    c->add_option("RECORD", a->record, record_help)->required();
    c->add_option("FIELD=VALUE", a->assignments, "Fields to change")->required();
    bind(c, a, set);
  }
  {
    auto a = std::make_shared<Args>();
    auto* c = app.add_subcommand("list", "List a plan's records, one a line");
    c->add_option("PLAN", a->plan, plan_help)->required();
    c->add_option("--section", a->section, "Only this section (profile, outcomes, support, ...)");
    c->add_option("--type", a->type, "Only this record type");
    bind(c, a, list);
  }
  {
    auto a = std::make_shared<Args>();
    auto* c = app.add_subcommand("show", "Read the plan as a care plan, or one record in full");
    c->add_option("PLAN", a->plan, plan_help)->required();
    c->add_option("RECORD", a->record, record_help);
    bind(c, a, show);
  }
  {
    auto a = std::make_shared<Args>();
    auto* c = app.add_subcommand("conflicts", "Concurrent edits waiting for a person to choose");
    c->add_option("PLAN", a->plan, plan_help)->required();
    bind(c, a, conflicts);
  }
  {
    auto a = std::make_shared<Args>();
    auto* c = app.add_subcommand("resolve", "Settle a conflict on one field with VALUE");
    c->add_option("PLAN", a->plan, plan_help)->required();
    c->add_option("RECORD", a->record, record_help)->required();
    c->add_option("FIELD", a->field, "The field in conflict")->required();
    c->add_option("VALUE", a->value, "The value to keep")->required();
    bind(c, a, resolve);
  }
}

}  // namespace kith::cli
