#include "kith/crypto/recovery.hpp"

#include <array>
#include <string>

#include "kith/crypto/error.hpp"
#include "kith/crypto/hash.hpp"

namespace kith::crypto {

namespace {

constexpr std::string_view kAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";  // Crockford base32
constexpr int kDataPerGroup = 4;
constexpr int kGroupSize = kDataPerGroup + 1;
constexpr int kSymbols = kRecoveryGroups * kDataPerGroup;  // 28 symbols = 140 bits
constexpr int kChecksumBits = 12;
static_assert(kSymbols * 5 == kRecoverySecretSize * 8 + kChecksumBits);

constexpr std::string_view kChecksumLabel = "kith/v1/recovery-checksum";
constexpr std::string_view kIdentitySeedLabel = "kith/v1/identity-seed";
constexpr std::string_view kRecoveryBoxLabel = "kith/v1/recovery-box";

// Multiplication in GF(32) modulo x^5 + x^2 + 1. This is an error-detecting code for people
// copying characters by hand, not a cryptographic primitive.
std::uint8_t gf32_mul(std::uint8_t a, std::uint8_t b) {
  std::uint8_t r = 0;
  for (int i = 0; i < 5; ++i) {
    if (b & 1) r ^= a;
    b >>= 1;
    a = static_cast<std::uint8_t>(a << 1);
    if (a & 0x20) a ^= 0x25;
  }
  return r;
}

// Check symbol of group `group` (0-based): (group + 1) + sum of alpha^i * d_i, i = 1..4,
// alpha = x. Data weights alpha^1..alpha^4 and the check's weight 1 are distinct and non-zero,
// so one wrong symbol or two swapped symbols always change the syndrome; the group number
// catches a whole group written in the wrong place.
std::uint8_t group_check(int group, const std::uint8_t* data) {
  std::uint8_t c = static_cast<std::uint8_t>(group + 1);
  std::uint8_t weight = 1;
  for (int i = 0; i < kDataPerGroup; ++i) {
    weight = gf32_mul(weight, 2);
    c ^= gf32_mul(weight, data[i]);
  }
  return c;
}

// The first 12 bits of BLAKE2b-256(label || secret).
std::uint16_t checksum_bits(const SecretArray<kRecoverySecretSize>& secret) {
  Blake2b h;
  h.update(kChecksumLabel).update(secret.view());
  Bytes d = h.finish();
  return static_cast<std::uint16_t>((d[0] << 4) | (d[1] >> 4));
}

int symbol_value(char c) {
  if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  if (c == 'O') c = '0';
  if (c == 'I' || c == 'L') c = '1';
  auto pos = kAlphabet.find(c);
  return pos == std::string_view::npos ? -1 : static_cast<int>(pos);
}

[[noreturn]] void format_error(const std::string& why) {
  throw RecoveryKeyError(ErrorCode::kRecoveryKeyFormat,
                         why + "; a recovery key is 7 groups of 5 letters and digits");
}

}  // namespace

RecoveryKey RecoveryKey::generate() { return RecoveryKey(random_secret<kRecoverySecretSize>()); }

std::string RecoveryKey::text() const {
  // 128 secret bits then 12 checksum bits, most significant first, 5 bits per symbol.
  std::array<std::uint8_t, kRecoverySecretSize + 2> bits{};
  std::copy(secret_.view().begin(), secret_.view().end(), bits.begin());
  std::uint16_t sum = checksum_bits(secret_);
  bits[kRecoverySecretSize] = static_cast<std::uint8_t>(sum >> 4);
  bits[kRecoverySecretSize + 1] = static_cast<std::uint8_t>((sum & 0x0f) << 4);

  std::array<std::uint8_t, kSymbols> symbols{};
  for (int s = 0; s < kSymbols; ++s) {
    std::uint8_t v = 0;
    for (int b = 0; b < 5; ++b) {
      int bit = s * 5 + b;
      v = static_cast<std::uint8_t>((v << 1) | ((bits[bit / 8] >> (7 - bit % 8)) & 1));
    }
    symbols[s] = v;
  }
  std::string out;
  for (int g = 0; g < kRecoveryGroups; ++g) {
    if (g) out.push_back('-');
    for (int i = 0; i < kDataPerGroup; ++i) out.push_back(kAlphabet[symbols[g * 4 + i]]);
    out.push_back(kAlphabet[group_check(g, &symbols[g * 4])]);
  }
  secure_wipe(bits.data(), bits.size());
  secure_wipe(symbols.data(), symbols.size());
  return out;
}

RecoveryKey RecoveryKey::parse(std::string_view text) {
  // Split on hyphens and white space; a person may write the groups on separate lines.
  std::array<std::string, kRecoveryGroups> groups;
  int count = 0;
  std::string current;
  auto flush = [&] {
    if (current.empty()) return;
    if (count == kRecoveryGroups) format_error("there are more than 7 groups");
    groups[count++] = std::move(current);
    current.clear();
  };
  for (char c : text) {
    if (c == '-' || c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      flush();
      continue;
    }
    if (symbol_value(c) < 0) {
      format_error(std::string("the character '") + c + "' is not used in recovery keys");
    }
    current.push_back(c);
  }
  flush();
  // Written without separators: cut it into groups ourselves.
  if (count == 1 && groups[0].size() == kRecoveryGroups * kGroupSize) {
    std::string all = std::move(groups[0]);
    for (int g = 0; g < kRecoveryGroups; ++g) groups[g] = all.substr(g * kGroupSize, kGroupSize);
    count = kRecoveryGroups;
  }
  if (count != kRecoveryGroups) {
    format_error("there are " + std::to_string(count) + " groups");
  }

  std::array<std::uint8_t, kSymbols> symbols{};
  for (int g = 0; g < kRecoveryGroups; ++g) {
    const std::string& grp = groups[g];
    if (grp.size() != kGroupSize) {
      throw RecoveryKeyError(ErrorCode::kRecoveryKeyFormat,
                             "group " + std::to_string(g + 1) + " has " +
                                 std::to_string(grp.size()) +
                                 " characters instead of 5; check it against what you wrote down",
                             g + 1);
    }
    for (int i = 0; i < kDataPerGroup; ++i) {
      symbols[g * 4 + i] = static_cast<std::uint8_t>(symbol_value(grp[i]));
    }
    if (group_check(g, &symbols[g * 4]) != symbol_value(grp[kDataPerGroup])) {
      throw RecoveryKeyError(ErrorCode::kRecoveryKeyTypo,
                             "group " + std::to_string(g + 1) +
                                 " does not check out: a character in it is probably mistyped; "
                                 "compare it with what you wrote down",
                             g + 1);
    }
  }

  std::array<std::uint8_t, kRecoverySecretSize + 2> bits{};
  for (int s = 0; s < kSymbols; ++s) {
    for (int b = 0; b < 5; ++b) {
      int bit = s * 5 + b;
      if ((symbols[s] >> (4 - b)) & 1)
        bits[bit / 8] |= static_cast<std::uint8_t>(0x80 >> (bit % 8));
    }
  }
  auto secret = secret_from<kRecoverySecretSize>(ByteView(bits.data(), kRecoverySecretSize),
                                                 "a recovery secret");
  std::uint16_t sum = static_cast<std::uint16_t>((bits[kRecoverySecretSize] << 4) |
                                                 (bits[kRecoverySecretSize + 1] >> 4));
  secure_wipe(bits.data(), bits.size());
  secure_wipe(symbols.data(), symbols.size());
  if (sum != checksum_bits(secret)) {
    throw RecoveryKeyError(ErrorCode::kRecoveryKeyChecksum,
                           "each group looks right, but the whole key does not check out: two "
                           "groups may be swapped or more than one character mistyped");
  }
  return RecoveryKey(secret);
}

SigningKey RecoveryKey::identity_key() const {
  // seed = keyed BLAKE2b-256(key = recovery secret, message = label)
  Bytes seed = blake2b_keyed(secret_.view(), as_bytes(kIdentitySeedLabel), kSeedSize);
  SigningKey key = SigningKey::parse(seed);
  secure_wipe(seed.data(), seed.size());
  return key;
}

BoxSecretKey recovery_box_key(const SigningKey& identity) {
  // secret = keyed BLAKE2b-256(key = identity seed, message = label)
  Bytes secret = blake2b_keyed(identity.seed().view(), as_bytes(kRecoveryBoxLabel), kBoxKeySize);
  BoxSecretKey key = BoxSecretKey::parse(secret);
  secure_wipe(secret.data(), secret.size());
  return key;
}

namespace {
Bytes recovery_box_statement(const VerifyKey& identity, const BoxPublicKey& box) {
  Bytes out(identity.bytes().begin(), identity.bytes().end());
  out.insert(out.end(), box.bytes().begin(), box.bytes().end());
  return out;
}
}  // namespace

Signature sign_recovery_box(const SigningKey& identity, const BoxPublicKey& box) {
  return identity.sign(labels::kRecoveryBox, recovery_box_statement(identity.public_key(), box));
}

bool verify_recovery_box(const VerifyKey& identity, const BoxPublicKey& box, ByteView signature) {
  return identity.verify(labels::kRecoveryBox, recovery_box_statement(identity, box), signature);
}

}  // namespace kith::crypto
