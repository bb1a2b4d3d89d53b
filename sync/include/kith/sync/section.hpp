// Plan sections (scopes) and the hybrid logical clock that orders edits.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

namespace kith::sync {

// A section name: 1..32 characters, a lower-case letter then letters, digits, '-' or '_'. The
// ten sections of DESIGN.md §2.1 are known, and `names` (each member's name as they share it
// with the circle: engine.hpp, shared_names); others are accepted, so the set can grow without
// a new protocol version. Value type; thread-safe.
class Section {
 public:
  // Throws SyncError(kUnknownSection) for an invalid name.
  static Section parse(std::string_view name);
  const std::string& name() const noexcept { return name_; }
  bool is_known() const noexcept;
  friend auto operator<=>(const Section&, const Section&) = default;

 private:
  explicit Section(std::string name) : name_(std::move(name)) {}
  std::string name_;
};

inline constexpr std::array<std::string_view, 11> kKnownSections = {
    "profile", "outcomes", "support", "activity", "notes", "risk",
    "health",  "assessment", "budget", "circle",  "names"};

// The section where members share their names, and the record type each name is.
inline constexpr std::string_view kNamesSection = "names";
inline constexpr std::string_view kMemberNameType = "member";

// A hybrid logical clock reading: physical milliseconds, then a counter for events within the
// same millisecond (or when the physical clock runs behind a clock already seen). Prints as
// "<wall_ms>.<counter>" and parses back.
struct Hlc {
  std::uint64_t wall_ms = 0;
  std::uint32_t counter = 0;

  std::string text() const;
  // Throws SyncError(kMalformed).
  static Hlc parse(std::string_view text);
  friend auto operator<=>(const Hlc&, const Hlc&) = default;
};

// Issues monotonically increasing HLC readings for one device. Not thread-safe.
class HlcClock {
 public:
  explicit HlcClock(Hlc last = {}) : last_(last) {}
  // A reading later than every reading issued or observed so far.
  Hlc tick(std::uint64_t physical_ms);
  // Takes a remote reading into account, so that a later tick() is after it.
  void observe(const Hlc& remote);
  const Hlc& last() const noexcept { return last_; }

 private:
  Hlc last_;
};

}  // namespace kith::sync
