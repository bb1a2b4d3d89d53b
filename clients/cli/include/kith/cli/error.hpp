// What a kith command reports when it fails: a stable code for scripts (the `--json` form), an
// exit status by family, and one sentence a person can act on.
//
// Every failure a command can meet ends up as a CliError (`to_cli_error` converts the
// exceptions of the libraries underneath), so `main` has one place that prints it. The codes
// and statuses are part of the CLI's interface (clients/README.md lists them); add to them,
// never renumber.
#pragma once

#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>

namespace kith::cli {

// Exit statuses, by family of failure.
enum class Exit : int {
  kOk = 0,
  kFailed = 1,    // anything else: the local store failed, the engine refused a change
  kUsage = 2,     // the command line: unknown command, bad flag, malformed FIELD=VALUE
  kNotFound = 3,  // no such plan or record, or an ambiguous prefix
  kKeys = 4,      // the home and its keys: not initialised, wrong passphrase, no passphrase
  kNetwork = 5,   // the server: none configured, unreachable, untrusted, refused
};

class CliError : public std::runtime_error {
 public:
  // `code` is lower_snake_case and stable (e.g. "unknown_plan").
  CliError(Exit exit, std::string code, const std::string& message)
      : std::runtime_error(message), exit_(exit), code_(std::move(code)), message_(message) {}
  // With what to do next in the CLI's own terms (`cli_hint`, e.g. "`kith plan list` shows
  // them"): what() is "message; cli_hint", as the CLI prints it, while message() leaves it out
  // for an app on libkith, whose person has no `kith` to run.
  CliError(Exit exit, std::string code, const std::string& message, const std::string& cli_hint)
      : std::runtime_error(message + "; " + cli_hint),
        exit_(exit),
        code_(std::move(code)),
        message_(message) {}

  Exit exit() const noexcept { return exit_; }
  const std::string& code() const noexcept { return code_; }
  // The sentence without the CLI's hint.
  const std::string& message() const noexcept { return message_; }

 private:
  Exit exit_;
  std::string code_;
  std::string message_;
};

// Converts whatever a command threw (CliError, crypto, sync, transport, CLI11 aside) into a
// CliError; unknown exceptions become "internal".
CliError to_cli_error(std::exception_ptr error);

}  // namespace kith::cli
