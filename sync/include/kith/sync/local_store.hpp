// The device's local store: one SQLite file holding the plans on this device, their ops (as
// received or authored), the outbox of ops not yet acknowledged, the membership log, envelopes
// (received, and made here but not yet stored by the server), section keys, the sync cursor with
// the section digests it reaches, and the materialised plan state.
//
// The store deals in opaque bytes plus ids: it neither parses nor verifies ops, membership
// entries or envelopes (that is the merge engine's and the membership log's work). Ops, entries
// and envelopes are stored as they travel — they are either sealed under a section key or data
// the server holds anyway. What only this device knows is sealed under `storage_key` (the
// device's storage key, unlocked by the passphrase or the platform keystore): plan titles, the
// materialised plan state and the section keys. Each sealed value's associated data names its
// table, plan and row key, so a value moved to another row does not open. docs/STORE.md has the
// schema, the migrations and the exact associated data.
//
// Writes are transactional: a write made while a Transaction is open joins it; any other write
// commits on its own (and pays one fsync: group writes into a Transaction). Durability is
// SQLite's WAL with synchronous=FULL, so a committed write survives power loss and kill -9, and
// an uncommitted one leaves no trace.
//
// Errors: every method may throw SyncError. kStore means the file failed or is damaged (the
// message starts with a sentence to show a person); kSchemaTooNew means the file was written by a
// newer version of Kith; kTooLarge means an integer above 2^63 - 1, which SQLite cannot hold.
// Values that are not there are std::nullopt / false / empty, not errors.
//
// Threads: a LocalStore (and its Transactions) is used from one thread at a time; it may move
// between threads. Several LocalStores on one file (in one or several processes) are safe:
// SQLite serialises their writes, waiting up to five seconds for the lock.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kith/crypto/aead.hpp"
#include "kith/crypto/secret.hpp"
#include "kith/sync/ids.hpp"
#include "kith/sync/section_digest.hpp"

namespace kith::sync {

// One op as stored: the ids and chain position the store indexes by, and the op's bytes
// (header and sealed body) exactly as received or authored.
struct StoredOp {
  PlanId plan;
  std::string section;
  DeviceId author;
  std::uint64_t author_seq = 0;
  OpId op_id;
  std::uint64_t server_seq = 0;  // 0 = not yet acknowledged by the server
  Bytes header;
  Bytes body;
  // Set by the store: the op's place in this device's arrival order (increasing, never reused,
  // not dense). Ignored by put_op. Pass the last one seen to ops() to read on.
  std::uint64_t local_index = 0;

  friend bool operator==(const StoredOp&, const StoredOp&) = default;
};

struct StoredEnvelope {
  std::string section;
  std::uint64_t epoch = 0;
  Bytes envelope;

  friend bool operator==(const StoredEnvelope&, const StoredEnvelope&) = default;
};

// An envelope this device made for another device, waiting for the server to store it.
struct OutgoingEnvelope {
  std::uint64_t id = 0;  // chosen by the store: increasing, never reused
  Bytes envelope;
  std::optional<OpId> invite;  // set for an invitation's envelope (sealed to the invite's key)
  bool recovery = false;       // sealed to this account's recovery box key

  friend bool operator==(const OutgoingEnvelope&, const OutgoingEnvelope&) = default;
};

// One section's checksum as this device computed it over the ops it received from the server.
struct StoredSectionDigest {
  std::string section;
  SectionDigest digest;

  friend bool operator==(const StoredSectionDigest&, const StoredSectionDigest&) = default;
};

class LocalStore {
 public:
  // The schema this version writes; files from older versions are migrated to it on open.
  static constexpr int kSchemaVersion = 7;

  // Opens the store at `path`, creating it (mode 0600) when missing; WAL mode, synchronous=FULL,
  // foreign keys on; migrates an older schema, each step in its own transaction. Throws
  // SyncError:
  //  - kSchemaTooNew for a file written by a newer version (the file is not modified);
  //  - kStore for a file that is not a Kith store or is damaged (not modified either), for a
  //    folder that is missing or not writable, and for a `storage_key` other than the one the
  //    store was created with ("...does not open this store...").
  LocalStore(const std::filesystem::path& path, const crypto::SectionKey& storage_key);
  ~LocalStore();
  LocalStore(LocalStore&&) noexcept;
  LocalStore& operator=(LocalStore&&) noexcept;
  LocalStore(const LocalStore&) = delete;
  LocalStore& operator=(const LocalStore&) = delete;

