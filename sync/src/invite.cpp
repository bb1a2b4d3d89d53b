#include "kith/sync/invite.hpp"

#include <array>

#include "kith/crypto/hash.hpp"
#include "kith/sync/error.hpp"
#include "kith/sync/membership.hpp"

namespace kith::sync {
namespace {

constexpr std::string_view kAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";  // Crockford base32
constexpr std::string_view kPrefix = "KITH-";
constexpr std::uint8_t kVersion = 1;
constexpr std::size_t kBodySize = 1 + PlanId::kSize + kInviteSecretSize;  // 33
constexpr std::size_t kCheckSize = 3;
constexpr std::size_t kCodeBytes = kBodySize + kCheckSize;  // 36
constexpr std::size_t kCodeChars = (kCodeBytes * 8 + 4) / 5;  // 58
constexpr std::string_view kCheckLabel = "kith/v1/invite-code";
constexpr std::string_view kIdLabel = "kith/v1/invite-id";
constexpr std::string_view kBoxLabel = "kith/v1/invite-box";

[[noreturn]] void bad_code(const std::string& why) {
  throw SyncError(SyncErrorCode::kInviteCode, why);
}

std::array<std::uint8_t, kCheckSize> check_of(ByteView body) {
  crypto::Blake2b h;
  h.update(kCheckLabel).update(body);
  Bytes full = h.finish();
  return {full[0], full[1], full[2]};
}

int value_of(char c) {
  if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  if (c == 'O') c = '0';
  if (c == 'I' || c == 'L') c = '1';
  auto at = kAlphabet.find(c);
  return at == std::string_view::npos ? -1 : static_cast<int>(at);
}

}  // namespace

InviteCode InviteCode::create(const PlanId& plan) {
  return InviteCode(plan, crypto::random_secret<kInviteSecretSize>());
}

std::string InviteCode::text() const {
  Bytes bytes;
  bytes.reserve(kCodeBytes);
  bytes.push_back(kVersion);
  bytes.insert(bytes.end(), plan_.bytes().begin(), plan_.bytes().end());
  bytes.insert(bytes.end(), secret_.data(), secret_.data() + kInviteSecretSize);
  auto check = check_of(bytes);
  bytes.insert(bytes.end(), check.begin(), check.end());

  std::string chars;
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::uint8_t b : bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      chars.push_back(kAlphabet[(acc >> (bits - 5)) & 31]);
      bits -= 5;
    }
  }
  if (bits > 0) chars.push_back(kAlphabet[(acc << (5 - bits)) & 31]);
  crypto::secure_wipe(bytes.data(), bytes.size());

  std::string out(kPrefix);
  for (std::size_t i = 0; i < chars.size(); ++i) {
    if (i > 0 && i % 5 == 0) out.push_back('-');
    out.push_back(chars[i]);
  }
  crypto::secure_wipe(chars.data(), chars.size());
  return out;
}

InviteCode InviteCode::parse(std::string_view text) {
  // The prefix is optional and any case; what follows is the code proper.
  std::string_view rest = text;
  while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
  if (rest.size() >= 4) {
    std::string head(rest.substr(0, 4));
    for (char& c : head) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    if (head == "KITH") rest.remove_prefix(4);
  }
  std::string chars;
  for (char c : rest) {
    if (c == '-' || c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
    if (value_of(c) < 0) {
      bad_code(std::string("the invite code contains '") + (c >= 0x21 && c <= 0x7e ? c : '?') +
               "', which is not in a code; check it was copied exactly");
    }
    chars.push_back(c);
  }
  if (chars.size() != kCodeChars) {
    bad_code("the invite code has " + std::to_string(chars.size()) + " characters after KITH-; a " +
             "code has " + std::to_string(kCodeChars) + ": check nothing was cut off or added");
  }
  Bytes bytes;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : chars) {
    acc = (acc << 5) | static_cast<std::uint32_t>(value_of(c));
    bits += 5;
    if (bits >= 8) {
      bytes.push_back(static_cast<std::uint8_t>(acc >> (bits - 8)));
      bits -= 8;
    }
  }
  crypto::secure_wipe(chars.data(), chars.size());
  // 58 characters carry 290 bits: the last 2 are padding and must be zero.
  if (bytes.size() != kCodeBytes || (acc & ((1u << bits) - 1)) != 0) {
    crypto::secure_wipe(bytes.data(), bytes.size());
    bad_code("the invite code does not check out: a character is wrong; check it was copied exactly");
  }
  auto check = check_of(ByteView(bytes.data(), kBodySize));
  const bool check_ok = crypto::constant_time_equal(ByteView(check.data(), kCheckSize),
                                                    ByteView(bytes.data() + kBodySize, kCheckSize));
  if (!check_ok || bytes[0] != kVersion) {
    crypto::secure_wipe(bytes.data(), bytes.size());
    if (check_ok) bad_code("this invite code is from a newer version of Kith; update the app");
    bad_code("the invite code does not check out: a character is wrong or it was altered; "
             "check it was copied exactly");
  }
  PlanId plan = PlanId::from_bytes(ByteView(bytes.data() + 1, PlanId::kSize));
  auto secret = crypto::secret_from<kInviteSecretSize>(
      ByteView(bytes.data() + 1 + PlanId::kSize, kInviteSecretSize), "an invite secret");
  crypto::secure_wipe(bytes.data(), bytes.size());
  return InviteCode(plan, secret);
}

OpId InviteCode::invite_id() const {
  Bytes id = crypto::blake2b_keyed(secret_.view(), crypto::as_bytes(kIdLabel), OpId::kSize);
  return OpId::from_bytes(id);
}

crypto::SigningKey InviteCode::signing_key() const { return invite_key_from_secret(secret_.view()); }

crypto::BoxSecretKey InviteCode::box_key() const {
  Bytes seed = crypto::blake2b_keyed(secret_.view(), crypto::as_bytes(kBoxLabel), 32);
  crypto::BoxSecretKey key = crypto::BoxSecretKey::parse(seed);
  crypto::secure_wipe(seed.data(), seed.size());
  return key;
}

Bytes invite_redeem_message(const PlanId& plan, const OpId& invite, const DeviceId& device,
                            const crypto::BoxPublicKey& box_key) {
  Bytes out;
  out.reserve(PlanId::kSize + OpId::kSize + DeviceId::kSize + crypto::kBoxKeySize);
  for (ByteView part : {plan.bytes(), invite.bytes(), device.bytes(), box_key.bytes()}) {
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

}  // namespace kith::sync
