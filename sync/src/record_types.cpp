#include "kith/sync/record_types.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace kith::sync {

namespace {

using K = FieldKind;

constexpr std::string_view kOutcomeStatus[] = {"not-started", "in-progress", "achieved",
                                               "abandoned"};
constexpr std::string_view kSupportStatus[] = {"planned", "active", "paused", "ended"};
constexpr std::string_view kRiskLevel[] = {"low", "medium", "high"};
constexpr std::string_view kActivityKind[] = {
    "visit", "medication-prompt", "personal-care", "meal", "mood", "other"};
constexpr std::string_view kAssetKind[] = {"person", "community-asset", "service"};
constexpr std::string_view kAssessmentStatus[] = {"draft", "completed", "approved"};

constexpr FieldSpec kProfileFields[] = {{"text", K::kText, {}},
                                        {"about_me", K::kText, {}},
                                        {"what_matters", K::kText, {}},
                                        {"communication", K::kText, {}},
                                        {"date_of_birth", K::kDate, {}}};
constexpr FieldSpec kOutcomeFields[] = {{"text", K::kText, {}},
                                        {"status", K::kChoice, kOutcomeStatus},
                                        {"target_date", K::kDate, {}},
                                        {"review_date", K::kDate, {}}};
constexpr FieldSpec kSupportFields[] = {
    {"text", K::kText, {}},     {"who", K::kText, {}},
    {"when", K::kText, {}},     {"time", K::kTime, {}},
    {"cost", K::kAmount, {}},   {"start_date", K::kDate, {}},
    {"end_date", K::kDate, {}}, {"status", K::kChoice, kSupportStatus}};
constexpr FieldSpec kActivityFields[] = {{"text", K::kText, {}},
                                         {"kind", K::kChoice, kActivityKind},
                                         {"at", K::kDateTime, {}},
                                         {"mood", K::kText, {}}};
constexpr FieldSpec kNoteFields[] = {{"text", K::kText, {}}, {"at", K::kDateTime, {}}};
constexpr FieldSpec kRiskFields[] = {{"text", K::kText, {}},
                                     {"level", K::kChoice, kRiskLevel},
                                     {"review_date", K::kDate, {}},
                                     {"crisis_plan", K::kText, {}}};
constexpr FieldSpec kHealthFields[] = {{"text", K::kText, {}},
                                       {"medicine", K::kText, {}},
                                       {"dose", K::kText, {}},
                                       {"time", K::kTime, {}},
                                       {"start_date", K::kDate, {}}};
constexpr FieldSpec kContactFields[] = {{"text", K::kText, {}},
                                        {"name", K::kText, {}},
                                        {"kind", K::kChoice, kAssetKind},
                                        {"phone", K::kText, {}}};
constexpr FieldSpec kAssessmentFields[] = {{"text", K::kText, {}},
                                           {"domain", K::kText, {}},
                                           {"score", K::kText, {}},
                                           {"status", K::kChoice, kAssessmentStatus},
                                           {"date", K::kDate, {}}};
constexpr FieldSpec kBudgetFields[] = {
    {"text", K::kText, {}}, {"amount", K::kAmount, {}}, {"date", K::kDate, {}}};

constexpr FieldSpec kMemberFields[] = {{"text", K::kText, {}}, {"name", K::kName, {}}};

constexpr RecordType kTypes[] = {
    {"profile", "profile", false, kProfileFields},
    {"outcome", "outcomes", false, kOutcomeFields},
    {"support", "support", false, kSupportFields},
    {"activity", "activity", true, kActivityFields},
    {"note", "notes", true, kNoteFields},
    {"risk", "risk", false, kRiskFields},
    {"health", "health", false, kHealthFields},
    {"contact", "circle", false, kContactFields},
    {"assessment", "assessment", false, kAssessmentFields},
    {"budget", "budget", false, kBudgetFields},
    {"member", "names", false, kMemberFields},
};

bool digits(std::string_view s, std::size_t from, std::size_t n) {
  if (s.size() < from + n) return false;
  return std::all_of(s.begin() + static_cast<long>(from), s.begin() + static_cast<long>(from + n),
                     [](char c) { return c >= '0' && c <= '9'; });
}

int number(std::string_view s, std::size_t from, std::size_t n) {
  int v = 0;
  for (std::size_t i = from; i < from + n; ++i) v = v * 10 + (s[i] - '0');
  return v;
}

bool is_date(std::string_view s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-' || !digits(s, 0, 4) || !digits(s, 5, 2) ||
      !digits(s, 8, 2)) {
    return false;
  }
  int y = number(s, 0, 4), m = number(s, 5, 2), d = number(s, 8, 2);
  static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m < 1 || m > 12 || d < 1 || d > kDays[m - 1]) return false;
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return !(m == 2 && d == 29 && !leap);
}

bool is_time(std::string_view s) {
  return s.size() == 5 && s[2] == ':' && digits(s, 0, 2) && digits(s, 3, 2) &&
         number(s, 0, 2) < 24 && number(s, 3, 2) < 60;
}

bool is_amount(std::string_view s) {
  auto dot = s.find('.');
  std::string_view whole = s.substr(0, dot);
  if (whole.empty() || whole.size() > 9 || !digits(whole, 0, whole.size())) return false;
  if (dot == std::string_view::npos) return true;
  return s.size() - dot - 1 == 2 && digits(s, dot + 1, 2);
}

