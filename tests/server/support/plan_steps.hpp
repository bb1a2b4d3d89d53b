// Steps of the sync conversation that several kithd tests take by hand, below the engine: let a
// member in without handing out keys, and read the whole fetch log.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "support/test_device.hpp"

namespace kith::test {

// Now, Unix milliseconds (the clock grant expiry is measured on).
std::uint64_t wall_ms();

// The owner invites `member` with `grants` and the member accepts: the two membership entries
// only, each pushed by its author over its own connection. No key rotation and no envelopes
// (unlike add_member), so it takes two round trips and works for grants that expire soon.
// Fails the test if the server refuses either entry.
void admit_member(TestDevice& owner, TestDevice& member, const sync::PlanId& plan,
                  const std::vector<sync::GrantSpec>& grants);

// The whole fetch log of `plan` as `device` may read it, page by page (`page` entries each).
// Returns the first Error instead when the server refuses (in `error`).
struct FetchLogPages {
  std::vector<kith::v1::AccessLogEntry> entries;
  std::size_t pages = 0;
  std::optional<kith::v1::Error> error;
};
FetchLogPages fetch_whole_log(TestDevice& device, const sync::PlanId& plan, std::uint32_t page);

}  // namespace kith::test
