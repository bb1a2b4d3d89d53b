// In-process tests of how the circle of support reads on the command line: SECTION:PERM, WHEN,
// times in ISO UTC, and grants in plain words.
#include <gtest/gtest.h>

#include <functional>

#include "kith/cli/circle.hpp"
#include "kith/cli/error.hpp"

namespace kith::cli {
namespace {

constexpr std::uint64_t kNow = 1'767'225'600'000;  // 2026-01-01T00:00:00Z

std::string code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const CliError& e) {
    return e.code();
  }
  return "";
}

TEST(When, DurationsFromNow) {
  EXPECT_EQ(parse_when("7d", kNow), kNow + 7 * 86'400'000ull);
  EXPECT_EQ(parse_when("12h", kNow), kNow + 12 * 3'600'000ull);
  EXPECT_EQ(parse_when("30m", kNow), kNow + 30 * 60'000ull);
  EXPECT_EQ(parse_when("2s", kNow), kNow + 2000);
  EXPECT_EQ(parse_when("1d12h", kNow), kNow + 36 * 3'600'000ull);
  EXPECT_EQ(parse_when("2w", kNow), kNow + 14 * 86'400'000ull);
}

TEST(When, UtcDatesAndTimes) {
  EXPECT_EQ(parse_when("2026-06-01", kNow), 1'780'272'000'000ull);
  EXPECT_EQ(parse_when("2026-06-01T14:30", kNow), 1'780'272'000'000ull + 52'200'000);
  EXPECT_EQ(parse_when("2026-06-01T14:30:15Z", kNow), 1'780'272'000'000ull + 52'215'000);
  EXPECT_EQ(iso_utc(1'780'272'000'000ull + 52'215'000), "2026-06-01T14:30:15Z");
  EXPECT_EQ(parse_when("2028-02-29", kNow), 1'835'395'200'000ull);
}

TEST(When, AnythingElseIsRefused) {
  for (const char* bad : {"", "7", "d", "7x", "soon", "-1d", "0d", "2026-13-01", "2026-02-30",
                          "2027-02-29", "2026-06-01T25:00", "2026-06-01T12", "2025-12-31",
                          "99999999999999d"}) {
    EXPECT_EQ(code_of([&] { parse_when(bad, kNow); }), "bad_when") << bad;
  }
}

TEST(Grants, SectionColonPermission) {
  const auto g = parse_grant("Health:WRITE");
  EXPECT_EQ(g.section.name(), "health");
  EXPECT_EQ(g.permission, sync::Permission::kWrite);
  EXPECT_EQ(code_of([] { parse_grant("health"); }), "bad_grant");
  EXPECT_EQ(code_of([] { parse_grant("health:"); }), "bad_grant");
  EXPECT_EQ(code_of([] { parse_grant(":read"); }), "bad_grant");
  EXPECT_EQ(code_of([] { parse_grant("health:none"); }), "bad_grant");
  EXPECT_EQ(code_of([] { parse_grant("helth:read"); }), "unknown_section");
}

TEST(Grants, InPlainWords) {
  using P = sync::Permission;
  auto s = [](const char* n) { return sync::Section::parse(n); };
  const std::vector<sync::GrantSpec> grants{{s("health"), P::kWrite, 0},
                                            {s("profile"), P::kRead, 0},
                                            {s("notes"), P::kAppend, 0},
                                            {s("risk"), P::kRead, 0},
                                            {s("budget"), P::kRead, kNow}};
  EXPECT_EQ(grants_in_words(grants),
            "can read profile, risk; can read budget until 2026-01-01T00:00:00Z; can read and add "
            "to notes (editing only their own); can read and edit health");
  EXPECT_EQ(grant_line(grants[4]), "budget: read (until 2026-01-01T00:00:00Z)");
}

}  // namespace
}  // namespace kith::cli