// The code point starting at s[i] and its length in bytes, or nullopt when the bytes there are
// not well-formed UTF-8 (overlong forms, surrogates and values past U+10FFFF included).
std::optional<std::pair<char32_t, std::size_t>> code_point_at(std::string_view s, std::size_t i) {
  const auto b = static_cast<unsigned char>(s[i]);
  std::size_t n = 0;
  char32_t c = 0;
  char32_t min = 0;
  if (b < 0x80) return std::pair<char32_t, std::size_t>{b, 1};
  if ((b & 0xE0) == 0xC0) {
    n = 2, c = b & 0x1F, min = 0x80;
  } else if ((b & 0xF0) == 0xE0) {
    n = 3, c = b & 0x0F, min = 0x800;
  } else if ((b & 0xF8) == 0xF0) {
    n = 4, c = b & 0x07, min = 0x10000;
  } else {
    return std::nullopt;
  }
  if (i + n > s.size()) return std::nullopt;
  for (std::size_t k = 1; k < n; ++k) {
    const auto cont = static_cast<unsigned char>(s[i + k]);
    if ((cont & 0xC0) != 0x80) return std::nullopt;
    c = (c << 6) | (cont & 0x3F);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return std::nullopt;
  return std::pair<char32_t, std::size_t>{c, n};
}

bool is_control(char32_t c) { return c < 0x20 || (c >= 0x7F && c <= 0x9F); }

bool is_direction_control(char32_t c) {
  return (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069) || c == 0x200E ||
         c == 0x200F || c == 0x061C;
}

}  // namespace

std::optional<std::string> check_member_name(std::string_view name) {
  if (name.empty()) return "is empty";
  if (name.size() > 64) return "is longer than 64 bytes";
  bool control = false, direction = false;
  for (std::size_t i = 0; i < name.size();) {
    const auto cp = code_point_at(name, i);
    if (!cp) return "is not valid UTF-8 text";
    control |= is_control(cp->first);
    direction |= is_direction_control(cp->first);
    i += cp->second;
  }
  if (control) return "has control characters in it";
  if (direction) return "has direction-changing characters in it";
  return std::nullopt;
}

std::string printable(std::string_view text, bool keep_line_breaks) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const auto cp = code_point_at(text, i);
    const std::size_t n = cp ? cp->second : 1;
    const bool line_break = cp && (cp->first == '\n' || cp->first == '\t');
    if (!cp || ((is_control(cp->first) || is_direction_control(cp->first)) &&
                !(line_break && keep_line_breaks))) {
      out += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
    } else {
      out.append(text.substr(i, n));
    }
    i += n;
  }
  return out;
}

std::span<const RecordType> record_types() { return kTypes; }

const RecordType* find_record_type(std::string_view name) {
  for (const auto& t : kTypes) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

std::optional<std::string> check_field_name(std::string_view field) {
  auto ok = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  };
  if (field.empty() || field.size() > 64 || !std::all_of(field.begin(), field.end(), ok) ||
      field[0] == '_') {
    // Built with append: GCC 12 at -O3 mis-warns (-Wrestrict) on operator+ chains here.
    std::string msg = "'";
    msg.append(field.substr(0, 64));
    msg.append(
        "' is not a field name: use 1 to 64 letters, digits, '-' or '_', not starting "
        "with '_'");
    return msg;
  }
  return std::nullopt;
}

std::optional<std::string> check_field(const RecordType& type, std::string_view field,
                                       std::string_view value) {
  if (auto bad = check_field_name(field)) return bad;
  auto spec = std::find_if(type.fields.begin(), type.fields.end(),
                           [&](const FieldSpec& f) { return f.name == field; });
  if (spec == type.fields.end() || value.empty()) return std::nullopt;  // free text / cleared
  std::string f(field);
  switch (spec->kind) {
    case FieldKind::kText:
      return std::nullopt;
    case FieldKind::kName:
      if (auto bad = check_member_name(value)) return "'" + f + "' " + *bad;
      return std::nullopt;
    case FieldKind::kDate:
      if (is_date(value)) return std::nullopt;
      return "'" + f + "' must be a date like 2026-11-22";
    case FieldKind::kDateTime:
      if (value.size() == 16 && value[10] == 'T' && is_date(value.substr(0, 10)) &&
          is_time(value.substr(11))) {
        return std::nullopt;
      }
      return "'" + f + "' must be a date and time like 2026-11-22T09:30";
    case FieldKind::kTime:
      if (is_time(value)) return std::nullopt;
      return "'" + f + "' must be a time like 09:30";
    case FieldKind::kAmount:
      if (is_amount(value)) return std::nullopt;
      return "'" + f + "' must be an amount in pounds like 120 or 120.50";
    case FieldKind::kChoice: {
      if (std::find(spec->choices.begin(), spec->choices.end(), value) != spec->choices.end()) {
        return std::nullopt;
      }
      std::string msg = "'" + f + "' must be one of: ";
      for (std::size_t i = 0; i < spec->choices.size(); ++i) {
        if (i) msg.append(", ");
        msg.append(spec->choices[i]);
      }
      return msg;
    }
  }
  return std::nullopt;
}

}  // namespace kith::sync
