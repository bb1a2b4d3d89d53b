#include "kith/sync/section_digest.hpp"

#include <algorithm>
#include <string_view>

namespace kith::sync {

crypto::Hash next_section_digest(const crypto::Hash& previous, const OpHash& op) {
  static constexpr std::string_view kLabel = "kith/v1/section-digest";
  const auto len = static_cast<std::uint8_t>(kLabel.size());
  crypto::Blake2b h;
  h.update(crypto::ByteView(&len, 1)).update(kLabel).update(previous).update(op);
  Bytes out = h.finish();
  crypto::Hash d{};
  std::copy(out.begin(), out.end(), d.begin());
  return d;
}

bool SectionDigest::matches(std::uint64_t count, crypto::ByteView other) const noexcept {
  // Lengths are not secret: constant_time_equal compares them first.
  const bool same_digest = crypto::constant_time_equal(digest, other);
  return same_digest && count == op_count;
}

}  // namespace kith::sync
