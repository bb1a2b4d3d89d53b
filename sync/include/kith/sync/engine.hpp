// The client sync engine: everything a phone or the CLI does with a plan, independent of how
// bytes reach the server.
//
// It authors ops offline (stamped into this device's chains, sealed under the section key,
// applied locally and queued in the outbox), and turns the conversation with the server into
// calls: `subscribe()` gives the messages to send for a plan (subscribe with the cursor, push
// queued membership entries and ops); `handle()` takes any message from the server and returns
// replies to send. Incoming ops are verified (chain and head signature), checked against the
// membership log, decrypted and merged; each batch is committed to the local store together
// with the cursor it reaches, so an interrupted catch-up resumes where it stopped. The cursor
// never moves past an op that is still waiting for its signed head. An ack (or the server
// echoing the device's own op back) removes the op from the outbox. After a key rotation, queued
// ops under the retired epoch are re-sealed under the new one before upload.
//
// Membership entries this device writes (add_device, rotate_key) go up before the envelopes and
// ops that depend on them, each kind only once the server has acknowledged the entries before
// it; envelopes wait in the local store until the server has stored them, so a restart loses
// none. When another device's entry took the place in the log of one of this device's (both
// wrote it offline; the server keeps the first), this device takes the server's entries and
// makes its own again after them: at the next place, with the cut-offs and epoch of a key
// rotation as it now sees them, signed again and checked against the rights it now has. One no
// longer allowed is dropped with a kProblem event, together with the envelopes it made. So is an
// entry the server refuses that comes out the same when made again.
//
// Per section, the engine keeps a checksum of the ops it received from the server, in server
// order (docs/PROTOCOL.md, "Section checksums"), stored with the cursor. At the end of each
// catch-up it compares those of the sections it may read with the server's: a server that
// dropped, reordered or withheld an op is reported (kProblem, kChecksumMismatch, naming the
// section) and the plan is fetched again from the start, once; if the checksums still differ
// after that, it is reported as kServerDiverged and not retried. Merging is idempotent, so
// fetching again is safe. A section granted to this device after its cursor passed older ops of
// it differs for that reason alone; it is fetched again the same way, without a report.
//
// Every device seals each key it holds of a section its account may read, once, to the
// account's recovery box key (derived from the identity key) and pushes it as a recovery
// envelope; every Subscribe proves the recovery box key, so a device restored from the recovery
// key alone gets those keys back and can read the plan's history with no other device at hand.
//
// Events (record changed, conflict, problem, progress, acked) go to the sink set with
// `on_event`, synchronously, from the thread calling into the engine.
//
// Not thread-safe: one engine per store, used from one thread (the CLI's, or the app's sync
// thread). Methods that change state throw SyncError on failure and then leave the store as it
// was (each change is one transaction).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "kith/crypto/envelope.hpp"
#include "kith/crypto/identity.hpp"
#include "kith/crypto/recovery.hpp"
#include "kith/sync/chain.hpp"
#include "kith/sync/invite.hpp"
#include "kith/sync/key_ring.hpp"
#include "kith/sync/local_store.hpp"
#include "kith/sync/membership.hpp"
#include "kith/sync/plan_state.hpp"
#include "kith/v1/sync.pb.h"

namespace kith::sync {

// This device's keys and the certificate its identity key issued for them.
struct DeviceIdentity {
  crypto::DeviceSecrets secrets;
  crypto::DeviceCertificate certificate;

  static DeviceIdentity create(crypto::DeviceSecrets secrets, std::uint64_t issued_at);
  AccountId account() const;
  DeviceId device() const;
  // The key that seals this device's local store (LocalStore): a crypto_kdf subkey of the
  // device's X25519 secret (context "kithstor"), so it exists only where the key file was
  // opened with the passphrase, and a copied database is useless without both.
  crypto::SectionKey storage_key() const;
};

struct SyncEvent {
  enum class Kind {
    kRecordChanged,  // record (field empty: created or deleted)
    kConflict,       // record, field: concurrent edits now wait for a person
    kProblem,        // code, message: an op, head, entry or envelope was refused, or a
                     // section's checksum differs from the server's
    kProgress,       // server_seq: applied up to here (more: another batch follows)
    kAcked,          // count: ops the server stored
  };
  Kind kind = Kind::kProgress;
  PlanId plan;
  RecordId record;
  std::string field;
  SyncErrorCode code = SyncErrorCode::kMalformed;
  std::string message;
  std::uint64_t server_seq = 0;
  std::uint64_t count = 0;
  bool more = false;

