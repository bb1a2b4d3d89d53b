// Structured logs: one JSON object per line on stderr, e.g.
//   {"ts":"2026-11-22T10:00:00.123Z","event":"auth","device":"3f2a9c01","account":"9be1..."}
// Callers pass only what the server may see (ids, codes, counts, sizes, timings): never plan
// content, never key material, never a challenge nonce or signature. Ids are logged as their
// short form (8 hex digits) except where an operator needs the full one.
// Thread-safe: lines from concurrent threads never interleave.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

namespace kith::server::log {

using Fields = nlohmann::json;

// Writes {"ts":..., "event": event, ...fields} as one line. `fields` must be an object (or null).
void event(std::string_view event, const Fields& fields = Fields::object()) noexcept;

}  // namespace kith::server::log
