// The server's durable store: what kithd keeps for each plan, behind an interface so that the
// embedded SQLite backend (sqlite_storage.hpp) and a later PostgreSQL backend are
// interchangeable.
//
// kithd never decides anything here: the session layer verifies every op, head, membership
// entry and envelope, assigns server sequence numbers under the plan's lock, and hands the
// result to the group-commit writer (group_commit.hpp), which applies the batches of many
// concurrent requests with one `commit()` call. What this interface stores is opaque to it
// except for the plaintext header fields the protocol exposes to the server (DESIGN.md §2.2,
// "What the server sees").
//
// Thread-safety: `commit()` is called by one thread at a time (the writer). Every read method may
// be called from any thread, concurrently with each other and with `commit()`, and sees only
// committed data (in SQLite, each reading thread has its own connection in WAL mode).
// Every method throws StorageError on failure; a failed `commit()` stores nothing of any batch.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "kith/crypto/hash.hpp"
#include "kith/crypto/sign.hpp"
#include "kith/sync/chain.hpp"
#include "kith/sync/ids.hpp"
#include "kith/sync/section.hpp"

namespace kith::server {

using crypto::Bytes;
using sync::AccountId;
using sync::ChainKey;
using sync::DeviceId;
using sync::OpId;
using sync::PlanId;
using sync::Section;

class StorageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An op as stored: the bytes the author sent, the plan sequence the server gave it, and the
// header fields the server indexes by.
struct StoredOp {
  std::uint64_t seq = 0;  // per plan, 1, 2, 3, ... without gaps
  OpId op_id;
  Section section = Section::parse("profile");
  DeviceId author;
  std::uint64_t author_seq = 0;
  std::uint64_t epoch = 0;
  sync::OpHash hash{};  // sync::op_hash(header, body)
  // The section's running checksum after this op (docs/PROTOCOL.md, "Section checksums"):
  // how many ops of the section up to and including this one, and the digest chain over them.
  std::uint64_t section_count = 0;
  crypto::Hash section_digest{};
  Bytes header;
  Bytes body;
};

// Where an op already stored sits, for answering a retried push.
struct OpRef {
  std::uint64_t seq = 0;
  Section section = Section::parse("profile");
  DeviceId author;
  std::uint64_t author_seq = 0;
  sync::OpHash hash{};
};

// A signed chain head as pushed; kept so that catch-up can send, with any slice of a chain, a
// head that covers it.
struct StoredHead {
  DeviceId author;
  Section section = Section::parse("profile");
  std::uint64_t seq = 0;  // the head's chain position
  Bytes head;             // sync::ChainHead::serialize()
  crypto::Signature signature{};
};

// An envelope (a section key sealed to one device), indexed by what the server may read of it.
struct StoredEnvelope {
  Bytes recipient;  // the recipient device's X25519 public key (32 bytes)
  Section section = Section::parse("profile");
  std::uint64_t epoch = 0;
  Bytes envelope;  // crypto::Envelope::serialize()
};

// One line of the fetch log: a device received a section's ops up to a sequence.
struct FetchRecord {
  std::uint64_t id = 0;  // assigned by the store on commit, increasing; ignored when writing
  AccountId account;
  DeviceId device;
  Section section = Section::parse("profile");
  std::uint64_t up_to_seq = 0;
  std::uint64_t at_ms = 0;
  bool live = false;  // false: catch-up (Subscribe); true: live delivery
};

// A device that authenticated, with the certificate its account's identity key issued.
struct DeviceRecord {
  DeviceId device;
  AccountId account;
  Bytes certificate;  // crypto::DeviceCertificate::serialize()
  std::uint64_t last_seen_ms = 0;
};

// One row of the account -> plans index: a plan the account is a current member of (its owner,
// or a member holding a grant that was not revoked; expiry does not remove a row). kithd keeps
// it so that an account's devices can ask which plans it is in (ListPlans) without the server
// replaying every plan's log. The session layer computes the rows from the membership log
// (plan_index.hpp) and writes them with the entries that change them, in the same commit.
struct AccountPlan {
  AccountId account;
  PlanId plan;
  bool owner = false;
  AccountId owner_account;          // the plan's owner (== account when `owner`)
  std::uint64_t created_at_ms = 0;  // the at_ms of the plan's first entry (the owner's clock)
  std::uint64_t expires_at_ms = 0;  // when the last of the account's grants ends; 0: never
  friend bool operator==(const AccountPlan&, const AccountPlan&) = default;
};

// Everything one request writes. The writer commits many of these in one transaction.
struct WriteBatch {
  PlanId plan;
  std::vector<StoredOp> ops;                                  // increasing seq
  std::vector<StoredHead> heads;                              // replaces an equal (author, section, seq)
  std::vector<std::pair<std::uint64_t, Bytes>> membership;    // (log index, entry), increasing index
  std::vector<StoredEnvelope> envelopes;                      // an identical envelope is stored once
  std::vector<FetchRecord> fetches;
  std::vector<DeviceRecord> devices;                          // insert or update last_seen_ms
  // The plan index: rows of this plan (row.plan == plan) to insert or replace, and accounts
  // that are no longer members of it (their row is removed; none is fine).
  std::vector<AccountPlan> plan_index_put;
  std::vector<AccountId> plan_index_drop;

