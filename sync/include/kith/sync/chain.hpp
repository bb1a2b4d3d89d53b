// Per-author op chains and the signed heads that cover them.
//
// Each device numbers its ops per section (1, 2, 3, ...) and links each to the hash of the one
// before, so the server cannot drop, reorder or replay an author's ops unnoticed. Instead of
// signing every op, the author signs the head of its chain once per pushed batch; a reader
// accepts an op only once a signed head covers it, so checking a batch costs one signature and
// a hash per op. Layouts: docs/PROTOCOL.md, "Chains and heads".
//
// ChainWriter (the authoring side) and ChainVerifier (the reading side) are not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kith/crypto/sign.hpp"
#include "kith/sync/error.hpp"
#include "kith/sync/id_map.hpp"
#include "kith/sync/op.hpp"

namespace kith::sync {

struct ChainHead {
  PlanId plan;
  Section section = Section::parse("profile");
  DeviceId author;
  std::uint64_t seq = 0;
  OpHash hash{};

  // u8(1) || plan (16) || u8(len(section)) || section || author (32) || u64(seq) || hash (32)
  Bytes serialize() const;
  // Throws SyncError(kMalformed).
  static ChainHead parse(ByteView bytes);
};

struct SignedHead {
  Bytes head;                   // ChainHead::serialize()
  crypto::Signature signature;  // by the author device, label kith/v1/op-batch-head

  static SignedHead sign(const ChainHead& head, const crypto::SigningKey& device);
  // The head if it parses and its author's device key signed it; nullopt otherwise.
  std::optional<ChainHead> verify() const;
};

// One author's chain in one section, as a key.
struct ChainKey {
  DeviceId author;
  Section section = Section::parse("profile");
  friend auto operator<=>(const ChainKey&, const ChainKey&) = default;
};

// Numbers and links this device's ops, and signs heads. Restore it from the device's stored ops
// with `restore` so numbering continues after a restart.
class ChainWriter {
 public:
  ChainWriter(PlanId plan, const crypto::SigningKey& device);

  // Fills author, author_seq and prev of `header` for its section, and records the op's hash
  // once sealed via `append`.
  void stamp(OpHeader& header) const;
  void append(const OpHeader& header, const Op& op);
  void restore(const Section& section, std::uint64_t seq, const OpHash& hash);
  // A signed head over the latest op in `section`; nullopt if this device wrote none there.
  std::optional<SignedHead> head(const Section& section) const;
  // The sequence number of the latest op in `section` (0 if none).
  std::uint64_t tip_seq(const Section& section) const;

 private:
  struct Tip {
    std::uint64_t seq = 0;
    OpHash hash{};
  };
  PlanId plan_;
  const crypto::SigningKey* device_;
  std::map<Section, Tip> tips_;
};

struct ChainProblem {
  SyncErrorCode code;  // kChainGap, kChainFork, kChainReplay, kBadSignature, kMalformed
  ChainKey chain;
  std::uint64_t seq = 0;
  std::string message;
};

// An op with its header parsed and its hash computed: what the verifier works on, and what it
// hands back once a signed head covers the op.
struct ParsedOp {
  OpHeader header;
  Op op;
  OpHash hash{};

  // Parses the header and hashes the op, keeping its bytes. Throws SyncError(kMalformed /
  // kUnknownSection) for a header that does not parse.
  static ParsedOp parse(Op op);
};
// An op that a verified signed head covers.
using AcceptedOp = ParsedOp;

struct ChainOutcome {
  std::vector<AcceptedOp> accepted;  // newly covered by a signed head, in chain order
  std::vector<ChainProblem> problems;
  std::size_t duplicates = 0;  // ops already accepted or already waiting, ignored
};

// Verifies the chains of one plan. Ops wait until a verified head covers them; a head beyond
// the ops received so far waits for them (and is reported as a gap).
class ChainVerifier {
 public:
  explicit ChainVerifier(PlanId plan) : plan_(plan) {}

  // Takes the batch by value so that ops move into the pending set and on to the outcome.
  ChainOutcome add(std::vector<Op> ops, const std::vector<SignedHead>& heads);
  // The same for ops the caller has already parsed (ParsedOp::parse), so that a caller that
  // reads the headers itself does not parse and hash each op twice.
  ChainOutcome add_parsed(std::vector<ParsedOp> ops, const std::vector<SignedHead>& heads);
  // Marks an op as accepted without checks, e.g. when reloading ops this device verified before.
  void restore(const OpHeader& header, const OpHash& hash);
  // Forgets the last accepted op of its chain: this device re-seals its own unacknowledged ops
  // after a key rotation, so their hashes change. Does nothing unless `header` is that op.
  void forget_last(const OpHeader& header);

  // Highest accepted sequence number of a chain (0 if none).
  std::uint64_t accepted_seq(const ChainKey& chain) const;
  // Whether op `seq` of `chain` is accepted and hashes to `hash` (an op received again).
  bool holds(const ChainKey& chain, std::uint64_t seq, const OpHash& hash) const;
  std::size_t pending_ops() const;
  // The ids of the ops waiting for a head.
  std::set<OpId> pending_op_ids() const;

 private:
  using Pending = std::map<std::uint64_t, ParsedOp>;
  struct Chain {
    std::vector<OpHash> accepted;  // hash of op seq = index + 1
    Pending pending;
    std::optional<ChainHead> best_head;  // verified, not yet fully covered
  };
  // Puts `op` in the chain's pending map; false, with `op` left as it was, if its position is
  // taken.
  bool add_pending(Chain& chain, std::uint64_t seq, ParsedOp& op);
  void try_advance(Chain& chain, const ChainKey& key, ChainOutcome& out);

  PlanId plan_;
  std::map<ChainKey, Chain> chains_;
  IdMap<OpId, OpHash> op_ids_;  // every op id accepted or pending
  // Nodes of pending maps that their ops have left, to hold the next ops: every op waits in a
  // pending map, if only until its batch's head is checked, and allocating and freeing a node
  // for each cost ~260 instructions an op. At most kSpareNodes (~300 KB) are kept.
  static constexpr std::size_t kSpareNodes = 1024;
  std::vector<Pending::node_type> spare_nodes_;
};

}  // namespace kith::sync
