// SyncService's in-memory view of one plan. Private to sync_service*.cpp.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "kith/sync/membership.hpp"
#include "op_id_set.hpp"
#include "sync_service.hpp"

namespace kith::server {

// Protobuf `bytes` fields are std::string.
inline std::string as_string(crypto::ByteView b) { return std::string(b.begin(), b.end()); }
inline std::string as_string(const crypto::Hash& h) { return std::string(h.begin(), h.end()); }
inline crypto::ByteView view(const std::string& s) { return crypto::as_bytes(s); }

struct ChainTip {
  std::uint64_t seq = 0;
  sync::OpHash hash{};
  Bytes header;  // of the op at `seq`
};

struct SyncService::Plan {
  explicit Plan(const PlanId& plan_id) : id(plan_id) {}

  struct Subscriber {
    std::weak_ptr<Peer> peer;
    const Peer* key = nullptr;
    Who who;
    bool live = false;
  };

  std::mutex mu;
  PlanId id;
  bool loaded = false;
  // Bumped when a write of this view fails: writes submitted before are withdrawn. Written
  // under `mu`, read by the committer's thread without it.
  std::atomic<std::uint64_t> generation{0};
  std::optional<sync::MembershipLog> log;  // nullopt: no such plan (yet)
  std::vector<Bytes> entries;              // the log's entries, as pushed
  std::uint64_t committed_entries = 0;
  std::uint64_t assigned_seq = 0;   // last sequence number handed out
  std::uint64_t committed_seq = 0;  // last sequence number durable
  std::map<ChainKey, ChainTip> tips;
  std::map<Section, SectionChecksum> sections;            // at assigned_seq
  std::unordered_map<OpId, OpRef, sync::IdHash> pending;  // handed out, not yet durable
  OpIdSet stored_ops;             // every op id durable (committed_seq and before)
  std::size_t counted_bytes = 0;  // stored_ops.bytes() as last counted in cached_id_bytes_
  std::vector<Subscriber> subscribers;
  // Fetch-log records not yet handed to the committer, one per device, section and kind: a
  // later delivery of the same section to the same device only raises up_to_seq and at_ms.
  // `fetches_queued`: a deferred batch that will take them is in the committer's queue.
  std::map<std::tuple<DeviceId, Section, bool>, FetchRecord> unsent_fetches;
  bool fetches_queued = false;
};

// What an account may read now (expiry applied): every section for the owner.
std::vector<Section> readable_sections(const SyncService::Plan& p, const AccountId& account,
                                       std::uint64_t now_ms);

}  // namespace kith::server
