// Containers for secret bytes: wiped on destruction (sodium_memzero), compared in constant
// time, and deliberately without any way to print them. Copies are allowed (a key ring holds
// keys by value) and each copy is wiped in turn. Not thread-safe; immutable use is.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "kith/crypto/bytes.hpp"

namespace kith::crypto {

// Fixed-size secret, e.g. a 32-byte seed or symmetric key.
template <std::size_t N>
class SecretArray {
 public:
  static constexpr std::size_t kSize = N;

  SecretArray() noexcept { data_.fill(0); }
  SecretArray(const SecretArray&) = default;
  SecretArray& operator=(const SecretArray&) = default;
  ~SecretArray() { secure_wipe(data_.data(), N); }

  std::uint8_t* data() noexcept { return data_.data(); }
  const std::uint8_t* data() const noexcept { return data_.data(); }
  static constexpr std::size_t size() noexcept { return N; }
  ByteView view() const noexcept { return {data_.data(), N}; }

  friend bool operator==(const SecretArray& a, const SecretArray& b) noexcept {
    return constant_time_equal(a.view(), b.view());
  }

 private:
  std::array<std::uint8_t, N> data_;
};

// An allocator that wipes memory before returning it, so that no copy of a secret is left in
// freed heap memory, even when a vector reallocates.
template <class T>
struct WipingAllocator {
  using value_type = T;
  WipingAllocator() noexcept = default;
  template <class U>
  WipingAllocator(const WipingAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return std::allocator<T>{}.allocate(n); }
  void deallocate(T* p, std::size_t n) noexcept {
    secure_wipe(p, n * sizeof(T));
    std::allocator<T>{}.deallocate(p, n);
  }
  friend bool operator==(const WipingAllocator&, const WipingAllocator&) noexcept { return true; }
};

// Variable-length secret, e.g. decrypted plan content or a serialised key bundle.
class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(std::size_t size) : data_(size) {}
  explicit SecretBytes(ByteView bytes) : data_(bytes.begin(), bytes.end()) {}

  std::uint8_t* data() noexcept { return data_.data(); }
  const std::uint8_t* data() const noexcept { return data_.data(); }
  std::size_t size() const noexcept { return data_.size(); }
  bool empty() const noexcept { return data_.empty(); }
  ByteView view() const noexcept { return {data_.data(), data_.size()}; }

  friend bool operator==(const SecretBytes& a, const SecretBytes& b) noexcept {
    return constant_time_equal(a.view(), b.view());
  }

 private:
  std::vector<std::uint8_t, WipingAllocator<std::uint8_t>> data_;
};

// Fills with bytes from the operating system's CSPRNG (randombytes_buf).
void random_fill(std::uint8_t* out, std::size_t size);

template <std::size_t N>
SecretArray<N> random_secret() {
  SecretArray<N> s;
  random_fill(s.data(), N);
  return s;
}

// Copies exactly `size` bytes to `out`; throws KeyFormatError naming `what` when `bytes` has
// another length.
void copy_exact(ByteView bytes, std::uint8_t* out, std::size_t size, const char* what);

// Copies exactly N bytes into a secret; throws KeyFormatError naming `what` otherwise.
template <std::size_t N>
SecretArray<N> secret_from(ByteView bytes, const char* what) {
  SecretArray<N> s;
  copy_exact(bytes, s.data(), N, what);
  return s;
}

}  // namespace kith::crypto
