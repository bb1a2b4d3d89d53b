#include "kith/cli/passphrase.hpp"

#include <string>

#include "kith/cli/error.hpp"
#include "kith/crypto/bytes.hpp"
#include "tty.hpp"

namespace kith::cli {

Passphrase read_passphrase(const Environment& env, std::string_view prompt, bool confirm) {
  if (auto from_env = env.get("KITH_PASSPHRASE")) {
    Passphrase p(crypto::SecretBytes(crypto::as_bytes(*from_env)));
    crypto::secure_wipe(from_env->data(), from_env->size());
    return p;
  }
  Tty tty;
  if (!tty.ok()) {
    throw CliError(Exit::kKeys, "no_passphrase",
                   "a passphrase is needed: set KITH_PASSPHRASE or run kith on a terminal");
  }
  auto ask = [&tty](std::string_view question) {
    auto line = tty.ask(question);
    if (!line) throw CliError(Exit::kKeys, "no_passphrase", "no passphrase was entered");
    return Passphrase(std::move(*line));
  };
  Passphrase first = ask(prompt);
  if (first.empty()) {
    throw CliError(Exit::kKeys, "empty_passphrase", "the passphrase must not be empty");
  }
  if (confirm) {
    Passphrase again = ask("Repeat the passphrase: ");
    if (!crypto::constant_time_equal(crypto::as_bytes(first.view()),
                                     crypto::as_bytes(again.view()))) {
      throw CliError(Exit::kKeys, "passphrase_mismatch", "the two passphrases differ");
    }
  }
  return first;
}

}  // namespace kith::cli
