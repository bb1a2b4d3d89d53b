// What SyncEngine keeps per plan, shared by its two source files: engine.cpp (ops, the
// conversation with the server) and engine_membership.cpp (membership entries, section keys,
// envelopes). Private to kith_sync.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "kith/sync/engine.hpp"
#include "kith/sync/section_digest.hpp"

namespace kith::sync {

// A push of this device's membership entries or envelopes that the server has not answered.
struct SentPush {
  std::vector<std::pair<std::uint64_t, crypto::Hash>> entries;  // log index, entry hash
  std::vector<std::uint64_t> envelopes;                         // outgoing envelope ids
};

struct SyncEngine::Plan {
  Plan(PlanId id_, std::string title_, const crypto::SigningKey& device)
      : id(id_),
        title(std::move(title_)),
        log(id_),
        keys(id_),
        verifier(id_),
        writer(id_, device) {}
  PlanId id;
  std::string title;
  MembershipLog log;
  KeyRing keys;
  ChainVerifier verifier;
  ChainWriter writer;
  PlanState state;
  HlcClock clock;
  // How many leading entries of `log` the server is known to hold as they are here. Entries past
  // it are this device's own, not yet acknowledged: a Subscribe asks for the log from here, so a
  // different entry the server kept at one of those places comes back and is noticed.
  std::uint64_t server_membership = 0;
  std::map<OpId, std::uint64_t> pending;        // received ops waiting for a head: their server seq
  std::map<std::uint64_t, SentPush> sent;       // by request id
  std::set<std::uint64_t> envelopes_in_flight;  // outgoing envelope ids in an unanswered push
  std::optional<OpId> last_stored;              // the op most recently put in the store
  std::optional<OpId> saved_upto;               // last_stored when the state was last saved
  // The server refused a push of this device's entries (`refusal` says why): they are made
  // again on top of what the device then knows before the next push; an entry refused alone
  // that comes out the same is dropped. After a refused push of several, they go one at a time.
  bool remake_entries = false;
  bool refused_alone = false;
  bool push_singly = false;
  std::string refusal;
  // Keys of this device's key rotations that lost their epoch to another device's: they still
  // open the ops it queued under them, until those are sealed again. In memory only.
  std::map<std::pair<Section, std::uint64_t>, crypto::SectionKey> lost_keys;
  bool caught_up = false;  // CatchUpComplete arrived since the last Subscribe
  // The (section, epoch) keys sealed to the account's recovery box, as in the store; read from
  // it at the first push (engine_recovery.cpp).
  std::optional<std::set<std::pair<std::string, std::uint64_t>>> recovery_sealed;
  bool needs_reseal = false;
  bool needs_rebuild = false;  // an entry arrived that may refuse ops already merged here

  // Section checksums (engine_checksums.cpp). `digests` covers, per section, the ops this device
  // holds from the server with a server sequence up to `digest_seq`, in sequence order; it moves
  // with the cursor and is stored with it. `unfolded` holds the ops it holds with a later
  // sequence (past the cursor: behind an op that waits for its head, or this device's own,
  // acknowledged before the cursor reaches them) until the cursor passes them.
  std::map<Section, SectionDigest> digests;
  std::uint64_t digest_seq = 0;
  std::map<std::uint64_t, std::pair<Section, OpHash>> unfolded;  // by server seq
  std::set<Section> digests_changed;                             // not yet in the store
  // Sections this device may now read that it could not before, since the last catch-up: the
  // server never sent their ops from before the cursor, so their checksums differ until a full
  // re-fetch, which is then expected and not reported. In memory only.
  std::set<Section> newly_readable;
  // The server's fetch log as last fetched (fetch_access_log), in its order. In memory only.
  std::vector<kith::v1::AccessLogEntry> fetch_log;
  bool fetch_log_fresh = false;  // a FetchLog from the start is under way: the next page replaces
  bool refetching = false;        // a full re-fetch after a checksum mismatch is under way
  bool checksums_failed = false;  // still mismatched after one: reported, not retried

  // Notes an op this device holds from the server at `server_seq` (0: none yet), for the digests.
  void hold_for_digest(std::uint64_t server_seq, const Section& section, const OpHash& hash);
  // Adds the held ops up to `up_to` to the digests, in sequence order.
  void fold_digests(std::uint64_t up_to);
};

// A RedeemInvite sent, and what has come back for it so far (engine_circle.cpp).
struct SyncEngine::PendingJoin {
  InviteCode code;
  std::string title;
  std::vector<Bytes> entries;
  std::vector<Bytes> envelopes;
};

namespace engine_detail {

inline Bytes to_bytes(const std::string& s) {
  ByteView v = crypto::as_bytes(s);
  return Bytes(v.begin(), v.end());
}

inline std::string to_wire(ByteView b) { return std::string(b.begin(), b.end()); }

}  // namespace engine_detail
}  // namespace kith::sync
