#include "kith/crypto/key_store.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <iterator>

#include "kith/crypto/error.hpp"
#include "kith/crypto/hash.hpp"
#include "support/vectors.hpp"

namespace kith::crypto {
namespace {

namespace fs = std::filesystem;

Bytes read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

void write_all(const fs::path& p, const Bytes& b) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

ErrorCode load_error(const KeyStore& store, std::string_view passphrase) {
  try {
    store.load(passphrase);
  } catch (const KeyStoreError& e) {
    return e.code();
  }
  ADD_FAILURE() << "load succeeded";
  return ErrorCode::kInitFailed;
}

// A key file in a fresh temporary directory, sealed with the cheapest Argon2id parameters.
class KeyStoreFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() /
          ("kith-keystore-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
    store = KeyStore(dir / "device.key");
    payload = SecretBytes(Bytes(97, 0x5a));
    store.save(payload, "correct horse", PwhashParams::minimum_for_tests());
    original = read_all(store.path());
  }
  void TearDown() override { fs::remove_all(dir); }

  fs::path dir;
  KeyStore store{fs::path()};
  SecretBytes payload;
  Bytes original;
};

TEST_F(KeyStoreFile, OpensWithTheRightPassphrase) {
  EXPECT_TRUE(store.exists());
  EXPECT_TRUE(store.load("correct horse") == payload);
}

TEST_F(KeyStoreFile, IsPrivateToItsOwnerAndLeavesNoTemporaryFile) {
  struct stat st {};
  ASSERT_EQ(::stat(store.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(fs::exists(dir / "device.key.tmp"));
}

TEST_F(KeyStoreFile, WrongPassphraseIsReportedAndFileUntouched) {
  try {
    store.load("correct horsf");
    FAIL();
  } catch (const KeyStoreError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kWrongPassphrase);
    EXPECT_NE(std::string(e.what()).find("passphrase is wrong"), std::string::npos);
  }
  EXPECT_EQ(read_all(store.path()), original);
  EXPECT_TRUE(store.load("correct horse") == payload);
}

TEST_F(KeyStoreFile, AnyCorruptedByteIsReportedAsCorruptNotAsWrongPassphrase) {
  for (std::size_t i = 0; i < original.size(); ++i) {
    Bytes bad = original;
    bad[i] ^= 0x01;
    write_all(store.path(), bad);
    ErrorCode code = load_error(store, "correct horse");
    // Byte 8 is the format version: a changed version reads as a newer format.
    ErrorCode expected = i == 8 ? ErrorCode::kUnsupportedFormat : ErrorCode::kCorruptKeyFile;
    EXPECT_EQ(code, expected) << "byte " << i;
    EXPECT_EQ(read_all(store.path()), bad) << "load modified the file";
  }
}

TEST_F(KeyStoreFile, TruncatedAndEmptyFilesAreCorrupt) {
  for (std::size_t n : {std::size_t{0}, std::size_t{5}, std::size_t{40}, original.size() - 1}) {
    write_all(store.path(), Bytes(original.begin(), original.begin() + static_cast<long>(n)));
    EXPECT_EQ(load_error(store, "correct horse"), ErrorCode::kCorruptKeyFile) << n;
  }
}

TEST_F(KeyStoreFile, CraftedExpensiveParametersAreRefusedBeforeDerivation) {
  // A file with a valid checksum but a 64 GiB memory cost must not make the phone try.
  Bytes bad = original;
  bad[18 + 4] = 0x10;  // memlimit (u64 at offset 18) |= 2^36
  Bytes body(bad.begin(), bad.end() - 32);
  Hash sum = blake2b(body);
  std::copy(sum.begin(), sum.end(), bad.end() - 32);
  write_all(store.path(), bad);
  EXPECT_EQ(load_error(store, "correct horse"), ErrorCode::kCorruptKeyFile);
}

TEST_F(KeyStoreFile, MissingFileIsAnIoError) {
  KeyStore missing(dir / "nope.key");
  EXPECT_FALSE(missing.exists());
  EXPECT_EQ(load_error(missing, "x"), ErrorCode::kIo);
}

TEST_F(KeyStoreFile, ChangePassphraseKeepsThePayload) {
  store.change_passphrase("correct horse", "battery staple", PwhashParams::minimum_for_tests());
  EXPECT_TRUE(store.load("battery staple") == payload);
  EXPECT_EQ(load_error(store, "correct horse"), ErrorCode::kWrongPassphrase);
}

TEST_F(KeyStoreFile, ChangePassphraseWithWrongOldOneChangesNothing) {
  Bytes before = read_all(store.path());
  EXPECT_THROW(store.change_passphrase("wrong", "new", PwhashParams::minimum_for_tests()),
               KeyStoreError);
  EXPECT_EQ(read_all(store.path()), before);
}

TEST(KeyStoreParams, PhoneDefaultIsArgon2idSizedForAPhone) {
  PwhashParams p = PwhashParams::phone();
  EXPECT_GE(p.opslimit, 2u);
  EXPECT_GE(p.memlimit, 32ull << 20);
  EXPECT_LT(p.memlimit, 1ull << 30);  // not the 1 GiB "sensitive" preset
}

TEST(KeyStoreParams, OutOfRangeParametersAreRefusedWhenSealing) {
  EXPECT_THROW(seal_key_file(SecretBytes(Bytes{1}), "p", PwhashParams{0, 8192}), KeyStoreError);
  EXPECT_THROW(seal_key_file(SecretBytes(Bytes{1}), "p", PwhashParams{1, kMaxMemlimit + 1}),
               KeyStoreError);
}

TEST(KeyFileVectors, OpenWithTheDocumentedLayout) {
  auto doc = test::load_json(test::own_vector_path("key_files.json"));
  ASSERT_GE(doc.at("cases").size(), 2u);
  for (const auto& c : doc.at("cases")) {
    std::string passphrase = c.at("passphrase");
    Bytes file = test::hex_field(c, "file");
    SecretBytes payload = open_key_file(file, passphrase);
    EXPECT_EQ(to_hex(payload.view()), c.at("payload"));
    try {
      open_key_file(file, passphrase + "!");
      FAIL();
    } catch (const KeyStoreError& e) {
      EXPECT_EQ(e.code(), ErrorCode::kWrongPassphrase);
    }
  }
}

}  // namespace
}  // namespace kith::crypto