  // An open transaction: every write through the store joins it until commit(). The destructor
  // rolls back whatever was not committed and never throws. Must not outlive its store; one at a
  // time per store. If a write inside it fails, that write alone is undone and the transaction
  // stays usable — unless SQLite itself had to roll back (disk full, I/O error), in which case
  // every later write and commit() throws kStore until the Transaction is destroyed.
  class Transaction {
   public:
    ~Transaction();
    Transaction(Transaction&&) noexcept;
    Transaction& operator=(Transaction&&) = delete;
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;

    // Makes the writes durable. Throws SyncError(kStore) if the commit fails; the writes are
    // then rolled back.
    void commit();

   private:
    friend class LocalStore;
    class State;
    explicit Transaction(std::unique_ptr<State> state);
    std::unique_ptr<State> state_;
  };

  // How hard a commit works to survive a power cut. kFull (the default) flushes the WAL to disk
  // at every commit. kRelaxed (SQLite's synchronous=NORMAL for that transaction) is just as
  // atomic and survives the app being killed, but the last commits may be lost if the phone
  // loses power or the OS crashes. Use it only for what the server can send again (a catch-up
  // batch and the cursor it reaches); never for this device's own changes.
  enum class Durability { kFull, kRelaxed };

  // Throws SyncError(kStore) when a Transaction is already open on this store.
  [[nodiscard]] Transaction begin(Durability durability = Durability::kFull);

  // --- Plans on this device: id and title (sealed). ---
  // Adds the plan, or changes its title.
  void put_plan(const PlanId& plan, std::string_view title);
  // In the order they were first put.
  std::vector<std::pair<PlanId, std::string>> plans() const;
  bool has_plan(const PlanId& plan) const;
  // Removes the plan and everything stored for it (ops, outbox, keys, state, cursor, digests).
  void remove_plan(const PlanId& plan);

  // Every write below for a plan that has not been put throws kStore ("put_plan comes first");
  // a read of such a plan finds nothing.

  // --- Ops. ---
  // Stores the op; idempotent by (plan, op id): returns false, leaving the stored op as it was,
  // when that op id is already stored for the plan.
  bool put_op(const StoredOp& op);
  std::optional<StoredOp> op(const PlanId& plan, const OpId& op_id) const;
  // Up to `limit` ops of the plan with a local index above `after_local_index`, in arrival order.
  std::vector<StoredOp> ops(const PlanId& plan, std::uint64_t after_local_index = 0,
                            std::size_t limit = 1000) const;
  // When the server acknowledges an op. False when the op is not stored.
  bool set_server_seq(const PlanId& plan, const OpId& op_id, std::uint64_t server_seq);
  // New bytes for a stored op (re-encryption under a new epoch after a key rotation, before
  // upload); its ids, position and server sequence are kept. False when the op is not stored.
  bool replace_op_body(const PlanId& plan, const OpId& op_id, ByteView header, ByteView body);

  // --- Outbox: locally authored ops not yet acknowledged, in authoring order. ---
  // The op must already be stored (put_op); adding it again keeps its place.
  void outbox_add(const PlanId& plan, const OpId& op_id);
  // When the server acknowledged it. Removing an op that is not queued does nothing.
  void outbox_remove(const PlanId& plan, const OpId& op_id);
  std::vector<OpId> outbox(const PlanId& plan) const;
  // The queued ops themselves, in authoring order, at most `limit`.
  std::vector<StoredOp> outbox_ops(const PlanId& plan, std::size_t limit = 1000) const;

  // --- Membership log entries (opaque), by index from 0. ---
  // Returns false, leaving the stored entry as it was, when `index` is already stored. Throws
  // SyncError(kMembershipInvalid) when `index` would leave a gap after the last stored entry.
  bool put_membership_entry(const PlanId& plan, std::uint64_t index, ByteView entry);
  // Entry i is at position i.
  std::vector<Bytes> membership(const PlanId& plan) const;
  // Removes the entries from `from_index` on: this device's own entries that lost a race for
  // their place in the log, before the server's entries and its own, re-made, take it.
  void truncate_membership(const PlanId& plan, std::uint64_t from_index);

