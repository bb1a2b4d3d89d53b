// kithd's configuration through the real binary: a flag beats a KITH_* variable, which beats the
// config file; whatever is refused ends kithd with status 2 and a sentence on stderr naming the
// setting, before a data directory or database is created or touched.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "support/kithd_process.hpp"
#include "support/kithd_run.hpp"
#include "support/temp_dir.hpp"

namespace kith::test {
namespace {

namespace fs = std::filesystem;
using Env = std::vector<std::pair<std::string, std::string>>;

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// Every regular file under `dir` with its bytes and modification time, to tell that nothing
// was created, removed, written or touched.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    files[fs::relative(entry.path(), dir).string()] =
        std::to_string(entry.last_write_time().time_since_epoch().count()) + ":" + bytes.str();
  }
  return files;
}

nlohmann::json listening_line(const KithdProcess& kithd) {
  for (const auto& line : kithd.log_lines()) {
    if (line.is_object() && line.value("event", "") == "listening") return line;
  }
  ADD_FAILURE() << "no listening line:\n" << kithd.log_tail();
  return nlohmann::json::object();
}

class KithdConfig : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!KithdProcess::binary()) GTEST_SKIP() << "kithd is not built";
  }

  // kithd with none of the standard flags: the config file (or `env`) gives listen, data and
  // dev-cert.
  std::unique_ptr<KithdProcess> start(std::vector<std::string> args, Env env = {}) {
    KithdOptions o;
    o.listen.clear();
    o.data_flag = false;
    o.dev_cert = false;
    o.data_dir = data;
    o.args = std::move(args);
    o.env = std::move(env);
    return std::make_unique<KithdProcess>(o);
  }
  // A file giving every standard setting, plus `extra` lines.
  void write_config(const std::string& extra) {
    std::string text = "# kithd settings for a test\nlisten = 127.0.0.1:0\n";
    text += "data = \"" + data.string() + "\"\n";
    text += "dev-cert = true\n" + extra;
    write_file(config, text);
  }
  // What every refusal must look like: status 2, a sentence on stderr naming `names`, and no
  // data directory made.
  void expect_refused(const KithdRun& run, const std::vector<std::string>& names) {
    EXPECT_TRUE(run.exited_with(2)) << run.describe();
    EXPECT_TRUE(run.err.starts_with("kithd: ")) << run.describe();
    EXPECT_GT(run.err.size(), 30u) << run.describe();
    for (const auto& name : names) {
      EXPECT_NE(run.err.find(name), std::string::npos) << "stderr does not name " << name << "\n"
                                                       << run.describe();
    }
    EXPECT_FALSE(fs::exists(data)) << "a refused configuration created " << data;
  }
  std::vector<std::string> standard_flags() const {
    return {"--listen", "127.0.0.1:0", "--data", data.string(), "--dev-cert"};
  }

  TempDir dir{"kithd-config"};
  fs::path data = dir / "data";
  fs::path config = dir / "kithd.conf";
};

TEST_F(KithdConfig, TheFileAloneSuppliesEverySetting) {
  write_config(
      "threads = 2   # two workers\nsynchronous = 'normal' # quoted, then a comment\n"
      "plan-cache-mib = 64\n");
  auto kithd = start({"--config", config.string()});
  const auto line = listening_line(*kithd);
  EXPECT_EQ(line.value("host", ""), "127.0.0.1");
  EXPECT_EQ(line.value("data", ""), data.string());
  EXPECT_EQ(line.value("threads", 0), 2);
  EXPECT_EQ(line.value("synchronous", ""), "normal");
  EXPECT_EQ(line.value("plan_cache_mib", 0), 64);
  // dev-cert from the file: the certificate is in the data directory and a client trusts it.
  EXPECT_NO_THROW(kithd->connect()->close());
  EXPECT_TRUE(kithd->stop().clean()) << kithd->log_tail();
}

