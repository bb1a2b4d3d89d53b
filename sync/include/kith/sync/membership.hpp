// The membership log: who is in a plan, with which rights on which sections, and under which
// key epoch each section is encrypted.
//
// Per plan, a hash-chained list of entries, each signed by the device that wrote it (label
// kith/v1/membership-entry). Every client replays the whole log and checks each entry: its
// index and link, its signature, and that its author had the right to write it at that point
// (DESIGN.md §2.2: the owner, or a `manage` member for the sections they manage). The server
// stores and orders the log but cannot forge an entry.
//
// Ops are judged against the log as their author had seen it (OpHeader::membership_index):
// rights and key epoch in force at that point. An entry that reduces someone's rights or rotates
// a section key lists, per device, the last op of theirs it had seen in that section (the
// cut-off); an op that claims an older view of the log but lies beyond the cut-off is refused,
// so a revoked member cannot write "in the past". Layout: docs/PROTOCOL.md, "Membership log".
//
// Not thread-safe; copyable.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kith/crypto/identity.hpp"
#include "kith/sync/ids.hpp"
#include "kith/sync/op.hpp"
#include "kith/sync/plan_state.hpp"

namespace kith::sync {

enum class Permission : std::uint8_t { kNone = 0, kRead = 1, kAppend = 2, kWrite = 3, kManage = 4 };
std::string_view permission_name(Permission p) noexcept;
// "read", "append", "write", "manage"; nullopt otherwise.
std::optional<Permission> parse_permission(std::string_view text) noexcept;

struct GrantSpec {
  Section section = Section::parse("profile");
  Permission permission = Permission::kRead;
  std::uint64_t expires_at_ms = 0;  // 0: no expiry
  friend bool operator==(const GrantSpec&, const GrantSpec&) = default;
};

// The last op of `device` in `section` that the entry's author had seen.
struct Cutoff {
  DeviceId device;
  Section section = Section::parse("profile");
  std::uint64_t seq = 0;
  friend bool operator==(const Cutoff&, const Cutoff&) = default;
};

struct MembershipEntry {
  enum class Kind : std::uint8_t {
    kPlanCreated = 1,     // certificate: the owner's first device
    kDeviceAdded = 2,     // certificate: another device of an existing member
    kInviteCreated = 3,   // invite_id, invite_key, invite_expires_at_ms, grants
    kInviteAccepted = 4,  // invite_id, certificate (the invitee's), invite_signature
    kGrant = 5,           // member, grants (exactly one), cutoffs
    kRevoke = 6,          // member, section (none: every section), cutoffs
    kKeyRotation = 7,     // section, epoch, cutoffs
  };

  PlanId plan;
  std::uint64_t index = 0;
  crypto::Hash prev{};  // hash of entry index - 1; zero for the first
  DeviceId author;
  std::uint64_t at_ms = 0;  // the author's clock when writing
  Kind kind = Kind::kGrant;

  std::optional<crypto::DeviceCertificate> certificate;
  AccountId member;
  std::vector<GrantSpec> grants;
  std::optional<Section> section;
  std::uint64_t epoch = 0;
  OpId invite_id;
  Bytes invite_key;  // Ed25519 public key derived from the invite secret (32 bytes)
  std::uint64_t invite_expires_at_ms = 0;
  crypto::Signature invite_signature{};
  std::vector<Cutoff> cutoffs;
  crypto::Signature signature{};

  // Every byte before the signature: what the author signs.
  Bytes body() const;
  Bytes serialize() const;
  // Throws SyncError(kMalformed / kTooLarge).
  static MembershipEntry parse(ByteView bytes);
  crypto::Hash hash() const;
  void sign(const crypto::SigningKey& device);
  // The bytes an invitee signs with the invite key: plan || invite_id || certificate.
  Bytes invite_join_message() const;
};

// The Ed25519 key an invite secret stands for: the inviter publishes its public half in the
// invite entry; the invitee signs the join with it. The server only ever sees a hash.
crypto::SigningKey invite_key_from_secret(ByteView secret);

struct MemberView {
  AccountId account;
  bool owner = false;
  std::vector<DeviceId> devices;
  std::map<Section, GrantSpec> grants;  // in force at the end of the log (expiry not applied)
};

// An invitation as the log has it.
struct InviteInfo {
  std::uint64_t index = 0;  // of its kInviteCreated entry
  DeviceId author;          // the device that wrote that entry
  Bytes key;                // the public invite key (Ed25519, 32 bytes)
  std::uint64_t expires_at_ms = 0;
  std::vector<GrantSpec> grants;
  AccountId created_by;
  bool used = false;
  std::optional<AccountId> accepted_by;
};

class MembershipLog {
 public:
  explicit MembershipLog(PlanId plan) : plan_(plan) {}

