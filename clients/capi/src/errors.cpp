// Status codes and the thread-local last error. The codes come from the CLI's (clients/README.md
// lists them), so a message and its code read the same from the app and from `kith --json`.
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <unordered_map>

#include "handle.hpp"
#include "kith/cli/error.hpp"
#include "kith/cli/names.hpp"

namespace kith::capi {
namespace {

thread_local std::string t_message;
thread_local std::string t_code;
thread_local bool t_out_of_memory = false;

kith_status status_of(const cli::CliError& e) {
  static const std::unordered_map<std::string, kith_status> kByCode = {
      {"invalid_argument", KITH_ERR_INVALID_ARGUMENT},
      {"bad_server_url", KITH_ERR_INVALID_ARGUMENT},
      {"bad_role", KITH_ERR_INVALID_ARGUMENT},
      {"bad_name", KITH_ERR_INVALID_ARGUMENT},
      {"bad_recovery_key", KITH_ERR_INVALID_ARGUMENT},
      {"bad_plan_id", KITH_ERR_INVALID_ARGUMENT},
      {"already_linked", KITH_ERR_FAILED},
      {"name_taken", KITH_ERR_INVALID_ARGUMENT},
      {"not_initialised", KITH_ERR_NOT_INITIALISED},
      {"already_initialised", KITH_ERR_ALREADY_INITIALISED},
      {"wrong_passphrase", KITH_ERR_WRONG_PASSPHRASE},
      {"empty_passphrase", KITH_ERR_INVALID_ARGUMENT},
      {"home_busy", KITH_ERR_BUSY},
      {"forbidden", KITH_ERR_FORBIDDEN},
      {"not_member", KITH_ERR_FORBIDDEN},
      {"grant_expired", KITH_ERR_FORBIDDEN},
      {"invite_code_invalid", KITH_ERR_BAD_INVITE_CODE},
      {"invite_unknown", KITH_ERR_INVITE_REFUSED},
      {"invite_used", KITH_ERR_INVITE_REFUSED},
      {"invite_expired", KITH_ERR_INVITE_REFUSED},
      {"invite_mismatch", KITH_ERR_INVITE_REFUSED},
      {"no_server", KITH_ERR_NO_SERVER},
      {"tls_untrusted", KITH_ERR_TLS},
      {"tls_failed", KITH_ERR_TLS},
      {"server_error", KITH_ERR_SERVER},
      {"server_refused", KITH_ERR_SERVER},
      {"home_io", KITH_ERR_IO},
      {"store", KITH_ERR_IO},
      {"schema_too_new", KITH_ERR_IO},
      {"file_too_large", KITH_ERR_BAD_BUNDLE},
      {"not_json", KITH_ERR_BAD_BUNDLE},
      {"not_fhir_bundle", KITH_ERR_BAD_BUNDLE},
      {"not_fhir_document", KITH_ERR_BAD_BUNDLE},
      {"composition_not_first", KITH_ERR_BAD_BUNDLE},
      {"bad_fhir_entry", KITH_ERR_BAD_BUNDLE},
      {"unresolved_reference", KITH_ERR_BAD_BUNDLE},
  };
  if (auto it = kByCode.find(e.code()); it != kByCode.end()) return it->second;
  switch (e.exit()) {
    case cli::Exit::kUsage:
      return KITH_ERR_INVALID_FIELD;  // bad_field, invalid_field, unknown_type, unknown_section
    case cli::Exit::kNotFound:
      return KITH_ERR_NOT_FOUND;
    case cli::Exit::kKeys:
      return KITH_ERR_KEYS;
    case cli::Exit::kNetwork:
      return KITH_ERR_NETWORK;
    default:
      return KITH_ERR_FAILED;
  }
}

}  // namespace

void clear_error() noexcept {
  t_out_of_memory = false;
  t_message.clear();
  t_code.clear();
}

kith_status fail_current() noexcept {
  try {
    const cli::CliError e = cli::to_cli_error(std::current_exception());
    t_message = e.message();  // without the CLI's own hint ("`kith plan list` shows them")
    t_code = e.code();
    if (t_message.empty()) t_message = "failed (" + t_code + ")";
    return status_of(e);
  } catch (...) {
    // Out of memory while describing the failure: the static strings still say something.
    t_message.clear();
    t_code.clear();
    t_out_of_memory = true;
    return KITH_ERR_FAILED;
  }
}

std::string_view required(const char* s, const char* what) {
  if (s == nullptr || *s == '\0') {
    throw cli::CliError(
        cli::Exit::kUsage, "invalid_argument",
        std::string(what) + " must be given (it was " + (s ? "empty" : "NULL") + ")");
  }
  return s;
}

std::optional<std::string> optional_arg(const char* s) {
  if (s == nullptr || *s == '\0') return std::nullopt;
  return std::string(s);
}

kith_home& handle(kith_home* h) {
  if (!h) throw cli::CliError(cli::Exit::kUsage, "invalid_argument", "the home handle is NULL");
  return *h;
}

void require_out(const void* out, const char* what) {
  if (!out) {
    throw cli::CliError(cli::Exit::kUsage, "invalid_argument",
                        std::string("the out-parameter ") + what + " is NULL");
  }
}

char* to_c(std::string_view s) {
  auto* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (!p) throw std::bad_alloc();
  std::memcpy(p, s.data(), s.size());
  p[s.size()] = '\0';
  return p;
}

cli::NameOf names(const kith_home& h, const sync::PlanId& plan) {
  return cli::name_of(h.device.info(),
                      cli::MemberNames::load(h.device.store(), h.device.engine(), plan));
}

}  // namespace kith::capi

