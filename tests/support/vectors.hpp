// Loading JSON test vectors. A vector file that cannot be found or parsed fails the test (it
// never skips): a suite that silently checks nothing is worse than no suite.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "kith/crypto/bytes.hpp"

namespace kith::test {

// tests/vectors/<name>
std::filesystem::path own_vector_path(const std::string& name);
// ../shared/vectors/<name>, or $KITH_SHARED_VECTORS/<name> when that is set.
std::filesystem::path shared_vector_path(const std::string& name);

// Parses the file; throws std::runtime_error with the path when it is missing or malformed.
nlohmann::json load_json(const std::filesystem::path& path);

// A hex string field as bytes.
crypto::Bytes hex_field(const nlohmann::json& obj, const char* field);

}  // namespace kith::test
