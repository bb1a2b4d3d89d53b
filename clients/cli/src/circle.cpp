#include "kith/cli/circle.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>
#include <map>
#include <optional>

#include "kith/cli/error.hpp"
#include "kith/cli/names.hpp"
#include "kith/cli/refs.hpp"
#include "kith/sync/error.hpp"

namespace kith::cli {
namespace {

std::string known_sections() {
  std::string out;
  for (auto s : sync::kKnownSections) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

[[noreturn]] void bad_when(std::string_view text, const std::string& why) {
  throw CliError(Exit::kUsage, "bad_when",
                 "'" + std::string(text) + "' is not a time " + why +
                     "; give a duration such as 7d, 12h or 30m, or a UTC date such as 2025-06-01 "
                     "or 2025-06-01T14:30");
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

bool leap(unsigned y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

// Reads exactly `n` digits at `pos`.
bool digits(std::string_view s, std::size_t pos, std::size_t n, unsigned& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    out = out * 10 + static_cast<unsigned>(s[i] - '0');
  }
  return true;
}

std::optional<std::uint64_t> parse_iso(std::string_view s) {
  if (!s.empty() && (s.back() == 'Z' || s.back() == 'z')) s.remove_suffix(1);
  unsigned y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!digits(s, 0, 4, y) || s.size() < 10 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d)) {
    return std::nullopt;
  }
  if (s.size() > 10) {
    if ((s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s, 11, 2, h) || s.size() < 16 ||
        s[13] != ':' || !digits(s, 14, 2, mi)) {
      return std::nullopt;
    }
    if (s.size() > 16 && (s.size() != 19 || s[16] != ':' || !digits(s, 17, 2, sec))) {
      return std::nullopt;
    }
  }
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > kDays[mo - 1] + (mo == 2 && leap(y) ? 1 : 0) ||
      h > 23 || mi > 59 || sec > 59) {
    return std::nullopt;
  }
  const std::int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
  return static_cast<std::uint64_t>(secs) * 1000;
}

std::optional<std::uint64_t> parse_duration(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::uint64_t total = 0;
  std::size_t i = 0;
  while (i < s.size()) {
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(s.data() + i, s.data() + s.size(), n);
    if (ec != std::errc() || end == s.data() + s.size()) return std::nullopt;
    i = static_cast<std::size_t>(end - s.data());
    std::uint64_t unit = 0;
    switch (std::tolower(static_cast<unsigned char>(s[i]))) {
      case 's':
        unit = 1000;
        break;
      case 'm':
        unit = 60'000;
        break;
      case 'h':
        unit = 3'600'000;
        break;
      case 'd':
        unit = 86'400'000;
        break;
      case 'w':
        unit = 604'800'000;
        break;
      default:
        return std::nullopt;
    }
    ++i;
    if (n > (std::uint64_t{1} << 40) / unit) return std::nullopt;  // centuries: surely a typo
    total += n * unit;
  }
  return total;
}

}  // namespace

sync::Section parse_section(std::string_view name) {
  const std::string section = lower(name);
  if (std::find(sync::kKnownSections.begin(), sync::kKnownSections.end(), section) ==
      sync::kKnownSections.end()) {
    throw CliError(Exit::kUsage, "unknown_section",
                   "'" + section + "' is not a section; use one of: " + known_sections());
  }
  return sync::Section::parse(section);
}

sync::GrantSpec parse_grant(std::string_view text) {
  const auto colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) {
    throw CliError(Exit::kUsage, "bad_grant",
                   "'" + std::string(text) +
                       "' is not SECTION:PERM (for example health:write; PERM is read, append, "
                       "write or manage)");
  }
  const sync::Section section = parse_section(text.substr(0, colon));
  const std::string perm = lower(text.substr(colon + 1));
  const auto p = sync::parse_permission(perm);
  if (!p) {
    throw CliError(Exit::kUsage, "bad_grant",
                   "'" + perm + "' is not a permission; use read, append, write or manage");
  }
  return sync::GrantSpec{section, *p, 0};
}

std::uint64_t parse_when(std::string_view text, std::uint64_t now_ms) {
  if (auto d = parse_duration(text)) {
    if (*d == 0) bad_when(text, "in the future");
    return now_ms + *d;
  }
  if (auto at = parse_iso(text)) {
    if (*at <= now_ms) bad_when(text, "in the future (it is already past)");
    return *at;
  }
  bad_when(text, "Kith understands");
}