TEST_F(KithdConfig, EnvironmentBeatsTheFileAndAFlagBeatsBoth) {
  write_config("threads = 2\nsynchronous = normal\n");
  {
    // KITH_CONFIG names the file; KITH_THREADS overrides it; synchronous still comes from it.
    auto kithd = start({}, {{"KITH_CONFIG", config.string()}, {"KITH_THREADS", "3"}});
    const auto line = listening_line(*kithd);
    EXPECT_EQ(line.value("threads", 0), 3);
    EXPECT_EQ(line.value("synchronous", ""), "normal");
    EXPECT_TRUE(kithd->stop().clean()) << kithd->log_tail();
  }
  {
    // --config beats KITH_CONFIG (which names no file here); --threads beats KITH_THREADS.
    auto kithd = start({"--config", config.string(), "--threads", "4"},
                       {{"KITH_CONFIG", (dir / "missing.conf").string()},
                        {"KITH_THREADS", "3"},
                        {"KITH_SYNCHRONOUS", "full"}});
    const auto line = listening_line(*kithd);
    EXPECT_EQ(line.value("threads", 0), 4);
    EXPECT_EQ(line.value("synchronous", ""), "full");
    EXPECT_TRUE(kithd->stop().clean()) << kithd->log_tail();
  }
  {
    // The environment alone gives the data directory and the certificate, no file at all.
    auto kithd = start(
        {"--listen", "127.0.0.1:0", "--synchronous", "normal"},
        {{"KITH_DATA", data.string()}, {"KITH_DEV_CERT", "true"}, {"KITH_SYNCHRONOUS", "full"}});
    const auto line = listening_line(*kithd);
    EXPECT_EQ(line.value("data", ""), data.string());
    EXPECT_EQ(line.value("synchronous", ""), "normal");
    EXPECT_TRUE(kithd->stop().clean()) << kithd->log_tail();
  }
}

TEST_F(KithdConfig, UnknownKeyInTheFileIsRefused) {
  write_config("thread = 2\n");  // a typo of `threads`
  auto run = run_kithd({"--config", config.string()});
  expect_refused(run, {"unknown key `thread`", config.string()});
}

TEST_F(KithdConfig, MalformedFileLineIsRefused) {
  write_config("threads 2\n");
  expect_refused(run_kithd({"--config", config.string()}),
                 {config.string(), "line 5", "threads 2"});
  write_config("synchronous = \"normal\n");
  expect_refused(run_kithd({"--config", config.string()}), {config.string(), "line 5", "quote"});
}

TEST_F(KithdConfig, MissingConfigFileIsRefused) {
  expect_refused(run_kithd({"--config", (dir / "nowhere.conf").string()}), {"nowhere.conf"});
  // A directory opens, and reads as an empty file: refused too, not taken as no settings.
  fs::create_directory(dir / "conf.d");
  auto args = standard_flags();
  args.insert(args.end(), {"--config", (dir / "conf.d").string()});
  expect_refused(run_kithd(args), {"conf.d"});
}

TEST_F(KithdConfig, UnknownFlagIsRefused) {
  auto args = standard_flags();
  args.push_back("--max-conections-per-account");  // misspelt
  args.push_back("2");
  auto run = run_kithd(args);
  expect_refused(run, {"--max-conections-per-account 2"});
}

