// The process environment as the CLI reads it: KITH_HOME, KITH_SERVER, KITH_CA, KITH_PASSPHRASE
// and HOME. Injected, so that tests can run commands in-process without touching the real one.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace kith::cli {

struct Environment {
  // The value of a variable; nullopt when unset. An empty value counts as unset.
  std::function<std::optional<std::string>(std::string_view)> get;

  // Reads getenv().
  static Environment process();
};

}  // namespace kith::cli
