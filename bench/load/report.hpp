// Printing kithd_load's results: one block per run, then the median of every figure over the
// runs, and optionally everything as JSON.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "scenarios.hpp"

namespace kith::bench {

nlohmann::json to_json(const TrafficResult& r);
nlohmann::json to_json(const IdleResult& r);

void print(std::ostream& out, const TrafficResult& r);
void print(std::ostream& out, const IdleResult& r);

// The median of each figure of `runs` (objects from to_json with the same keys; numbers only).
nlohmann::json medians(const std::vector<nlohmann::json>& runs);
void print_medians(std::ostream& out, const std::string& scenario, const nlohmann::json& m,
                   std::size_t runs);

}  // namespace kith::bench
