// deploy/demo.sh, the newcomer's walk through the four-person scenario, run as shipped against a
// real kithd: it must finish, and each person must see what the script says they see.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include "support/kithd_process.hpp"
#include "support/temp_dir.hpp"

namespace kith::test {
namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The part of `text` from the line holding `from` up to the next "== " heading.
std::string part(const std::string& text, const std::string& from) {
  auto start = text.find(from);
  if (start == std::string::npos) return {};
  auto end = text.find("== ", start + from.size());
  return text.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

TEST(Demo, TheFourPersonWalkThroughRunsAndShowsEachPersonTheirSections) {
  if (!KithdProcess::binary()) GTEST_SKIP() << "kithd is not built";
  KithdProcess server;
  TempDir dir("kith-demo-test");
  const auto out = dir.path() / "demo.out";
  const std::string command =
      "cd '" + std::string(KITH_SOURCE_DIR) + "' && env -u KITH_HOME -u KITH_PASSPHRASE" +
      " KITH_SERVER='wss://" + server.endpoint().host + ":" +
      std::to_string(server.endpoint().port) + "' KITH_CA='" + server.ca_file().string() +
      "' KITH_BIN='" + KITH_CLI_PATH + "' KITH_DEMO_DIR='" + (dir.path() / "homes").string() +
      "' timeout 150 bash deploy/demo.sh > '" + out.string() + "' 2>&1";
  const int status = std::system(command.c_str());
  const std::string text = slurp(out);
  ASSERT_EQ(status, 0) << text;

  const std::string aisha = part(text, "What aisha sees");
  const std::string nurse = part(text, "What nurse sees");
  const std::string agency = part(text, "What agency sees");
  ASSERT_FALSE(aisha.empty()) << text;
  // Family: the visit the agency recorded, no medicines, no risks.
  EXPECT_NE(aisha.find("helped with lunch"), std::string::npos) << aisha;
  EXPECT_EQ(aisha.find("Metformin"), std::string::npos) << aisha;
  EXPECT_EQ(aisha.find("Falls on the stairs"), std::string::npos) << aisha;
  // Nurse: the medicine as she changed it, and the risks.
  EXPECT_NE(nurse.find("Metformin 1 g"), std::string::npos) << nurse;
  EXPECT_NE(nurse.find("Falls on the stairs"), std::string::npos) << nurse;
  // Agency: risks and support, no medicines, no notes.
  EXPECT_NE(agency.find("Falls on the stairs"), std::string::npos) << agency;
  EXPECT_EQ(agency.find("Metformin"), std::string::npos) << agency;
  EXPECT_EQ(agency.find("Prefers tea"), std::string::npos) << agency;
  // After the revocation the nurse keeps her old record and gets nothing new.
  const std::string after = part(text, "the nurse's health records now");
  EXPECT_NE(after.find("Metformin 1 g"), std::string::npos) << after;
  EXPECT_EQ(after.find("Insulin started"), std::string::npos) << after;
  const std::string log = part(text, "Mary's access log");
  EXPECT_NE(log.find("removed member"), std::string::npos) << log;
  EXPECT_NE(log.find("received health"), std::string::npos) << log;
}

}  // namespace
}  // namespace kith::test
