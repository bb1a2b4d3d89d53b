// How people name the circle of support on the command line: a grant as SECTION:PERM, a moment
// as WHEN, a member as an account id or an unambiguous start of it; and how grants and times read
// back to them.
//
//   auto g = parse_grant("health:write");              // GrantSpec{health, kWrite}
//   auto t = parse_when("7d", now_ms());                // now + 7 days, Unix ms
//   auto m = resolve_member(engine.membership(plan), "3fa2");
//
// WHEN is either a duration from now — a whole number and a unit, s, m, h, d or w, and several
// of them together ("7d", "12h", "30m", "1d12h") — or a moment in UTC written the ISO 8601 way:
// "2025-06-01" (the start of that day, 00:00 UTC), "2025-06-01T14:30" or "2025-06-01T14:30:00",
// with an optional trailing "Z". Nothing here changes anything; failures are CliErrors with
// stable codes (bad_grant, unknown_section, bad_when, unknown_member, ambiguous_member).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kith/sync/engine.hpp"
#include "kith/sync/membership.hpp"

namespace kith::cli {

// "SECTION:PERM": SECTION one of the known sections, PERM read, append, write or manage.
// Throws CliError(bad_grant) for the shape or the permission, CliError(unknown_section) for a
// section name Kith does not know (a typo would otherwise grant a section no one writes to).
sync::GrantSpec parse_grant(std::string_view text);

// One of the known sections. Throws CliError(unknown_section).
sync::Section parse_section(std::string_view name);

// A moment after `now_ms`, Unix ms. Throws CliError(bad_when) for anything else, including a
// moment already past.
std::uint64_t parse_when(std::string_view text, std::uint64_t now_ms);

// "2025-06-01T14:30:00Z".
std::string iso_utc(std::uint64_t ms);

// Grants as a person says them, one phrase per permission:
//   "can read profile, outcomes; can add to notes (edit only their own)".
// Expiry is shown where a grant has one.
std::string grants_in_words(const std::vector<sync::GrantSpec>& grants);
// One grant: "health: read and edit (until 2025-06-01T00:00:00Z)".
std::string grant_line(const sync::GrantSpec& grant);
// What a permission lets someone do: "read", "read and add (edit only their own)", ...
std::string permission_in_words(sync::Permission p);

// Throws CliError(unknown_member) unless `ref` could be an account id or its start (hex): what
// can be said before looking at the plan.
void check_member_ref(std::string_view ref);
// A member of the plan (owner included) by account id or an unambiguous start of it.
// Throws CliError: unknown_member, ambiguous_member.
struct MemberNames;
// With `names`, a name this device gave a member (any case) also names them.
sync::AccountId resolve_member(const sync::MembershipLog& log, std::string_view ref,
                               const MemberNames* names = nullptr);

// The access-log kind as `--json` and libkith name it: "read", "change" or "membership".
std::string_view access_kind_name(sync::AccessEvent::Kind kind);

}  // namespace kith::cli
