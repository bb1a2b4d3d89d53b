#include "kith/fhir/vocabulary.hpp"

#include <cstdio>
#include <ctime>

#include "kith/crypto/hash.hpp"

namespace kith::fhir {

std::string resource_uuid(const sync::PlanId& plan, std::string_view name) {
  crypto::Blake2b h(16);
  h.update(std::string_view("kith fhir resource uuid v1"));
  h.update(plan.bytes());
  h.update(name);
  crypto::Bytes b = h.finish();
  b[6] = static_cast<std::uint8_t>((b[6] & 0x0F) | 0x80);  // version 8
  b[8] = static_cast<std::uint8_t>((b[8] & 0x3F) | 0x80);  // RFC 9562 variant
  const std::string hex = crypto::to_hex(b);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20);
}

std::string resource_url(const sync::PlanId& plan, std::string_view name) {
  return "urn:uuid:" + resource_uuid(plan, name);
}

std::string fhir_instant(std::uint64_t unix_ms) {
  const auto secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[40];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char ms[8];
  std::snprintf(ms, sizeof ms, ".%03uZ", static_cast<unsigned>(unix_ms % 1000));
  return std::string(buf, n) + ms;
}

}  // namespace kith::fhir
