// The files an operator installs from deploy/ work with the kithd they ship with: every key of
// the example configuration is one kithd knows, with a value it accepts, and the systemd unit
// starts kithd with a config file it can read.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "support/kithd_process.hpp"
#include "support/temp_dir.hpp"
#include "support/test_certificate.hpp"

namespace kith::test {
namespace {

const std::filesystem::path kDeploy = std::filesystem::path(KITH_SOURCE_DIR) / "deploy";

std::string read(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(DeployFiles, ExampleConfigStartsKithdAsWritten) {
  if (!KithdProcess::binary()) GTEST_SKIP() << "kithd is not built";
  TempDir dir("kith-deploy");
  auto cert = TestCertificate::localhost();
  // The example as shipped, with only its paths pointed into the test's directory.
  std::string text = read(kDeploy / "kithd.conf.example");
  ASSERT_FALSE(text.empty());
  text = std::regex_replace(text, std::regex("/var/lib/kith"), (dir / "data").string());
  text = std::regex_replace(text, std::regex("/etc/kith/tls/fullchain.pem"),
                            cert.write_cert(dir / "cert.pem").string());
  text = std::regex_replace(text, std::regex("/etc/kith/tls/privkey.pem"),
                            cert.write_key(dir / "key.pem").string());
  std::ofstream(dir / "kithd.conf") << text;

  KithdOptions options;
  options.args = {"--config", (dir / "kithd.conf").string()};
  options.data_flag = false;
  options.dev_cert = false;
  options.data_dir = dir / "data";  // the directory the file names; kithd creates it
  KithdProcess kithd(options);      // --listen 127.0.0.1:0 overrides the file's address
  auto listening = kithd.wait_for_event("listening", std::chrono::seconds(5));
  ASSERT_TRUE(listening) << kithd.log_tail();
  EXPECT_EQ((*listening)["synchronous"], "full");
  EXPECT_EQ((*listening)["data"], (dir / "data").string());
  EXPECT_TRUE(std::filesystem::exists(dir / "data" / "kithd.db"));
  EXPECT_TRUE(kithd.stop().clean()) << kithd.log_tail();
}

TEST(DeployFiles, SystemdUnitRunsKithdWithItsConfigAndDrainsOnSigterm) {
  const std::string unit = read(kDeploy / "kithd.service");
  ASSERT_FALSE(unit.empty());
  EXPECT_NE(unit.find("ExecStart=/usr/local/bin/kithd --config /etc/kith/kithd.conf"),
            std::string::npos);
  EXPECT_NE(unit.find("KillSignal=SIGTERM"), std::string::npos);
  EXPECT_NE(unit.find("StateDirectory=kith"), std::string::npos);  // the example's data dir
  EXPECT_NE(read(kDeploy / "kithd.conf.example").find("data = /var/lib/kith"), std::string::npos);
}

}  // namespace
}  // namespace kith::test
