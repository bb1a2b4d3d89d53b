#include "kith/crypto/init.hpp"

#include <sodium.h>

#include "kith/crypto/error.hpp"

namespace kith::crypto {

void ensure_initialized() {
  // A function-local static is initialised once, thread-safely; sodium_init() itself is also
  // safe to repeat, but this keeps the fast path to one load.
  static const bool ok = sodium_init() >= 0;
  if (!ok) throw CryptoError(ErrorCode::kInitFailed, "libsodium could not be initialised");
}

}  // namespace kith::crypto
