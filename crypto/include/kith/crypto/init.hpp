// libsodium must be initialised once before use. Every factory in kith_crypto calls
// ensure_initialized() itself, so callers need not; it is cheap after the first call and safe
// to call from several threads at once.
#pragma once

namespace kith::crypto {

// Throws CryptoError(kInitFailed) if libsodium cannot be initialised.
void ensure_initialized();

}  // namespace kith::crypto
