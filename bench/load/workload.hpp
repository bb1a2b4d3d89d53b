// What kithd_load sends, all of it made before anything is timed, so that the timed phase only
// writes bytes that already exist: device keys and certificates, each plan's membership log,
// and every push as an encoded kith.v1.ClientMessage.
//
// A plan's devices all belong to its owner's account: devices[0] creates the plan (entry 0,
// kPlanCreated) and adds the others (kDeviceAdded), so every device may read and write every
// section without envelopes or invites. Only devices[0] pushes; its ops form one chain in the
// `notes` section, each push carrying a signed head over its last op. Bodies are sealed under a
// random section key: kithd cannot read them either way (it checks headers, chains and heads).
//
// Thread-safety: make_plans and make_accounts use `threads` worker threads of their own; the
// results are plain values, read-only afterwards.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "kith/crypto/identity.hpp"
#include "kith/sync/ids.hpp"

namespace kith::bench {

// An encoded ClientMessage, shared between the fixture and the connection's write queue.
using Message = std::shared_ptr<const std::string>;

// Request ids on every connection (ClientMessage.request_id): the handshake takes 1 and 2.
inline constexpr std::uint64_t kHelloRequest = 1;
inline constexpr std::uint64_t kAuthenticateRequest = 2;
inline constexpr std::uint64_t kMembershipRequest = 3;
inline constexpr std::uint64_t kSubscribeRequest = 4;
inline constexpr std::uint64_t kFirstPushRequest = 16;  // push i has kFirstPushRequest + i

struct Device {
  crypto::DeviceSecrets secrets;
  crypto::DeviceCertificate certificate;
  std::string certificate_bytes;  // certificate.serialize(), as Hello carries it

  // A device of a new account.
  static Device generate();
  // Another device of the account whose identity key is `identity`.
  static Device generate_for(const crypto::SigningKey& identity);
};

struct WorkloadSpec {
  std::size_t plans = 64;
  std::size_t devices = 4;  // per plan: 1 pusher, devices - 1 receivers
  std::size_t pushes_per_plan = 1000;
  std::size_t ops_per_push = 1;
  std::size_t op_bytes = 300;  // sealed body size aimed at (at least ~120: the fixed part)
};

struct PlanFixture {
  sync::PlanId id;
  std::vector<Device> devices;
  Message membership;               // PushMembership from devices[0], kMembershipRequest
  Message subscribe;                // Subscribe at cursor 0 with the whole log, kSubscribeRequest
  std::vector<Message> pushes;      // PushOps from devices[0], kFirstPushRequest + i
  // The first op id of each push -> the push's index: a delivery is matched to its push by it.
  std::unordered_map<sync::OpId, std::uint32_t, sync::IdHash> push_of;
};

// What make_plans measured about the ops it made.
struct WorkloadStats {
  std::size_t header_bytes = 0;  // of one op
  std::size_t body_bytes = 0;    // sealed, of one op
  std::size_t push_bytes = 0;    // one encoded PushOps ClientMessage (the first)
  double seconds = 0;            // wall time to make everything
};

std::vector<PlanFixture> make_plans(const WorkloadSpec& spec, unsigned threads,
                                    WorkloadStats* stats = nullptr);

// `n` devices of `n` distinct accounts (the idle scenario: no per-account connection cap).
std::vector<Device> make_accounts(std::size_t n, unsigned threads);

// The op id in an op header: bytes 17..33 (u8 version, plan id (16), op id (16); docs/
// PROTOCOL.md "Ops"). Reads no further, so a receiver need not parse the whole header.
// Returns false if the header is too short.
bool op_id_of_header(const std::string& header, sync::OpId& out);

}  // namespace kith::bench