extern "C" {

const char* kith_last_error(void) noexcept {
  if (kith::capi::t_out_of_memory) return "out of memory";
  return kith::capi::t_message.c_str();
}

const char* kith_last_error_code(void) noexcept {
  if (kith::capi::t_out_of_memory) return "out_of_memory";
  return kith::capi::t_code.c_str();
}

const char* kith_status_name(kith_status status) noexcept {
  switch (status) {
    case KITH_OK:
      return "KITH_OK";
    case KITH_ERR_INVALID_ARGUMENT:
      return "KITH_ERR_INVALID_ARGUMENT";
    case KITH_ERR_NOT_INITIALISED:
      return "KITH_ERR_NOT_INITIALISED";
    case KITH_ERR_ALREADY_INITIALISED:
      return "KITH_ERR_ALREADY_INITIALISED";
    case KITH_ERR_WRONG_PASSPHRASE:
      return "KITH_ERR_WRONG_PASSPHRASE";
    case KITH_ERR_KEYS:
      return "KITH_ERR_KEYS";
    case KITH_ERR_BUSY:
      return "KITH_ERR_BUSY";
    case KITH_ERR_NOT_FOUND:
      return "KITH_ERR_NOT_FOUND";
    case KITH_ERR_FORBIDDEN:
      return "KITH_ERR_FORBIDDEN";
    case KITH_ERR_INVALID_FIELD:
      return "KITH_ERR_INVALID_FIELD";
    case KITH_ERR_BAD_INVITE_CODE:
      return "KITH_ERR_BAD_INVITE_CODE";
    case KITH_ERR_INVITE_REFUSED:
      return "KITH_ERR_INVITE_REFUSED";
    case KITH_ERR_NO_SERVER:
      return "KITH_ERR_NO_SERVER";
    case KITH_ERR_NETWORK:
      return "KITH_ERR_NETWORK";
    case KITH_ERR_TLS:
      return "KITH_ERR_TLS";
    case KITH_ERR_SERVER:
      return "KITH_ERR_SERVER";
    case KITH_ERR_IO:
      return "KITH_ERR_IO";
    case KITH_ERR_FAILED:
      return "KITH_ERR_FAILED";
    case KITH_ERR_BAD_BUNDLE:
      return "KITH_ERR_BAD_BUNDLE";
  }
  return "KITH_ERR_UNKNOWN";
}

void kith_string_free(char* s) noexcept { std::free(s); }

const char* kith_version(void) noexcept { return "0.1.0"; }

}  // extern "C"
