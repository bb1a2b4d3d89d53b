#include "kith/crypto/bytes.hpp"

#include <gtest/gtest.h>

#include "kith/crypto/error.hpp"
#include "kith/crypto/secret.hpp"

namespace kith::crypto {
namespace {

TEST(Hex, RoundTripsAnyBytes) {
  Bytes all(256);
  for (int i = 0; i < 256; ++i) all[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i);
  EXPECT_EQ(from_hex(to_hex(all)), all);
  EXPECT_EQ(to_hex(Bytes{0x00, 0xab, 0xff}), "00abff");
  EXPECT_EQ(from_hex("00ABff"), (Bytes{0x00, 0xab, 0xff}));
}

TEST(Hex, RejectsOddLengthAndNonHexWithAClearError) {
  try {
    from_hex("abc");
    FAIL() << "odd length accepted";
  } catch (const KeyFormatError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidEncoding);
    EXPECT_NE(std::string(e.what()).find("odd"), std::string::npos);
  }
  try {
    from_hex("0g");
    FAIL() << "non-hex accepted";
  } catch (const KeyFormatError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidEncoding);
    EXPECT_NE(std::string(e.what()).find("position 1"), std::string::npos);
  }
}

TEST(ConstantTimeEqual, ComparesContentAndLength) {
  Bytes a{1, 2, 3}, b{1, 2, 3}, c{1, 2, 4}, d{1, 2};
  EXPECT_TRUE(constant_time_equal(a, b));
  EXPECT_FALSE(constant_time_equal(a, c));
  EXPECT_FALSE(constant_time_equal(a, d));
  EXPECT_TRUE(constant_time_equal(Bytes{}, Bytes{}));
}

TEST(ByteWriter, WritesLittleEndianAndLengthPrefixes) {
  ByteWriter w;
  w.u8(1).u16(0x0201).u32(0x04030201).u64(0x0807060504030201ull).prefixed(std::string_view("ab"));
  EXPECT_EQ(to_hex(w.bytes()),
            "01"
            "0102"
            "01020304"
            "0102030405060708"
            "02000000"
            "6162");
}

TEST(ByteReader, ReadsWhatTheWriterWrote) {
  ByteWriter w;
  w.u8(7).u16(65000).u32(70000).u64(1ull << 40).prefixed(std::string_view("hello"));
  Bytes bytes = w.bytes();
  ByteReader r(bytes, "test structure");
  EXPECT_EQ(r.u8(), 7);
  EXPECT_EQ(r.u16(), 65000);
  EXPECT_EQ(r.u32(), 70000u);
  EXPECT_EQ(r.u64(), 1ull << 40);
  ByteView s = r.prefixed(16);
  EXPECT_EQ(std::string(s.begin(), s.end()), "hello");
  EXPECT_NO_THROW(r.expect_end());
}

TEST(ByteReader, RejectsTruncatedInputNamingTheStructure) {
  Bytes bytes{1, 2, 3};
  ByteReader r(bytes, "test structure");
  try {
    r.u32();
    FAIL() << "read past the end";
  } catch (const KeyFormatError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidLength);
    EXPECT_NE(std::string(e.what()).find("test structure is truncated"), std::string::npos);
  }
}

TEST(ByteReader, RejectsOversizedPrefixedFieldBeforeReadingIt) {
  ByteWriter w;
  w.u32(0xffffffffu).u8(0);
  Bytes bytes = w.bytes();
  ByteReader r(bytes, "test structure");
  EXPECT_THROW(r.prefixed(1024), KeyFormatError);
}

TEST(ByteReader, RejectsTrailingBytes) {
  Bytes bytes{1, 2};
  ByteReader r(bytes, "test structure");
  r.u8();
  EXPECT_THROW(r.expect_end(), KeyFormatError);
}

TEST(SecretArray, ComparesInConstantTimeAndCopies) {
  auto a = random_secret<32>();
  SecretArray<32> b = a;
  EXPECT_TRUE(a == b);
  b.data()[31] ^= 1;
  EXPECT_FALSE(a == b);
}

TEST(SecretFrom, RejectsWrongLengthNamingWhatWasExpected) {
  Bytes short_key(31);
  try {
    secret_from<32>(short_key, "a test key");
    FAIL();
  } catch (const KeyFormatError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidLength);
    EXPECT_EQ(std::string(e.what()), "a test key must be 32 bytes, got 31");
  }
}

TEST(SecureWipe, ZeroesMemory) {
  std::uint8_t buf[16];
  for (auto& b : buf) b = 0xaa;
  secure_wipe(buf, sizeof buf);
  for (auto b : buf) EXPECT_EQ(b, 0);
}

TEST(ErrorCodes, HaveStableNames) {
  EXPECT_EQ(error_code_name(ErrorCode::kWrongPassphrase), "wrong_passphrase");
  EXPECT_EQ(error_code_name(ErrorCode::kCorruptKeyFile), "corrupt_key_file");
  EXPECT_EQ(error_code_name(ErrorCode::kRecoveryKeyTypo), "recovery_key_typo");
}

}  // namespace
}  // namespace kith::crypto
