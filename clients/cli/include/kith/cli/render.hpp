// How records and plans read, for people (text) and for scripts (JSON).
//
// `show` prints a plan the way a care plan reads: about me, what matters to me, outcomes,
// support, recent activity, risks, then the other sections. Authors appear by name where this
// device knows one ("you", or the name its person gave a member: kith/cli/names.hpp), otherwise
// by a short account id.
#pragma once

#include <cstddef>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "kith/sync/engine.hpp"
#include "kith/sync/plan_state.hpp"

namespace kith::cli {

// Who an account is, for people.
using NameOf = std::function<std::string(const sync::AccountId&)>;

// The records a person reads as the plan: those of `section`, or of every section but `names`
// (whose `member` records are the names members share, shown as names rather than as records).
std::vector<sync::RecordView> plan_records(const sync::PlanState& state,
                                           const std::optional<sync::Section>& section = {});

// One line: the record's text, else its first field, shortened.
std::string record_summary(const sync::RecordView& r, std::size_t width = 60);

nlohmann::json record_json(const sync::RecordView& r, const NameOf& name);
// Every plan on this device: id, title, records, conflicts, changes waiting to upload, cursor.
nlohmann::json plans_json(const sync::SyncEngine& engine);
nlohmann::json conflict_json(const sync::Conflict& c, const NameOf& name);

// `kith list`: one record a line, with a short id to type back.
void print_record_lines(std::ostream& out, const std::vector<sync::RecordView>& records);
// `kith show PLAN RECORD`: every field, with concurrent values where a field is in conflict.
void print_record(std::ostream& out, const sync::RecordView& r, const NameOf& name);
// `kith show PLAN`.
void print_care_plan(std::ostream& out, const std::string& title, const sync::PlanState& state,
                     const NameOf& name, std::size_t recent = 10);
nlohmann::json care_plan_json(const std::string& title, const sync::PlanState& state,
                              const NameOf& name);
// `kith conflicts PLAN`.
void print_conflicts(std::ostream& out, const sync::PlanState& state,
                     const std::vector<sync::Conflict>& conflicts, const NameOf& name);

}  // namespace kith::cli
