#include "kith/crypto/bytes.hpp"

#include <sodium.h>

#include <string>

#include "kith/crypto/error.hpp"
#include "kith/crypto/init.hpp"
#include "kith/crypto/secret.hpp"

namespace kith::crypto {

std::string to_hex(ByteView bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0x0f]);
  }
  return out;
}

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

Bytes from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) {
    throw KeyFormatError(ErrorCode::kInvalidEncoding, "hex text has an odd number of digits");
  }
  Bytes out(hex.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) {
    int hi = hex_value(hex[2 * i]);
    int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      throw KeyFormatError(ErrorCode::kInvalidEncoding,
                           "hex text has a character that is not 0-9 or a-f at position " +
                               std::to_string(hi < 0 ? 2 * i : 2 * i + 1));
    }
    out[i] = static_cast<std::uint8_t>((hi << 4) | lo);
  }
  return out;
}

bool constant_time_equal(ByteView a, ByteView b) noexcept {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  // sodium_memcmp runs in time that depends only on the length.
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

void secure_wipe(void* data, std::size_t size) noexcept {
  if (data != nullptr && size != 0) sodium_memzero(data, size);
}

void random_fill(std::uint8_t* out, std::size_t size) {
  ensure_initialized();
  randombytes_buf(out, size);
}

void copy_exact(ByteView bytes, std::uint8_t* out, std::size_t size, const char* what) {
  if (bytes.size() != size) {
    throw KeyFormatError(ErrorCode::kInvalidLength, std::string(what) + " must be " +
                                                        std::to_string(size) + " bytes, got " +
                                                        std::to_string(bytes.size()));
  }
  std::copy(bytes.begin(), bytes.end(), out);
}

ByteWriter& ByteWriter::u8(std::uint8_t v) {
  out_.push_back(v);
  return *this;
}

ByteWriter& ByteWriter::u16(std::uint16_t v) {
  out_.push_back(static_cast<std::uint8_t>(v));
  out_.push_back(static_cast<std::uint8_t>(v >> 8));
  return *this;
}

ByteWriter& ByteWriter::u32(std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  return *this;
}

ByteWriter& ByteWriter::u64(std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  return *this;
}

ByteWriter& ByteWriter::raw(ByteView v) {
  out_.insert(out_.end(), v.begin(), v.end());
  return *this;
}

ByteWriter& ByteWriter::prefixed(ByteView v) {
  return u32(static_cast<std::uint32_t>(v.size())).raw(v);
}

ByteView ByteReader::raw(std::size_t n) {
  if (n > remaining()) {
    throw KeyFormatError(ErrorCode::kInvalidLength, what_ + " is truncated: needed " +
                                                        std::to_string(n) + " more bytes, have " +
                                                        std::to_string(remaining()));
  }
  ByteView out = in_.subspan(pos_, n);
  pos_ += n;
  return out;
}

std::uint8_t ByteReader::u8() { return raw(1)[0]; }

std::uint16_t ByteReader::u16() {
  ByteView b = raw(2);
  return static_cast<std::uint16_t>(b[0] | (b[1] << 8));
}

std::uint32_t ByteReader::u32() {
  ByteView b = raw(4);
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | b[static_cast<std::size_t>(i)];
  return v;
}

std::uint64_t ByteReader::u64() {
  ByteView b = raw(8);
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | b[static_cast<std::size_t>(i)];
  return v;
}

ByteView ByteReader::prefixed(std::size_t max) {
  std::uint32_t n = u32();
  if (n > max) {
    throw KeyFormatError(ErrorCode::kInvalidLength, what_ + " has a field of " + std::to_string(n) +
                                                        " bytes; at most " + std::to_string(max) +
                                                        " are allowed");
  }
  return raw(n);
}

void ByteReader::expect_end() const {
  if (remaining() != 0) {
    throw KeyFormatError(ErrorCode::kInvalidLength,
                         what_ + " has " + std::to_string(remaining()) + " unexpected extra bytes");
  }
}

}  // namespace kith::crypto