  // Verifies `entry` as the next one and applies it. Throws SyncError — kMembershipInvalid
  // (wrong index or link, wrong plan, malformed payload), kBadSignature, kForbidden (the author
  // may not write this entry) — and then changes nothing.
  void append(const MembershipEntry& entry);

  const PlanId& plan() const noexcept { return plan_; }
  std::uint64_t size() const noexcept { return size_; }
  const crypto::Hash& head_hash() const noexcept { return head_; }
  std::optional<AccountId> owner() const { return owner_; }

  // A skeleton for the next entry (plan, index, prev, author, time); fill the payload, sign.
  MembershipEntry next(MembershipEntry::Kind kind, const DeviceId& author,
                       std::uint64_t at_ms) const;

  // State after the first `at` entries (default: all of them).
  std::optional<AccountId> account_of(const DeviceId& device,
                                      std::optional<std::uint64_t> at = {}) const;
  // Expiry is applied when `now_ms` is given.
  Permission permission(const AccountId& account, const Section& section,
                        std::optional<std::uint64_t> at = {},
                        std::optional<std::uint64_t> now_ms = {}) const;
  std::uint64_t epoch(const Section& section, std::optional<std::uint64_t> at = {}) const;
  std::vector<MemberView> members() const;
  const crypto::DeviceCertificate* certificate(const DeviceId& device) const;
  // The invitation with this id, or nullptr.
  const InviteInfo* invite(const OpId& id) const;
  const std::map<OpId, InviteInfo>& invites() const noexcept { return invites_; }

  // Checks an op's author, rights, expiry and key epoch against the log as the author had
  // seen it. Returns the rights for the merge, or throws SyncError: kMembershipInvalid (the op
  // refers to entries not yet here: wait for them), kNotMember, kForbidden, kGrantExpired,
  // kRetiredEpoch, kUnknownEpoch.
  AuthorRights check_op(const OpHeader& header) const;

 private:
  struct Change {
    std::uint64_t index;  // takes effect after entry `index`
    GrantSpec grant;
  };
  struct Barrier {
    std::uint64_t index;
    std::optional<AccountId> account;  // nullopt: every device (a key rotation)
    std::map<DeviceId, std::uint64_t> cutoffs;
  };
  struct Device {
    AccountId account;
    std::uint64_t added;
    crypto::DeviceCertificate certificate;
  };

  // Orders grants_ by (account, section) and finds a key from references, so that a look-up
  // per op (check_op) copies no section name.
  struct GrantKeyLess {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
      if (a.first != b.first) return a.first < b.first;
      return a.second < b.second;
    }
  };
  using GrantKey = std::pair<const AccountId&, const Section&>;

  // The change to (account, section) in force after the first `limit` entries, if any.
  const Change* grant_in_force(const AccountId& account, const Section& section,
                               std::uint64_t limit) const;
  void check(const MembershipEntry& e) const;
  void check_manages(const AccountId& author, const Section& section, const char* what) const;
  void apply(const MembershipEntry& e);
  void reduce(const MembershipEntry& e, const AccountId& member, const Section& section);
  std::uint64_t at_or_size(std::optional<std::uint64_t> at) const { return at ? *at : size_; }

  PlanId plan_;
  std::uint64_t size_ = 0;
  crypto::Hash head_{};
  std::optional<AccountId> owner_;
  std::map<DeviceId, Device> devices_;
  std::map<AccountId, std::vector<DeviceId>> accounts_;
  std::map<std::pair<AccountId, Section>, std::vector<Change>, GrantKeyLess> grants_;
  std::map<Section, std::vector<std::pair<std::uint64_t, std::uint64_t>>> epochs_;
  std::map<Section, std::vector<Barrier>> barriers_;
  std::map<OpId, InviteInfo> invites_;
};

}  // namespace kith::sync