  static SyncEvent record_changed(const PlanId& plan, const RecordId& record);
  static SyncEvent conflict(const PlanId& plan, const RecordId& record, std::string field);
  static SyncEvent problem(const PlanId& plan, SyncErrorCode code, std::string message);
  static SyncEvent progress(const PlanId& plan, std::uint64_t server_seq, bool more);
  static SyncEvent acked(const PlanId& plan, std::uint64_t count);
};

using Fields = std::vector<std::pair<std::string, std::string>>;

// One line of the owner's access log (SyncEngine::access_log).
struct AccessEvent {
  enum class Kind {
    kRead,        // the server delivered a section's ops to a device (its fetch log)
    kChange,      // a signed op: records created or fields set
    kMembership,  // a membership entry: joined, invited, granted, revoked, key rotated, ...
  };
  Kind kind = Kind::kChange;
  std::uint64_t at_ms = 0;  // server clock for reads; the author's clock otherwise
  AccountId account;        // who (zero for a membership entry by a device no longer known)
  DeviceId device;
  std::string section;      // empty for membership entries about no one section
  std::string text;         // plain words, without the person's name ("read health up to 42")
};

class SyncEngine {
 public:
  // Loads every plan in `store`. `now_ms` is the wall clock (injected for tests).
  SyncEngine(LocalStore& store, DeviceIdentity me, std::function<std::uint64_t()> now_ms);
  ~SyncEngine();
  SyncEngine(const SyncEngine&) = delete;
  SyncEngine& operator=(const SyncEngine&) = delete;

  void on_event(std::function<void(const SyncEvent&)> sink) { sink_ = std::move(sink); }

  // Saves each plan's merged state, so the next start need not replay the ops since the last
  // save. Ops and cursors are durable as they arrive; the state is a cache of them, saved here
  // (call it when the app goes to the background or the CLI exits) and by the destructor, not
  // on the catch-up path, where writing a large plan's state would cost more than replaying.
  void flush();
  const DeviceIdentity& identity() const noexcept { return me_; }

  // --- Authoring; works offline. ---
  // A new plan owned by this account: its membership log starts, and this device holds a key
  // (epoch 1) for every known section.
  PlanId create_plan(std::string_view title);
  // Starts holding a plan this device was added to (or invited into): nothing is known of it
  // until the first sync brings its membership log, keys and ops.
  void follow(const PlanId& plan, std::string_view title);
  // Throws kInvalidField (unknown type, bad field value), kForbidden (no right to add here),
  // kUnknownEpoch (no key for the section).
  RecordId add_record(const PlanId& plan, std::string_view type, const Fields& fields);
  // Edits fields; each update names the versions this device has seen, so it supersedes them
  // (and resolves a conflict on that field). Throws as add_record, and kMalformed for a record
  // this device does not have.
  void set_fields(const PlanId& plan, const RecordId& record, const Fields& fields);
  void delete_record(const PlanId& plan, const RecordId& record);
  // Rotates a section's key (new epoch); the caller must manage the section (else kForbidden).
  // The new key is wrapped for every device of every member who may read the section; the entry
  // goes out with the next push, the envelopes once the server has the entry. Queued ops of this
  // device are re-sealed under the new key.
  void rotate_key(const PlanId& plan, const Section& section);
  // Adds another device of this account to the plan and wraps for it every key this device holds
  // of the sections it manages (receivers accept keys only from managers); the entry goes out
  // with the next push, the envelopes once the server has it. The other keys come from the
  // devices of the sections' managers when they see the entry.
  void add_device(const PlanId& plan, const crypto::DeviceCertificate& certificate);
  // For a plan followed on a new device of a member (for example one restored from the recovery
  // key, with no other device at hand): once a sync has brought the plan's log, adds this device
  // itself (its certificate is the proof). The managers' devices wrap the keys for it when they
  // see the entry. Does nothing if this device is in the log already.
  void add_this_device(const PlanId& plan);

  // --- The circle of support (engine_circle.cpp). Offline; goes out with the next push. ---
  // Invites someone with `grants` (and `names: append` when this account manages `names`:
  // with_names_grant), valid until `expires_at_ms`: writes the invitation entry and
  // seals every key this device holds of each section the invitee may read to the key the code
  // stands for, so they can join while this device is offline. Returns the code to hand over;
  // it is not kept here. Throws kForbidden unless this account manages every granted section,
  // kMalformed for no grants or an expiry already past.
  InviteCode invite(const PlanId& plan, const std::vector<GrantSpec>& grants,
                    std::uint64_t expires_at_ms);
  // Sets a member's permission on one section (a grant entry). Raising it to read or more wraps
  // every key this device holds of the section for the member's devices; lowering it carries
  // the cut-offs that stop ops written under the old right; lowering it to none is revoke().
  void grant(const PlanId& plan, const AccountId& member, const GrantSpec& grant);
  // Removes a member's access to `section` (nullopt: every section): a revocation entry, then,
  // for every section they could read, a key rotation whose key is wrapped for the remaining
  // readers only. What they already synced stays with them. Returns the sections rotated.
  std::vector<Section> revoke(const PlanId& plan, const AccountId& member,
                              const std::optional<Section>& section);
  // Sections this account manages whose key a reader held when their grant expired, with no
  // rotation since: the rotation an expiry calls for, which any manager's device may carry out.
  std::vector<Section> pending_rotations(const PlanId& plan) const;
  // Carries them out (rotate_key for each). Returns the sections rotated.
  std::vector<Section> rotate_expired(const PlanId& plan);

