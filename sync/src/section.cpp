#include "kith/sync/section.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>

#include "kith/sync/error.hpp"

namespace kith::sync {

Section Section::parse(std::string_view name) {
  auto valid_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  };
  if (name.empty() || name.size() > 32 || name[0] < 'a' || name[0] > 'z' ||
      !std::all_of(name.begin(), name.end(), valid_char)) {
    throw SyncError(SyncErrorCode::kUnknownSection,
                    "'" + std::string(name.substr(0, 40)) +
                        "' is not a section name: use 1 to 32 lower-case letters, digits, '-' "
                        "or '_', starting with a letter (for example 'health')");
  }
  return Section(std::string(name));
}

bool Section::is_known() const noexcept {
  return std::find(kKnownSections.begin(), kKnownSections.end(), name_) != kKnownSections.end();
}

std::string Hlc::text() const { return std::to_string(wall_ms) + "." + std::to_string(counter); }

Hlc Hlc::parse(std::string_view text) {
  Hlc h;
  auto dot = text.find('.');
  auto bad = [&] {
    return SyncError(SyncErrorCode::kMalformed,
                     "'" + std::string(text) + "' is not a clock reading (<ms>.<counter>)");
  };
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == text.size()) throw bad();
  auto r1 = std::from_chars(text.data(), text.data() + dot, h.wall_ms);
  auto r2 = std::from_chars(text.data() + dot + 1, text.data() + text.size(), h.counter);
  if (r1.ec != std::errc() || r1.ptr != text.data() + dot || r2.ec != std::errc() ||
      r2.ptr != text.data() + text.size()) {
    throw bad();
  }
  return h;
}

Hlc HlcClock::tick(std::uint64_t physical_ms) {
  if (physical_ms > last_.wall_ms) {
    last_ = {physical_ms, 0};
  } else if (last_.counter == UINT32_MAX) {
    // A remote reading may carry any counter; move to the next millisecond rather than wrap.
    last_ = {last_.wall_ms + 1, 0};
  } else {
    ++last_.counter;
  }
  return last_;
}

void HlcClock::observe(const Hlc& remote) {
  if (remote > last_) last_ = remote;
}

}  // namespace kith::sync
