#include "support/vectors.hpp"

#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace kith::test {

std::filesystem::path own_vector_path(const std::string& name) {
  return std::filesystem::path(KITH_TEST_VECTORS_DIR) / name;
}

std::filesystem::path shared_vector_path(const std::string& name) {
  if (const char* dir = std::getenv("KITH_SHARED_VECTORS"); dir && *dir) {
    return std::filesystem::path(dir) / name;
  }
  return std::filesystem::path(KITH_SHARED_VECTORS_DIR) / name;
}

nlohmann::json load_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("test vectors not found: " + path.string());
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("test vectors in " + path.string() +
                             " are not valid JSON: " + e.what());
  }
}

crypto::Bytes hex_field(const nlohmann::json& obj, const char* field) {
  return crypto::from_hex(obj.at(field).get<std::string>());
}

}  // namespace kith::test
