// kith_plan_export_fhir, kith_plan_import_fhir: the kith CLI's `export --fhir` and `import`
// (kith/cli/fhir_io.hpp), without the files: the app decides where the JSON goes.
#include "handle.hpp"
#include "kith/cli/fhir_io.hpp"
#include "kith/cli/refs.hpp"

using kith::capi::guarded;
using kith::capi::handle;
using kith::capi::require_out;
using kith::capi::required;
namespace cli = kith::cli;

extern "C" {

kith_status kith_plan_export_fhir(kith_home* home, const char* plan, char** json) noexcept {
  return guarded([&] {
    kith_home& h = handle(home);
    require_out(json, "json");
    const auto p = cli::resolve_plan(h.device.engine(), required(plan, "the plan"));
    *json = kith::capi::to_c(cli::export_fhir(h.device, p).text);
  });
}

kith_status kith_plan_import_fhir(kith_home* home, const char* json, const char* title,
                                  char** plan_id) noexcept {
  return guarded([&] {
    kith_home& h = handle(home);
    const auto bundle = kith::fhir::read_bundle(required(json, "the bundle"));
    const auto made = cli::import_fhir(h.device, bundle, kith::capi::optional_arg(title));
    if (plan_id) *plan_id = kith::capi::to_c(made.plan.hex());
  });
}

}  // extern "C"
