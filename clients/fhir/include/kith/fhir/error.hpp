// What reading a FHIR bundle for `kith import` / kith_plan_import_fhir can fail with: a stable
// lower_snake_case code (the CLI's --json code and libkith's kith_last_error_code) and one
// sentence a person can act on, naming the entry that is wrong.
//
// Codes: file_too_large, not_json, not_fhir_bundle, not_fhir_document, composition_not_first,
// bad_fhir_entry, unresolved_reference, unknown_type, invalid_field. Add to them; never rename.
#pragma once

#include <stdexcept>
#include <string>

namespace kith::fhir {

class FhirError : public std::runtime_error {
 public:
  FhirError(std::string code, const std::string& message)
      : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const noexcept { return code_; }

 private:
  std::string code_;
};

}  // namespace kith::fhir