  bool empty() const noexcept {
    return ops.empty() && heads.empty() && membership.empty() && envelopes.empty() &&
           fetches.empty() && devices.empty() && plan_index_put.empty() && plan_index_drop.empty();
  }
};

// The running checksum of one section at some sequence.
struct SectionChecksum {
  std::uint64_t op_count = 0;
  crypto::Hash digest{};
};

// What kithd needs in memory to verify the next push to a plan.
struct PlanSnapshot {
  std::vector<Bytes> membership;  // every entry, in log order
  std::uint64_t last_seq = 0;     // 0: no ops yet
  std::map<ChainKey, std::pair<std::uint64_t, sync::OpHash>> chain_tips;  // last seq and hash
  // The header of each chain's last op: a new membership entry that would cut that op off
  // (a revocation or rotation whose cut-off is behind what is stored) is refused.
  std::map<ChainKey, Bytes> tip_headers;
  std::map<Section, SectionChecksum> sections;                              // at last_seq
  std::vector<OpId> op_ids;  // of every op stored, in no particular order
};

class Storage {
 public:
  virtual ~Storage() = default;

  // Applies every batch in one transaction, in order: all of them become durable (to the
  // configured synchronous level) or, on failure, none does. Writing membership index i that is
  // already stored with different bytes, or an op whose (plan, seq) or (plan, op_id) is taken,
  // fails the commit (the caller's in-memory state was wrong; it reloads the plan).
  virtual void commit(std::span<const WriteBatch> batches) = 0;

  // Reads (any thread, committed data only).
  // nullopt when the plan has no membership entry yet (it does not exist).
  virtual std::optional<PlanSnapshot> load_plan(const PlanId& plan) = 0;
  virtual std::optional<OpRef> find_op(const PlanId& plan, const OpId& op) = 0;
  // find_op of each of `ops`, in order, as of one snapshot; cheaper than one call each.
  virtual std::vector<std::optional<OpRef>> find_ops(const PlanId& plan,
                                                     std::span<const OpId> ops) {
    std::vector<std::optional<OpRef>> out;
    out.reserve(ops.size());
    for (const OpId& op : ops) out.push_back(find_op(plan, op));
    return out;
  }
  // Ops with after < seq <= up_to whose section is in `sections`, in seq order, at most `limit`.
  virtual std::vector<StoredOp> ops_after(const PlanId& plan, std::uint64_t after,
                                          std::uint64_t up_to,
                                          const std::vector<Section>& sections,
                                          std::size_t limit) = 0;
  // The head of chain `chain` with the largest seq <= `seq`; nullopt if none.
  virtual std::optional<StoredHead> head_at_or_below(const PlanId& plan, const ChainKey& chain,
                                                     std::uint64_t seq) = 0;
  // Each section's checksum at `seq` (sections with no op up to `seq` are absent).
  virtual std::map<Section, SectionChecksum> checksums_at(const PlanId& plan,
                                                          std::uint64_t seq) = 0;
  // Membership entries from `from` (0-based) on, at most `limit`.
  virtual std::vector<Bytes> membership_from(const PlanId& plan, std::uint64_t from,
                                             std::size_t limit) = 0;
  // Envelopes addressed to `recipient` (32-byte X25519 key), in storage order.
  virtual std::vector<StoredEnvelope> envelopes_for(const PlanId& plan, const Bytes& recipient) = 0;
  // Fetch log records with id > after, oldest first, at most `limit`.
  virtual std::vector<FetchRecord> fetch_log(const PlanId& plan, std::uint64_t after,
                                             std::size_t limit) = 0;
  virtual std::optional<DeviceRecord> find_device(const DeviceId& device) = 0;
  // The plans `account` is a member of, in ascending plan id (byte) order, starting after
  // `after` (nullopt: from the first), at most `limit`.
  virtual std::vector<AccountPlan> plans_of(const AccountId& account,
                                            const std::optional<PlanId>& after,
                                            std::size_t limit) = 0;
};

}  // namespace kith::server
