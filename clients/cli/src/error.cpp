#include "kith/cli/error.hpp"

#include <string>

#include "kith/client/transport.hpp"
#include "kith/crypto/error.hpp"
#include "kith/fhir/error.hpp"
#include "kith/sync/error.hpp"

namespace kith::cli {
namespace {

std::string snake(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c == '-') c = '_';
  }
  return out;
}

CliError from_crypto(const crypto::CryptoError& e) {
  using C = crypto::ErrorCode;
  switch (e.code()) {
    case C::kWrongPassphrase:
      return CliError(Exit::kKeys, "wrong_passphrase",
                      "the passphrase does not open this device's keys");
    case C::kCorruptKeyFile:
      return CliError(Exit::kKeys, "corrupt_key_file",
                      std::string("the key file is damaged: ") + e.what());
    case C::kUnsupportedFormat:
      return CliError(Exit::kKeys, "unsupported_key_file",
                      std::string("the key file was written by a newer Kith: ") + e.what());
    case C::kIo:
      return CliError(Exit::kKeys, "key_file_io", e.what());
    default:
      return CliError(Exit::kFailed, std::string(crypto::error_code_name(e.code())), e.what());
  }
}

CliError from_sync(const sync::SyncError& e) {
  using C = sync::SyncErrorCode;
  const std::string code(sync::sync_error_code_name(e.code()));
  switch (e.code()) {
    case C::kInvalidField:
    case C::kUnknownSection:
    case C::kTooLarge:
      return CliError(Exit::kUsage, code, e.what());
    default:
      return CliError(Exit::kFailed, code, e.what());
  }
}

}  // namespace

CliError to_cli_error(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const CliError& e) {
    return e;
  } catch (const client::TransportError& e) {
    return CliError(Exit::kNetwork, snake(client::to_string(e.kind())), e.what());
  } catch (const fhir::FhirError& e) {
    // A file that is not a bundle Kith can read is bad input, like a malformed FIELD=VALUE.
    return CliError(Exit::kUsage, e.code(), e.what());
  } catch (const crypto::CryptoError& e) {
    return from_crypto(e);
  } catch (const sync::SyncError& e) {
    return from_sync(e);
  } catch (const std::exception& e) {
    return CliError(Exit::kFailed, "internal", e.what());
  } catch (...) {
    return CliError(Exit::kFailed, "internal", "an unknown error");
  }
}

}  // namespace kith::cli
