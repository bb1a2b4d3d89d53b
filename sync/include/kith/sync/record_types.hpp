// The care domain's record types over a generic field map.
//
// A record is (id, type, fields); every field value is UTF-8 text. A type names the section it
// lives in, whether it is append-only (activity records and case notes: written once, never
// edited, so never in conflict), and the fields it knows with the kind of value each takes
// (date, time, amount, one of a set of statuses). Unknown fields are kept as free text, and every
// type has a free-text `text` field, so a new type needs an entry in the table, not new machinery.
// Immutable after start-up; thread-safe.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kith::sync {

enum class FieldKind {
  kText,      // any UTF-8 text
  kDate,      // YYYY-MM-DD
  kDateTime,  // YYYY-MM-DDTHH:MM (local time of the person, as recorded)
  kTime,      // HH:MM, 24-hour
  kAmount,    // a non-negative money amount in pounds and pence: 12 or 12.50
  kChoice,    // one of the listed choices
  kName,      // a member's name, as check_member_name accepts it
};

struct FieldSpec {
  std::string_view name;
  FieldKind kind;
  std::span<const std::string_view> choices;  // for kChoice
};

struct RecordType {
  std::string_view name;     // e.g. "outcome"
  std::string_view section;  // e.g. "outcomes"
  bool append_only;
  std::span<const FieldSpec> fields;
};

// Every known type, in a stable order.
std::span<const RecordType> record_types();
// The type called `name`, or nullopt.
const RecordType* find_record_type(std::string_view name);

// Field names reserved for the merge engine (not settable as data).
inline constexpr std::string_view kDeletedField = "_deleted";

// Checks one value against the type's field spec. Returns a sentence saying what is wrong
// ("'date' must be a date like 2026-11-22"), or nullopt when the value is acceptable (unknown
// fields are free text and always acceptable). Field names are 1..64 characters of letters,
// digits, '_' or '-'.
std::optional<std::string> check_field(const RecordType& type, std::string_view field,
                                       std::string_view value);
// Whether `name` can stand for a member in front of people: 1 to 64 bytes of UTF-8 with no
// control characters (C0, DEL, C1) and no bidirectional overrides or isolates, which could make
// a name print as something else or move what follows it. Returns what is wrong ("is empty",
// ...) to follow "that name", or nullopt.
std::optional<std::string> check_member_name(std::string_view name);
// `text` as it may be printed to a terminal: each control character (C0, DEL, C1; newline and
// tab kept when `keep_line_breaks`), bidirectional override or isolate, and byte that is not
// part of well-formed UTF-8 becomes U+FFFD. Field values come from other members; printed
// raw, an escape sequence in one could rewrite what a person sees.
std::string printable(std::string_view text, bool keep_line_breaks = false);
// As check_field, for the field name alone.
std::optional<std::string> check_field_name(std::string_view field);

}  // namespace kith::sync
