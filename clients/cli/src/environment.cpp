#include "kith/cli/environment.hpp"

#include <cstdlib>

namespace kith::cli {

Environment Environment::process() {
  return Environment{[](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
  }};
}

}  // namespace kith::cli
