// kith export PLAN --fhir FILE, kith import FILE: a plan as an HL7 FHIR R4 document bundle, and
// a bundle as a new plan. Both offline.
#include <memory>

#include "context.hpp"
#include "kith/cli/fhir_io.hpp"
#include "kith/cli/files.hpp"
#include "kith/cli/refs.hpp"

namespace kith::cli {
namespace {

struct ExportArgs {
  std::string plan;
  std::string file;
  bool force = false;
};

struct ImportArgs {
  std::string file;
  std::string title;
};

void export_cmd(Context& ctx, const ExportArgs& a) {
  const std::filesystem::path path(a.file);
  std::error_code ec;
  // Said before asking for the passphrase; write_private_file checks again, atomically.
  if (!a.force && std::filesystem::exists(path, ec)) {
    throw CliError(Exit::kFailed, "file_exists",
                   a.file + " already exists; add --force to replace it");
  }
  Device device = ctx.open(Device::Access::kRead);
  const sync::PlanId plan = resolve_plan(device.engine(), a.plan);
  const FhirExport out = export_fhir(device, plan);
  write_private_file(path, out.text, a.force, "file_io");
  if (ctx.opts.json) {
    ctx.emit({{"plan", plan.hex()},
              {"file", a.file},
              {"format", "fhir-r4-document-bundle"},
              {"records", out.records},
              {"resources", out.resources},
              {"mode", "0600"}});
    return;
  }
  ctx.out << "Wrote " << count_of(out.records, "record", "records") << " of \""
          << plan_title(device.engine(), plan) << "\" to " << a.file
          << " as a FHIR R4 document bundle (" << out.resources << " resources).\n"
          << "The file is not encrypted: anyone who can read it can read the plan. Only you can "
             "read it (mode 0600); keep it that way, and delete it when you no longer need it.\n";
}

void import_cmd(Context& ctx, const ImportArgs& a) {
  // Everything is read and checked before the keys are opened, so a bad file changes nothing.
  const fhir::ImportedPlan bundle = fhir::read_bundle(read_file(a.file, fhir::kMaxBundleBytes));
  std::optional<std::string> title;
  if (!a.title.empty()) title = a.title;
  Device device = ctx.open(Device::Access::kWrite);
  const FhirImport made = import_fhir(device, bundle, title);
  if (ctx.opts.json) {
    ctx.emit({{"plan", made.plan.hex()},
              {"title", made.title},
              {"records", made.records},
              {"by_type", made.by_type},
              {"members_not_recreated", made.members_left_out},
              {"consents_not_recreated", made.consents_left_out},
              {"note", not_recreated_note(made)}});
    return;
  }
  ctx.out << "Imported " << count_of(made.records, "record", "records") << " into a new plan \""
          << made.title << "\" (" << made.plan.hex() << "), owned by you.\n"
          << not_recreated_note(made) << "\n";
}

}  // namespace

void register_fhir_commands(CLI::App& app, Context& ctx) {
  {
    auto a = std::make_shared<ExportArgs>();
    auto* c = app.add_subcommand(
        "export", "Write the plan, as far as you may read it, to a FHIR R4 document bundle");
    c->add_option("PLAN", a->plan, kPlanHelp)->required();
    c->add_option("--fhir", a->file, "The file to write (JSON)")->required();
    c->add_flag("--force", a->force, "Replace FILE if it exists");
    c->footer(
        "The file is NOT encrypted: it is the plan in plain text (health data), readable by anyone "
        "who can read the file. It is written atomically, readable by you alone (mode 0600). It "
        "holds the records of every section you may read, the circle of support (members by "
        "account id), one Consent per grant and who wrote each record; never keys.");
    c->callback([&ctx, a] { ctx.action = [&ctx, a] { export_cmd(ctx, *a); }; });
  }
  {
    auto a = std::make_shared<ImportArgs>();
    auto* c = app.add_subcommand(
        "import", "Make a new plan of yours from a FHIR R4 document bundle (from `kith export`)");
    c->add_option("FILE", a->file, "The bundle (JSON, at most 16 MiB)")->required();
    c->add_option("--title", a->title, "What to call the new plan (default: the bundle's title)");
    c->footer(
        "The records come back with their types and fields. Members, grants and consents are not "
        "recreated: the new plan is yours alone until you invite people again. The file is checked "
        "in full first; if anything in it is wrong, nothing is created.");
    c->callback([&ctx, a] { ctx.action = [&ctx, a] { import_cmd(ctx, *a); }; });
  }
}

}  // namespace kith::cli