  // --- Names the members share with the circle (engine_names.cpp). ---
  // The name this account shares in each plan where it may append to the `names` section: when
  // a plan is created here, and at the end of each catch-up, a plan whose `names` key this
  // device holds and where this account has no `member` record yet gets one with `name`. A
  // record already there is never renamed by this (share_name does that). Empty: nothing is
  // shared. Throws kInvalidField for a name check_member_name refuses.
  void share_name_as(std::string name);
  // Writes `name` into this account's `member` record of the plan (a new one if it has none).
  // Throws kInvalidField (check_member_name), kForbidden (no append on `names`: the plan's
  // invitation predates shared names, or the member was invited by someone who does not manage
  // them), kUnknownEpoch (no key for `names` here yet).
  void share_name(const PlanId& plan, std::string_view name);
  // Each member's name as they share it, as far as this device may read `names`: the `name` of
  // the latest `member` record each account created there, if check_member_name accepts it (a
  // name that would not print safely counts as none). Other members choose these names
  // themselves; what a person calls someone on their own device should come first.
  std::map<AccountId, std::string> shared_names(const PlanId& plan) const;

  // --- The owner's access log (engine_access_log.cpp). ---
  // A FetchLog request for the plan's fetch log from the start; handle() takes the AccessLog
  // pages and asks for the next one until the last (only the owner may read it: others get
  // FORBIDDEN, reported as a kProblem event).
  kith::v1::ClientMessage fetch_access_log(const PlanId& plan);
  // In time order: who read which section up to where (from the server's fetch log as last
  // fetched), who changed what (from the signed ops this device holds and can open: the
  // author's clock) and who changed the circle (from the membership log).
  std::vector<AccessEvent> access_log(const PlanId& plan) const;

  // --- Joining with an invite code (engine_circle.cpp). ---
  // The RedeemInvite to send (on an authenticated connection). handle() takes the answers: it
  // checks the plan's log (every entry, and that the invitation in it is the one the code stands
  // for, unused and unexpired), opens the keys sealed to the code, then follows the plan as
  // `title`, writes the join entry and returns its push followed by a Subscribe. A failure is a
  // kProblem event for the code's plan (kInviteUnknown, kInviteUsed, kInviteExpired,
  // kInviteMismatch, kMembershipInvalid) and nothing is kept.
  kith::v1::ClientMessage redeem(const InviteCode& code, std::string_view title);

  // --- Reading. Throw kMalformed for a plan this device does not hold. ---
  std::vector<std::pair<PlanId, std::string>> plans() const;
  const PlanState& state(const PlanId& plan) const;
  const MembershipLog& membership(const PlanId& plan) const;
  std::size_t outbox_size(const PlanId& plan) const;
  std::uint64_t cursor(const PlanId& plan) const;

  // --- The conversation with the server. ---
  // Subscribe, with the cursor and the count of membership entries the server is known to hold
  // as they are here. For a plan of which the server may hold nothing (one created here), the
  // queued membership entries go before it: the plan exists on the server only once its first
  // entry is stored. Otherwise queued entries, envelopes and ops follow when the server says
  // catch-up is complete (handle() returns them then), so that they go on top of what the
  // catch-up brought: an entry that lost its place in the log is made again first, and ops
  // sealed under a key rotated meanwhile are re-sealed. Answers to pushes made before this call
  // are no longer awaited.
  std::vector<kith::v1::ClientMessage> subscribe(const PlanId& plan);
  // Queued membership entries, then envelopes and (with_ops) ops of a plan once the server has
  // every entry of this device, split to fit the wire limits; what waits for an entry follows
  // its acknowledgement (handle() returns it). Call after local edits on a live connection.
  std::vector<kith::v1::ClientMessage> pushes(const PlanId& plan, bool with_ops = true);
  // Applies one message from the server; returns what to send in reply (possibly nothing).
  std::vector<kith::v1::ClientMessage> handle(const kith::v1::ServerMessage& message);

