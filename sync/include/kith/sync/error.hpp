// Errors raised by kith_sync. Each carries a stable code that the server and clients send to
// peers and show to people (`sync_error_code_name`), and a sentence a person can act on.
// Expected negative outcomes (a chain that is not yet covered by a signed head, a record that is
// not there) are values, not exceptions.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace kith::sync {

enum class SyncErrorCode {
  kMalformed,          // bytes that do not parse: wrong length, bad field, trailing data
  kTooLarge,           // a message, op, batch or field over its limit
  kUnknownSection,     // a section name that is not valid
  kBadSignature,       // a signature that does not verify
  kChainGap,           // an author's op chain skips a sequence number
  kChainFork,          // two different ops claim the same place in an author's chain
  kChainReplay,        // an op already applied arrives with a different position
  kNotMember,          // the author is not a member of the plan
  kForbidden,          // the author lacks the permission the change needs
  kGrantExpired,       // the author's grant has expired
  kRetiredEpoch,       // an op encrypted under a key epoch that was rotated away
  kUnknownEpoch,       // no key for that epoch on this device
  kDecryptFailed,      // the op body did not open with the section key
  kMembershipInvalid,  // a membership entry out of chain, unsigned or not allowed
  kInvalidField,       // a typed record field with a value of the wrong kind
  kStore,              // the local database failed or is damaged
  kSchemaTooNew,       // the local database was written by a newer version
  kChecksumMismatch,   // a section's checksum from the server differs from what the device
                       // received; the device fetches the plan again from the start
  kServerDiverged,     // it still differs after fetching everything again; not retried
  kInviteCode,         // an invite code that is mistyped, cut short or altered
  kInviteUnknown,      // no such invitation in the plan
  kInviteUsed,         // the invitation was accepted already (it is single-use)
  kInviteExpired,      // the invitation's time ran out
  kInviteMismatch,     // what the server gave for an invitation is not what the code stands for
};

std::string_view sync_error_code_name(SyncErrorCode code) noexcept;

class SyncError : public std::runtime_error {
 public:
  SyncError(SyncErrorCode code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  SyncErrorCode code() const noexcept { return code_; }

 private:
  SyncErrorCode code_;
};

}  // namespace kith::sync
