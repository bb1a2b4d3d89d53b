#include "kith/sync/error.hpp"

namespace kith::sync {

std::string_view sync_error_code_name(SyncErrorCode code) noexcept {
  switch (code) {
    case SyncErrorCode::kMalformed:
      return "malformed";
    case SyncErrorCode::kTooLarge:
      return "too_large";
    case SyncErrorCode::kUnknownSection:
      return "unknown_section";
    case SyncErrorCode::kBadSignature:
      return "bad_signature";
    case SyncErrorCode::kChainGap:
      return "chain_gap";
    case SyncErrorCode::kChainFork:
      return "chain_fork";
    case SyncErrorCode::kChainReplay:
      return "chain_replay";
    case SyncErrorCode::kNotMember:
      return "not_member";
    case SyncErrorCode::kForbidden:
      return "forbidden";
    case SyncErrorCode::kGrantExpired:
      return "grant_expired";
    case SyncErrorCode::kRetiredEpoch:
      return "retired_epoch";
    case SyncErrorCode::kUnknownEpoch:
      return "unknown_epoch";
    case SyncErrorCode::kDecryptFailed:
      return "decrypt_failed";
    case SyncErrorCode::kMembershipInvalid:
      return "membership_invalid";
    case SyncErrorCode::kInvalidField:
      return "invalid_field";
    case SyncErrorCode::kStore:
      return "store_error";
    case SyncErrorCode::kSchemaTooNew:
      return "schema_too_new";
    case SyncErrorCode::kChecksumMismatch:
      return "checksum_mismatch";
    case SyncErrorCode::kServerDiverged:
      return "server_diverged";
    case SyncErrorCode::kInviteCode:
      return "invite_code_invalid";
    case SyncErrorCode::kInviteUnknown:
      return "invite_unknown";
    case SyncErrorCode::kInviteUsed:
      return "invite_used";
    case SyncErrorCode::kInviteExpired:
      return "invite_expired";
    case SyncErrorCode::kInviteMismatch:
      return "invite_mismatch";
  }
  return "unknown";
}

}  // namespace kith::sync
