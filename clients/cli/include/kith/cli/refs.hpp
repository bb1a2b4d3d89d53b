// How people name things on the command line: a plan by its id, an unambiguous prefix of it, or
// its title; a record by its id or an unambiguous prefix; a change as FIELD=VALUE.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kith/sync/engine.hpp"

namespace kith::cli {

// Throws CliError: unknown_plan, ambiguous_plan (naming the candidates).
// ASCII lower case; whether `s` is one or more hex digits (an id or the start of one).
std::string lower(std::string_view s);
bool is_hex(std::string_view s);

sync::PlanId resolve_plan(const sync::SyncEngine& engine, std::string_view ref);
// The plan's title on this device (its id when it has none).
std::string plan_title(const sync::SyncEngine& engine, const sync::PlanId& plan);
// Visible records only. Throws CliError: unknown_record, ambiguous_record.
sync::RecordId resolve_record(const sync::PlanState& state, std::string_view ref);

// Splits each "FIELD=VALUE" at its first '='; VALUE may be empty or hold '='. Checks field
// names (sync::check_field_name) and refuses the reserved `_deleted` and a field given twice.
// Throws CliError(bad_field) naming the argument; never changes anything.
sync::Fields parse_assignments(const std::vector<std::string>& args);

}  // namespace kith::cli
