// Plain byte strings and the helpers that build the canonical byte layouts documented in
// docs/PROTOCOL.md. Public (non-secret) bytes only: secrets live in secret.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kith::crypto {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

// The bytes of a string, without copying.
inline ByteView as_bytes(std::string_view s) noexcept {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::string to_hex(ByteView bytes);
// Parses lower- or upper-case hex. Throws KeyFormatError on odd length or a non-hex character.
Bytes from_hex(std::string_view hex);

// Compares in time that depends only on the lengths (lengths are not secret).
[[nodiscard]] bool constant_time_equal(ByteView a, ByteView b) noexcept;

// Overwrites memory in a way the compiler may not elide.
void secure_wipe(void* data, std::size_t size) noexcept;

// Appends fixed-width little-endian integers and length-prefixed fields: the building blocks
// of every signed or authenticated byte string in Kith. Not thread-safe (owns a buffer).
class ByteWriter {
 public:
  ByteWriter() = default;
  explicit ByteWriter(std::size_t reserve) { out_.reserve(reserve); }

  ByteWriter& u8(std::uint8_t v);
  ByteWriter& u16(std::uint16_t v);  // little-endian
  ByteWriter& u32(std::uint32_t v);  // little-endian
  ByteWriter& u64(std::uint64_t v);  // little-endian
  ByteWriter& raw(ByteView v);
  ByteWriter& raw(std::string_view v) { return raw(as_bytes(v)); }
  // u32 little-endian length, then the bytes.
  ByteWriter& prefixed(ByteView v);
  ByteWriter& prefixed(std::string_view v) { return prefixed(as_bytes(v)); }

  const Bytes& bytes() const& noexcept { return out_; }
  Bytes take() && noexcept { return std::move(out_); }

 private:
  Bytes out_;
};

// Reads what ByteWriter wrote. Every read checks bounds and throws KeyFormatError naming
// `what` when the input is too short, so a truncated structure never reads past its end.
class ByteReader {
 public:
  ByteReader(ByteView in, std::string_view what) : in_(in), what_(what) {}

  std::uint8_t u8();
  std::uint16_t u16();
  std::uint32_t u32();
  std::uint64_t u64();
  ByteView raw(std::size_t n);
  // A u32-length-prefixed field of at most `max` bytes.
  ByteView prefixed(std::size_t max);
  std::size_t remaining() const noexcept { return in_.size() - pos_; }
  // Throws unless every byte was consumed (trailing garbage is an error, not ignored).
  void expect_end() const;

 private:
  ByteView in_;
  std::size_t pos_ = 0;
  std::string what_;
};

}  // namespace kith::crypto
