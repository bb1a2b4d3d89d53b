// Safety numbers: a short numeric fingerprint of two identity keys that both people see
// identically, to read out in person or on the phone and so rule out a server that swapped a
// key. 60 digits in 12 groups of 5; each half comes from one key, ordered so both sides match.
// Layout: docs/PROTOCOL.md, "Safety numbers". Thread-safe.
#pragma once

#include <string>

#include "kith/crypto/sign.hpp"

namespace kith::crypto {

// 30 digits for one identity key.
std::string safety_number_half(const VerifyKey& identity);
// "12345 67890 ... " — 12 groups of 5 digits, the same whichever key comes first.
std::string safety_number(const VerifyKey& a, const VerifyKey& b);

}  // namespace kith::crypto