// A bad value is refused from each source, and the message says which source held it.
TEST_F(KithdConfig, BadValueIsRefusedNamingItsSource) {
  write_config("threads = 999\n");
  expect_refused(run_kithd({"--config", config.string()}), {"threads", config.string()});

  write_config("synchronous = sometimes\n");
  expect_refused(run_kithd({"--config", config.string()}), {"synchronous", config.string()});

  expect_refused(run_kithd(standard_flags(), {{"KITH_THREADS", "many"}}), {"KITH_THREADS"});
  expect_refused(run_kithd(standard_flags(), {{"KITH_MAX_CONNECTIONS_PER_ACCOUNT", "0"}}),
                 {"KITH_MAX_CONNECTIONS_PER_ACCOUNT"});
  expect_refused(run_kithd(standard_flags(), {{"KITH_PLAN_CACHE_MIB", "0"}}),
                 {"KITH_PLAN_CACHE_MIB"});

  auto args = standard_flags();
  args.insert(args.end(), {"--tls-handshake-timeout-ms", "5"});  // below the 100 ms floor
  expect_refused(run_kithd(args), {"--tls-handshake-timeout-ms"});
  expect_refused(run_kithd({"--listen", "127.0.0.1:99999", "--data", data.string(), "--dev-cert"}),
                 {"--listen"});
  expect_refused(run_kithd({"--listen", "127.0.0.1:0", "--data", data.string()}),
                 {"--tls-cert", "--dev-cert"});
  expect_refused(
      run_kithd({"--listen", "127.0.0.1:0", "--data", data.string(), "--dev-cert", "--tls-cert",
                 (dir / "cert.pem").string(), "--tls-key", (dir / "key.pem").string()}),
      {"--dev-cert", "--tls-cert"});
  expect_refused(run_kithd(standard_flags(), {{"KITH_STORAGE", "postgres"}}), {"--storage"});
}

// A refused configuration changes nothing in an existing data directory: kithd stops before it
// opens the database or writes the certificate.
TEST_F(KithdConfig, RefusalLeavesAnExistingDataDirectoryUntouched) {
  {
    auto kithd = start(
        {}, {{"KITH_LISTEN", "127.0.0.1:0"}, {"KITH_DATA", data.string()}, {"KITH_DEV_CERT", "1"}});
    EXPECT_TRUE(kithd->stop().clean()) << kithd->log_tail();
  }
  const auto before = snapshot(data);
  ASSERT_TRUE(before.count("kithd.db")) << "kithd made no database to protect";
  ASSERT_TRUE(before.count("dev-cert.pem"));

  auto args = standard_flags();
  args.push_back("--bogus");
  for (const auto& run : {run_kithd(args), run_kithd(standard_flags(), {{"KITH_THREADS", "-1"}}),
                          run_kithd(standard_flags(), {{"KITH_SYNCHRONOUS", "off"}})}) {
    EXPECT_TRUE(run.exited_with(2)) << run.describe();
  }
  write_config("synchronous = normal\nno-such-key = 1\n");
  auto run = run_kithd({"--config", config.string()});
  EXPECT_TRUE(run.exited_with(2)) << run.describe();
  EXPECT_EQ(snapshot(data), before);
}

// Other tools and scripts use the KITH_ prefix too (KITH_PRESET, KITH_KEEP_TEST_DIRS), so a
// variable that names no setting is ignored rather than refused.
TEST_F(KithdConfig, UnknownKithVariableIsIgnored) {
  auto kithd = start(standard_flags(), {{"KITH_PRESET", "asan"}, {"KITH_NO_SUCH_SETTING", "1"}});
  EXPECT_TRUE(kithd->running());
  EXPECT_TRUE(kithd->stop().clean()) << kithd->log_tail();
}

TEST_F(KithdConfig, HelpAndVersionPrintAndExitZero) {
  auto help = run_kithd({"--help"});
  EXPECT_TRUE(help.exited_with(0)) << help.describe();
  for (const char* option : {"--config", "--listen", "--idle-timeout-s", "--synchronous"}) {
    EXPECT_NE(help.out.find(option), std::string::npos) << option << "\n" << help.out;
  }
  auto version = run_kithd({"--version", "--data", data.string()});
  EXPECT_TRUE(version.exited_with(0)) << version.describe();
  EXPECT_NE(version.out.find("kithd "), std::string::npos) << version.out;
  EXPECT_FALSE(fs::exists(data));
}

}  // namespace
}  // namespace kith::test
