#include "kith/cli/fhir_io.hpp"

#include "kith/cli/error.hpp"
#include "kith/cli/refs.hpp"

namespace kith::cli {

FhirExport export_fhir(const Device& device, const sync::PlanId& plan) {
  const auto& engine = device.engine();
  std::vector<sync::RecordView> records = engine.state(plan).records();
  std::erase_if(records,
                [](const sync::RecordView& r) { return r.section.name() == sync::kNamesSection; });
  fhir::ExportInput in{plan,
                       plan_title(engine, plan),
                       std::move(records),
                       engine.membership(plan).members(),
                       engine.identity().account(),
                       device.info().name,
                       now_ms(),
                       engine.shared_names(plan)};
  const nlohmann::ordered_json bundle = fhir::export_bundle(in);
  FhirExport out;
  // A value that is not valid UTF-8 (which only a faulty client could have written) becomes
  // U+FFFD rather than failing the whole export.
  out.text = bundle.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
  out.records = in.records.size();
  out.resources = bundle["entry"].size();
  return out;
}

FhirImport import_fhir(Device& device, const fhir::ImportedPlan& bundle,
                       const std::optional<std::string>& title) {
  FhirImport made;
  made.title = title.value_or(bundle.title);
  if (made.title.empty()) {
    throw CliError(Exit::kUsage, "usage", "the plan's title must not be empty");
  }
  made.plan = device.engine().create_plan(made.title);
  try {
    for (const auto& r : bundle.records) {
      device.engine().add_record(made.plan, r.type, r.fields);
      ++made.by_type[r.type];
    }
  } catch (...) {
    try {
      device.forget_plan(made.plan);
    } catch (...) {
      // The first failure is the one to report; the store's own error would only hide it.
    }
    throw;
  }
  made.records = bundle.records.size();
  made.members_left_out = bundle.members;
  made.consents_left_out = bundle.consents;
  return made;
}

std::string not_recreated_note(const FhirImport& made) {
  std::string out =
      "Members, grants and consents are not recreated: the new plan is yours alone until you "
      "invite people again with `kith invite`";
  if (made.members_left_out || made.consents_left_out) {
    out += " (the file listed " + std::to_string(made.members_left_out) + " member" +
           (made.members_left_out == 1 ? "" : "s") + " and " +
           std::to_string(made.consents_left_out) + " consent" +
           (made.consents_left_out == 1 ? "" : "s") + ")";
  }
  return out + ".";
}

}  // namespace kith::cli
