// What kithd does with the sync protocol, independent of sockets: verifies pushes against each
// plan's membership log and chains, hands durable writes to the group committer, acknowledges
// after commit, fans new ops out to connected members, serves catch-up, and keeps the fetch log.
//
// Per plan, an in-memory view (the membership log, each author chain's tip, the section
// checksums, sequence numbers handed out and committed) is loaded from storage on first use and
// guarded by the plan's mutex. A push is verified and given its sequence numbers under that
// mutex and submitted to the committer before the mutex is released, so commits, acks and
// fan-out follow sequence order. Nothing is sent while a mutex is held: subscribers are copied
// out first (DESIGN.md §3; Beast chat-multi's shared_state).
//
// Thread-safety: every method may be called from any thread (sessions call from their strands);
// callbacks reach sessions through Peer::deliver, which must be thread-safe.
// Refusals are thrown as Refusal and change nothing; other exceptions are server faults.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "group_commit.hpp"
#include "kith/crypto/box.hpp"
#include "kith/v1/sync.pb.h"
#include "metrics.hpp"
#include "storage.hpp"

namespace kith::sync {
struct InviteInfo;
}  // namespace kith::sync

namespace kith::server {

// The authenticated device behind a connection.
struct Who {
  AccountId account;
  DeviceId device;
  Bytes box;  // the device's X25519 encryption key (32 bytes): envelopes are addressed to it
};

// A request refused with a protocol error code and a sentence for the person.
class Refusal : public std::runtime_error {
 public:
  Refusal(kith::v1::ErrorCode code, const std::string& message, std::string op_id = {})
      : std::runtime_error(message), code_(code), op_id_(std::move(op_id)) {}
  kith::v1::ErrorCode code() const noexcept { return code_; }
  const std::string& op_id() const noexcept { return op_id_; }

 private:
  kith::v1::ErrorCode code_;
  std::string op_id_;
};

// A ServerMessage serialized once, shared by every connection it is queued on (a live batch
// goes to every device whose view of the push is the same).
using Encoded = std::shared_ptr<const std::string>;
Encoded encode(const kith::v1::ServerMessage& message);

// A connected, authenticated device as the service sees it.
class Peer {
 public:
  virtual ~Peer() = default;
  // Queues an encoded message for the device. Thread-safe; never blocks.
  virtual void deliver_encoded(Encoded message) = 0;
  virtual const Who& who() const noexcept = 0;
  // Encodes `message` and queues it.
  void deliver(const kith::v1::ServerMessage& message) { deliver_encoded(encode(message)); }
};

class CatchUp;

struct ServiceOptions {
  std::size_t catch_up_batch_ops = 500;
  // Plans kept in memory with nobody subscribed and nothing in flight, before the least
  // needed are dropped (they are loaded again from storage on next use).
  std::size_t max_cached_plans = 10000;
  // The same by memory: what the op-id sets (op_id_set.hpp) of all cached plans may take
  // before the idle ones are dropped. A plan's set takes 16-32 bytes per op, so 10,000 cached
  // plans of 2,000 ops each would hold ~640 MB without it.
  std::size_t max_cached_op_id_bytes = std::size_t{256} << 20;
  std::function<std::uint64_t()> now_ms;  // the wall clock (grant expiry); injected for tests
};

class SyncService {
 public:
  SyncService(Storage& storage, GroupCommitter& committer, Metrics& metrics,
              ServiceOptions options);
  ~SyncService();
  SyncService(const SyncService&) = delete;
  SyncService& operator=(const SyncService&) = delete;

  // Verify and store; the PushAck (or an Error for a storage failure) reaches `peer` through
  // deliver() once the writes are durable. Throws Refusal.
  void push_ops(const std::shared_ptr<Peer>& peer, std::uint64_t request_id,
                const kith::v1::PushOps& push);
  void push_membership(const std::shared_ptr<Peer>& peer, std::uint64_t request_id,
                       const kith::v1::PushMembership& push);
  void push_envelopes(const std::shared_ptr<Peer>& peer, std::uint64_t request_id,
                      const kith::v1::PushEnvelopes& push);

  // Starts a catch-up; pull its messages with CatchUp::next() at the pace the connection sends
  // them. Throws Refusal.
  std::unique_ptr<CatchUp> subscribe(const std::shared_ptr<Peer>& peer, std::uint64_t request_id,
                                     const kith::v1::Subscribe& subscribe);
  void unsubscribe(const Peer& peer, const PlanId& plan);
  // Forgets every subscription of `peer` (the connection closed).
  void disconnected(const Peer& peer);

  // What an invitation holds, for a device that proves it has the code: the membership log,
  // the envelopes sealed to the invite, then InviteRedeemed. Stores nothing. Throws Refusal.
  std::vector<kith::v1::ServerMessage> redeem_invite(const Peer& peer, std::uint64_t request_id,
                                                     const kith::v1::RedeemInvite& request);

  // The owner's view of the fetch log. Throws Refusal.
  kith::v1::ServerMessage fetch_log(const Peer& peer, std::uint64_t request_id,
                                    const kith::v1::FetchLog& request);

  // The plans the peer's account is a current member of, one page (plan discovery: a device
  // restored from the recovery key learns what to link). Reads the plan index, committed data
  // only. Throws StorageError.
  kith::v1::ServerMessage list_plans(const Peer& peer, std::uint64_t request_id,
                                     const kith::v1::ListPlans& request);