 private:
  struct Plan;
  Plan& plan_ref(const PlanId& plan) const;
  void load(const PlanId& plan, std::string title);
  const crypto::SectionKey* key_for(Plan& p, const Section& section, std::uint64_t epoch);
  void author(Plan& p, const Section& section, std::vector<Mutation> mutations);
  void apply_op(Plan& p, const AcceptedOp& op, std::vector<SyncEvent>& events);
  void handle_ops(const kith::v1::OpsBatch& batch);
  void reseal_outbox(Plan& p);
  void rebuild_state(Plan& p);
  void save_state(Plan& p);
  void push_ops(Plan& p, std::vector<kith::v1::ClientMessage>& out);
  // engine_membership.cpp
  void append_entry(Plan& p, MembershipEntry& entry);
  // A key rotation of `section` by this device: entry, new key, envelopes for its readers. Joins
  // the caller's transaction; the caller restores `p.log` if it throws.
  void append_rotation(Plan& p, const Section& section);
  std::vector<Cutoff> rotation_cutoffs(const Plan& p, const MembershipLog& log,
                                       const Section& section) const;
  void wrap_for(Plan& p, const Section& section, std::uint64_t epoch,
                const crypto::DeviceCertificate& device);
  void wrap_for_readers(Plan& p, const Section& section, std::uint64_t epoch);
  // Every key this device holds of the sections it manages that `device`'s account may read.
  void wrap_for_device(Plan& p, const crypto::DeviceCertificate& device);
  void push_entries(Plan& p, std::vector<kith::v1::ClientMessage>& out, bool remake);
  void push_envelopes(Plan& p, std::vector<kith::v1::ClientMessage>& out);
  // engine_recovery.cpp: seals each key of a section this account may read, once, to the
  // account's recovery box; and takes such keys back (a device restored from the recovery key).
  void seal_for_recovery(Plan& p);
  void accept_recovery_envelope(Plan& p, const crypto::Envelope& envelope);
  void handle_membership(const kith::v1::MembershipBatch& batch);
  void remake_entries(Plan& p, std::uint64_t from, const std::vector<MembershipEntry>& theirs);
  void handle_envelopes(const kith::v1::EnvelopeBatch& batch);
  std::vector<kith::v1::ClientMessage> handle_ack(const kith::v1::PushAck& ack,
                                                  std::uint64_t request_id);
  void handle_error(const kith::v1::ServerMessage& message);
  // engine_circle.cpp
  struct PendingJoin;
  std::vector<kith::v1::ClientMessage> handle_join(PendingJoin& join,
                                                   const kith::v1::ServerMessage& message,
                                                   bool& done);
  std::vector<kith::v1::ClientMessage> complete_join(PendingJoin& join,
                                                     const kith::v1::InviteRedeemed& redeemed);
  // Wraps, for a member who joined with an invitation made before them, the keys of the
  // rotations this device wrote since that invitation (the invitation's envelopes predate them).
  void wrap_for_newcomer(Plan& p, const MembershipEntry& joined);
  std::vector<Cutoff> all_cutoffs(const Plan& p, const std::set<Section>& sections) const;
  // engine_names.cpp
  // `grants` with `names: append` added (lasting as long as the longest other grant) when this
  // account manages `names`, so the invitee can share their name and read the others'.
  std::vector<GrantSpec> with_names_grant(const Plan& p, std::vector<GrantSpec> grants) const;
  void share_name_if_unshared(Plan& p);
  // After a change to a member's other grants, when this account manages `names`: their
  // `names: append` (as an invitation gave it) is set to last as long as their longest grant
  // again, and a names grant of someone left with no other access is revoked. Returns the
  // sections that revocation rotated.
  std::vector<Section> keep_names_grant_in_step(Plan& p, const AccountId& member);
  // engine_access_log.cpp
  std::vector<kith::v1::ClientMessage> handle_access_log(const kith::v1::AccessLog& page);
  // engine_checksums.cpp
  void save_digests(Plan& p);
  void refold_digests(Plan& p);
  std::set<Section> readable_sections(const Plan& p) const;
  std::vector<kith::v1::ClientMessage> check_checksums(Plan& p,
                                                       const kith::v1::CatchUpComplete& done);
  void emit(const SyncEvent& e) const {
    if (sink_) sink_(e);
  }
  void problem(const PlanId& plan, SyncErrorCode code, const std::string& message) const;

  LocalStore& store_;
  DeviceIdentity me_;
  // The account's recovery box (docs/PROTOCOL.md, "Recovery envelopes") and the identity key's
  // proof that it is this account's, sent with every Subscribe and push of recovery envelopes.
  crypto::BoxSecretKey recovery_box_;
  crypto::Signature recovery_proof_;
  std::function<std::uint64_t()> now_ms_;
  std::string shared_name_;  // share_name_as
  std::function<void(const SyncEvent&)> sink_;
  std::map<PlanId, std::unique_ptr<Plan>> plans_;
  std::map<std::uint64_t, std::unique_ptr<PendingJoin>> joins_;  // by RedeemInvite request id
  std::uint64_t next_request_ = 1;
};

}  // namespace kith::sync