std::string iso_utc(std::uint64_t ms) {
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string permission_in_words(sync::Permission p) {
  using P = sync::Permission;
  switch (p) {
    case P::kNone:
      return "no access";
    case P::kRead:
      return "read";
    case P::kAppend:
      return "read and add (edit only their own)";
    case P::kWrite:
      return "read and edit";
    case P::kManage:
      return "read, edit and give others access";
  }
  return "no access";
}

std::string grant_line(const sync::GrantSpec& g) {
  std::string out = g.section.name() + ": " + permission_in_words(g.permission);
  if (g.expires_at_ms != 0) out += " (until " + iso_utc(g.expires_at_ms) + ")";
  return out;
}

std::string grants_in_words(const std::vector<sync::GrantSpec>& grants) {
  // One phrase per permission and expiry.
  std::vector<std::pair<std::pair<sync::Permission, std::uint64_t>, std::string>> phrases;
  for (const auto& g : grants) {
    const auto key = std::make_pair(g.permission, g.expires_at_ms);
    auto it =
        std::find_if(phrases.begin(), phrases.end(), [&](const auto& p) { return p.first == key; });
    if (it == phrases.end()) {
      phrases.push_back({key, g.section.name()});
    } else {
      it->second += ", " + g.section.name();
    }
  }
  // Least to most: "can read ...; can read and edit ...".
  std::stable_sort(phrases.begin(), phrases.end(),
                   [](const auto& x, const auto& y) { return x.first.first < y.first.first; });
  using P = sync::Permission;
  std::string out;
  for (const auto& [key, sections] : phrases) {
    if (!out.empty()) out += "; ";
    switch (key.first) {
      case P::kNone:
        out += "no access to " + sections;
        break;
      case P::kRead:
        out += "can read " + sections;
        break;
      case P::kAppend:
        out += "can read and add to " + sections + " (editing only their own)";
        break;
      case P::kWrite:
        out += "can read and edit " + sections;
        break;
      case P::kManage:
        out += "can read, edit and give others access to " + sections;
        break;
    }
    if (key.second != 0) out += " until " + iso_utc(key.second);
  }
  return out.empty() ? "no access" : out;
}

void check_member_ref(std::string_view ref) {
  // An account id (or its start), or a name this device gave a member.
  if (ref.empty() || ref.size() > 64) {
    throw CliError(Exit::kNotFound, "unknown_member",
                   "'" + std::string(ref) + "' is neither an account id nor a member's name",
                   "`kith members PLAN` lists them");
  }
}

sync::AccountId resolve_member(const sync::MembershipLog& log, std::string_view ref,
                               const MemberNames* names) {
  check_member_ref(ref);
  // Names and account ids are looked up together: a name members choose themselves must not
  // take the place of the account id someone types.
  std::vector<sync::AccountId> found;
  if (names) found = names->accounts_named(ref);
  if (is_hex(ref)) {
    const std::string prefix = lower(ref);
    for (const auto& m : log.members()) {
      const std::string id = m.account.hex();
      if (id == prefix) return m.account;
      if (id.starts_with(prefix) &&
          std::find(found.begin(), found.end(), m.account) == found.end()) {
        found.push_back(m.account);
      }
    }
  }
  if (found.size() == 1) return found.front();
  if (found.empty() && !is_hex(ref)) {
    throw CliError(Exit::kNotFound, "unknown_member",
                   "no member is called '" + std::string(ref) + "' here",
                   "`kith members PLAN` lists them, and `kith name PLAN MEMBER NAME` gives one a "
                   "name on this device");
  }
  if (found.empty()) {
    throw CliError(Exit::kNotFound, "unknown_member",
                   "no member '" + std::string(ref) +
                       "' in this plan (someone who joined recently appears after the next sync)",
                   "`kith members PLAN` lists them");
  }
  std::string ids;
  for (const auto& a : found) ids += (ids.empty() ? "" : ", ") + a.short_hex();
  throw CliError(Exit::kNotFound, "ambiguous_member",
                 "'" + std::string(ref) + "' stands for more than one member: " + ids +
                     "; give more of the account id",
                 "`kith members PLAN` lists them");
}

std::string_view access_kind_name(sync::AccessEvent::Kind kind) {
  switch (kind) {
    case sync::AccessEvent::Kind::kRead:
      return "read";
    case sync::AccessEvent::Kind::kChange:
      return "change";
    case sync::AccessEvent::Kind::kMembership:
      return "membership";
  }
  return "change";
}

}  // namespace kith::cli