  // Records the device's certificate and last-seen time (not waited for).
  void device_seen(const Who& who, const Bytes& certificate);

  // How many plans are held in memory now.
  std::size_t cached_plans();

  struct Plan;  // sync_service_plan.hpp; internal

 private:
  friend class CatchUp;
  std::shared_ptr<Plan> plan(const PlanId& id);
  // With p.mu held: brings cached_id_bytes_ up to date with p's op-id set.
  void count_id_bytes(Plan& p);
  // With plans_mu_ held: drops the plans nobody uses (see plan()).
  void sweep_idle_plans();
  void ensure_loaded(Plan& p);
  using Deliveries = std::vector<std::pair<std::shared_ptr<Peer>, Encoded>>;
  // Who gets which part of a push's ops: subscribers grouped by the sections of it they may
  // read, so that each group's batch is built and serialized once.
  struct FanOut {
    struct View {
      std::vector<Section> sections;  // sorted
      std::vector<std::shared_ptr<Peer>> peers;
    };
    std::vector<View> views;
  };
  // A push's accepted ops as the live batch that carries all of them, built by push_ops on the
  // pushing connection's thread: the commit's callback, on the writer's thread (which every
  // commit waits for), then only hands its bytes to the subscribers that may read all of it.
  struct LiveOps {
    kith::v1::ServerMessage message;                  // an OpsBatch: every op and head of the push
    Encoded bytes;                                    // `message` serialized (null: not yet)
    std::vector<Section> op_sections;                 // of each op of `message`, in order
    std::vector<Section> head_sections;               // of each head of `message`, in order
    std::vector<Section> sections;                    // of its ops, sorted, without repeats
    std::vector<Section> all_sections;                // of its ops and heads, likewise
    std::vector<std::pair<OpId, std::uint64_t>> ids;  // each op's id and seq
  };
  // With p.mu held: the recipients of a push of ops in `sections` (sorted) up to `up_to_seq`
  // among the live subscribers (fetch log records are queued). Sent with send_ops() after the
  // mutex is released.
  FanOut fan_out_ops(const std::shared_ptr<Plan>& p, const DeviceId& from,
                     const std::vector<Section>& sections, std::uint64_t up_to_seq);
  // Queues each view's live batch for every peer of the view: `live.bytes` for a view that
  // reads all of it, otherwise the part it may read, built and serialized once per view.
  static void send_ops(LiveOps& live, const FanOut& fan_out);
  // With p->mu held: writes `record` to the fetch log with the plan's next group commit, merged
  // with the records of the same device, section and kind that wait for it.
  void log_fetch(const std::shared_ptr<Plan>& p, const FetchRecord& record);
  // With p.mu held: `message` for every live subscriber `want` accepts.
  Deliveries to_subscribers(Plan& p, const kith::v1::ServerMessage& message,
                            const std::function<bool(const Who&)>& want);
  static void send(Deliveries& out);
  // Throws Refusal (INVITE_UNKNOWN, INVITE_USED, INVITE_EXPIRED) unless `invite` may still be
  // accepted by the server's clock.
  void check_invite_open(const sync::InviteInfo* invite) const;
  // A commit holding a request failed (or was withdrawn, see still_valid): the plan reloads
  // what is durable on next use, and the requester (if still connected) gets INTERNAL saying
  // nothing of `what` was stored. `generation`: the plan's generation when it was submitted.
  void storage_failed(const std::shared_ptr<Plan>& p, const StorageError& error,
                      const std::weak_ptr<Peer>& requester, std::uint64_t request_id,
                      const char* what, std::uint64_t generation);
  // With p->mu held: whether a write of `p` submitted now is still good when the committer
  // reaches it. False once an earlier write of the plan has failed: the sequence numbers, chain
  // tips and entry indexes it was given assumed that write would be stored.
  static GroupCommitter::StillValid still_valid(const std::shared_ptr<Plan>& p);

  Storage& storage_;
  GroupCommitter& committer_;
  Metrics& metrics_;
  ServiceOptions options_;
  // plans_ holds one view per plan. Everyone else holds a view only through a shared_ptr copied
  // from here under plans_mu_, so a view whose use_count() is 1 under plans_mu_ is used by
  // nobody and cannot become used without plans_mu_: it may be dropped (a second view of the
  // same plan alive at once would hand out the same sequence numbers twice).
  std::mutex plans_mu_;
  std::unordered_map<PlanId, std::shared_ptr<Plan>, sync::IdHash> plans_;
  std::size_t next_sweep_at_;
  // The op-id set bytes of every plan in plans_ (Plan::counted_bytes), and the total at which
  // plan() sweeps next. Changed under the plan's mutex or plans_mu_, read under plans_mu_.
  std::atomic<std::size_t> cached_id_bytes_{0};
  std::size_t next_sweep_bytes_;
  // The plans each connected peer subscribed to, so a disconnect visits only those.
  std::unordered_map<const Peer*, std::vector<PlanId>> peer_plans_;
};

// One catch-up in progress (Subscribe). Used from one thread at a time (the session's strand).
class CatchUp {
 public:
  ~CatchUp();
  // The next message to send, or nullopt once CatchUpComplete has been returned; from then on
  // new ops, entries and envelopes reach the device live. Throws StorageError.
  std::optional<kith::v1::ServerMessage> next();

 private:
  friend class SyncService;
  struct State;
  explicit CatchUp(std::unique_ptr<State> state);
  std::unique_ptr<State> s_;
};

}  // namespace kith::server