  // --- Envelopes (opaque) received for this device, one per (section, epoch); put replaces. ---
  void put_envelope(const PlanId& plan, std::string_view section, std::uint64_t epoch,
                    ByteView envelope);
  std::optional<Bytes> envelope(const PlanId& plan, std::string_view section,
                                std::uint64_t epoch) const;
  // Ordered by section, then epoch.
  std::vector<StoredEnvelope> envelopes(const PlanId& plan) const;

  // --- Outgoing envelopes (opaque): section keys this device wrapped for other devices, kept
  // until the server has stored them, so that a restart does not lose them. ---
  // Queues an envelope and returns its id.
  std::uint64_t add_outgoing_envelope(const PlanId& plan, ByteView envelope,
                                      const std::optional<OpId>& invite = std::nullopt,
                                      bool recovery = false);
  // In the order they were queued.
  std::vector<OutgoingEnvelope> outgoing_envelopes(const PlanId& plan) const;
  // When the server has stored it, or it is no longer wanted. Removing an envelope that is not
  // queued does nothing.
  void remove_outgoing_envelope(const PlanId& plan, std::uint64_t id);

  // Keys of the plan this device has sealed to the account's recovery box (or received so),
  // as (section, epoch): each is sealed once.
  void mark_recovery_sealed(const PlanId& plan, std::string_view section, std::uint64_t epoch);
  std::set<std::pair<std::string, std::uint64_t>> recovery_sealed(const PlanId& plan) const;

  // Names this device's person gave the members of a plan, sealed; never sent anywhere.
  // `subject` is an account id (32 bytes), or an invitation's id (16) until its invitee joins.
  // set_name replaces; an empty name removes it. names() lists them in subject order (a vector,
  // not a map keyed by Bytes: GCC 12 at -O3 warns falsely in std::less<std::vector<uint8_t>>).
  void set_name(const PlanId& plan, ByteView subject, std::string_view name);
  std::vector<std::pair<Bytes, std::string>> names(const PlanId& plan) const;

  // People whose safety number this device's owner compared in person and marked verified,
  // with when (Unix ms). Not plan-specific: an account id is the person's identity key.
  void set_verified(const AccountId& account, std::uint64_t at_ms);
  std::optional<std::uint64_t> verified_at(const AccountId& account) const;

  // --- Section keys (sealed), one per (section, epoch); put replaces. ---
  void put_section_key(const PlanId& plan, std::string_view section, std::uint64_t epoch,
                       const crypto::SectionKey& key);
  std::optional<crypto::SectionKey> section_key(const PlanId& plan, std::string_view section,
                                                std::uint64_t epoch) const;

  // --- Cursor: the last server sequence applied, per plan; 0 before the first. ---
  void set_cursor(const PlanId& plan, std::uint64_t server_seq);
  std::uint64_t cursor(const PlanId& plan) const;

  // --- Section digests: per section, the checksum (docs/PROTOCOL.md, "Section checksums") of
  // the ops this device received from the server with a server sequence up to `digest_seq`. The
  // sync engine writes them in the transaction that moves the cursor. ---
  // Sets `digest_seq` and replaces the digest of each section in `changed`; other sections keep
  // theirs.
  void put_section_digests(const PlanId& plan, std::uint64_t digest_seq,
                           const std::vector<StoredSectionDigest>& changed);
  // Forgets every section digest of the plan and sets `digest_seq` to 0 (a full re-fetch).
  void clear_section_digests(const PlanId& plan);
  // Ordered by section.
  std::vector<StoredSectionDigest> section_digests(const PlanId& plan) const;
  // 0 before the first digest, and for a plan stored before schema version 4 (the engine then
  // computes the digests again from the stored ops).
  std::uint64_t digest_seq(const PlanId& plan) const;

  // --- Materialised plan state (opaque plaintext from the merge engine), sealed. ---
  void save_plan_state(const PlanId& plan, ByteView plaintext);
  // nullopt when no state was saved. A sealed value that does not open (the file was altered,
  // or a value moved between rows) throws kStore rather than returning anything.
  std::optional<crypto::SecretBytes> load_plan_state(const PlanId& plan) const;

  int schema_version() const;
  // Copies the WAL into the database file and empties it (e.g. when the app goes to the
  // background). Closing the store does this too.
  void checkpoint();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kith::sync
