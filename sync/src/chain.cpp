#include "kith/sync/chain.hpp"

#include <algorithm>
#include <iterator>

#include "kith/crypto/error.hpp"

namespace kith::sync {

namespace {
constexpr std::uint8_t kHeadVersion = 1;

std::string where(const ChainKey& key, std::uint64_t seq) {
  return "device " + key.author.short_hex() + "'s op " + std::to_string(seq) + " in " +
         key.section.name();
}
}  // namespace

Bytes ChainHead::serialize() const {
  crypto::ByteWriter w(128);
  w.u8(kHeadVersion)
      .raw(plan.bytes())
      .u8(static_cast<std::uint8_t>(section.name().size()))
      .raw(section.name())
      .raw(author.bytes())
      .u64(seq)
      .raw(hash);
  return std::move(w).take();
}

ChainHead ChainHead::parse(ByteView bytes) {
  crypto::ByteReader r(bytes, "chain head");
  try {
    ChainHead h;
    if (r.u8() != kHeadVersion) {
      throw SyncError(SyncErrorCode::kMalformed, "chain head version is not supported");
    }
    h.plan = PlanId::from_bytes(r.raw(PlanId::kSize));
    ByteView name = r.raw(r.u8());
    h.section =
        Section::parse(std::string_view(reinterpret_cast<const char*>(name.data()), name.size()));
    h.author = DeviceId::from_bytes(r.raw(DeviceId::kSize));
    h.seq = r.u64();
    ByteView hash = r.raw(h.hash.size());
    std::copy(hash.begin(), hash.end(), h.hash.begin());
    r.expect_end();
    if (h.seq == 0) throw SyncError(SyncErrorCode::kMalformed, "chain head has sequence 0");
    return h;
  } catch (const crypto::KeyFormatError& e) {
    throw SyncError(SyncErrorCode::kMalformed, e.what());
  }
}

SignedHead SignedHead::sign(const ChainHead& head, const crypto::SigningKey& device) {
  SignedHead s;
  s.head = head.serialize();
  s.signature = device.sign(crypto::labels::kOpBatchHead, s.head);
  return s;
}

std::optional<ChainHead> SignedHead::verify() const {
  try {
    ChainHead h = ChainHead::parse(head);
    auto key = crypto::VerifyKey::parse(h.author.bytes());
    if (!key.verify(crypto::labels::kOpBatchHead, head, signature)) return std::nullopt;
    return h;
  } catch (const SyncError&) {
    return std::nullopt;
  }
}

ChainWriter::ChainWriter(PlanId plan, const crypto::SigningKey& device)
    : plan_(plan), device_(&device) {}

void ChainWriter::stamp(OpHeader& header) const {
  header.author = DeviceId::from_bytes(device_->public_key().bytes());
  auto it = tips_.find(header.section);
  header.author_seq = it == tips_.end() ? 1 : it->second.seq + 1;
  header.prev = it == tips_.end() ? OpHash{} : it->second.hash;
}

void ChainWriter::append(const OpHeader& header, const Op& op) {
  tips_[header.section] = Tip{header.author_seq, op.hash()};
}

void ChainWriter::restore(const Section& section, std::uint64_t seq, const OpHash& hash) {
  tips_[section] = Tip{seq, hash};
}

std::uint64_t ChainWriter::tip_seq(const Section& section) const {
  auto it = tips_.find(section);
  return it == tips_.end() ? 0 : it->second.seq;
}

std::optional<SignedHead> ChainWriter::head(const Section& section) const {
  auto it = tips_.find(section);
  if (it == tips_.end()) return std::nullopt;
  ChainHead h{plan_, section, DeviceId::from_bytes(device_->public_key().bytes()), it->second.seq,
              it->second.hash};
  return SignedHead::sign(h, *device_);
}

void ChainVerifier::restore(const OpHeader& header, const OpHash& hash) {
  Chain& c = chains_[ChainKey{header.author, header.section}];
  if (header.author_seq == c.accepted.size() + 1) c.accepted.push_back(hash);
  op_ids_[header.op_id] = hash;
}

void ChainVerifier::forget_last(const OpHeader& header) {
  auto it = chains_.find(ChainKey{header.author, header.section});
  if (it == chains_.end() || it->second.accepted.size() != header.author_seq) return;
  it->second.accepted.pop_back();
  op_ids_.erase(header.op_id);
}

std::uint64_t ChainVerifier::accepted_seq(const ChainKey& chain) const {
  auto it = chains_.find(chain);
  return it == chains_.end() ? 0 : it->second.accepted.size();
}

bool ChainVerifier::holds(const ChainKey& chain, std::uint64_t seq, const OpHash& hash) const {
  auto it = chains_.find(chain);
  return it != chains_.end() && seq >= 1 && seq <= it->second.accepted.size() &&
         it->second.accepted[seq - 1] == hash;
}

std::size_t ChainVerifier::pending_ops() const {
  std::size_t n = 0;
  for (const auto& [key, chain] : chains_) n += chain.pending.size();
  return n;
}

std::set<OpId> ChainVerifier::pending_op_ids() const {
  std::set<OpId> out;
  for (const auto& [key, chain] : chains_) {
    for (const auto& [seq, op] : chain.pending) out.insert(op.header.op_id);
  }
  return out;
}

ParsedOp ParsedOp::parse(Op op) {
  OpHeader header = OpHeader::parse(op.header);
  OpHash hash = op.hash();
  return ParsedOp{std::move(header), std::move(op), hash};
}

ChainOutcome ChainVerifier::add(std::vector<Op> ops, const std::vector<SignedHead>& heads) {
  std::vector<ParsedOp> parsed;
  parsed.reserve(ops.size());
  std::vector<ChainProblem> malformed;
  for (Op& op : ops) {
    try {
      parsed.push_back(ParsedOp::parse(std::move(op)));
    } catch (const SyncError& e) {
      malformed.push_back({SyncErrorCode::kMalformed, {}, 0, e.what()});
    }
  }
  ChainOutcome out = add_parsed(std::move(parsed), heads);
  out.problems.insert(out.problems.begin(), std::make_move_iterator(malformed.begin()),
                      std::make_move_iterator(malformed.end()));
  return out;
}

ChainOutcome ChainVerifier::add_parsed(std::vector<ParsedOp> ops,
                                       const std::vector<SignedHead>& heads) {
  ChainOutcome out;
  out.accepted.reserve(ops.size());
  op_ids_.reserve(op_ids_.size() + ops.size());
  std::set<ChainKey> touched;
  Chain* last_chain = nullptr;  // stays valid: std::map nodes do not move
  const ChainKey* last_key = nullptr;

  for (ParsedOp& op : ops) {
    const OpHeader& header = op.header;
    if (header.plan != plan_) {
      ChainKey key{header.author, header.section};
      out.problems.push_back({SyncErrorCode::kMalformed, key, header.author_seq,
                              where(key, header.author_seq) + " belongs to another plan"});
      continue;
    }
    // One look-up for the id: a new id goes in now and comes out again if the op is refused.
    auto [seen, new_id] = op_ids_.try_emplace(header.op_id, op.hash);
    if (!new_id) {
      if (*seen == op.hash) {
        ++out.duplicates;
      } else {
        ChainKey key{header.author, header.section};
        out.problems.push_back({SyncErrorCode::kChainReplay, key, header.author_seq,
                                where(key, header.author_seq) +
                                    " reuses the id of an earlier op with different content"});
      }
      continue;
    }
    // Ops of one chain usually come together: look the chain up only when it changes.
    if (!last_chain || last_key->author != header.author || last_key->section != header.section) {
      auto it = chains_.try_emplace(ChainKey{header.author, header.section}).first;
      last_chain = &it->second;
      last_key = &it->first;
      touched.insert(it->first);
    }
    Chain& chain = *last_chain;
    const std::uint64_t seq = header.author_seq;
    if (seq <= chain.accepted.size()) {
      // An op id we have not seen at a position already filled: a second history.
      op_ids_.erase(header.op_id);
      out.problems.push_back({SyncErrorCode::kChainFork, *last_key, seq,
                              where(*last_key, seq) +
                                  " differs from the one already accepted: the author's "
                                  "history was forked"});
      continue;
    }
    if (!add_pending(chain, seq, op)) {
      op_ids_.erase(header.op_id);
      out.problems.push_back({SyncErrorCode::kChainFork, *last_key, seq,
                              where(*last_key, seq) +
                                  " arrived in two different versions: the author's history "
                                  "was forked"});
    }
  }

  // Heads, highest first per chain: one valid head covers everything below it, so lower ones
  // need no signature check. A head at or below the accepted tip that agrees with it is old news
  // and needs none either; one that disagrees is checked before it is reported as a fork.
  std::vector<std::pair<ChainHead, const SignedHead*>> parsed;
  for (const SignedHead& signed_head : heads) {
    try {
      parsed.emplace_back(ChainHead::parse(signed_head.head), &signed_head);
    } catch (const SyncError&) {
      out.problems.push_back({SyncErrorCode::kBadSignature,
                              {},
                              0,
                              "a chain head does not parse; its ops were not accepted"});
    }
  }
  std::stable_sort(parsed.begin(), parsed.end(), [](const auto& a, const auto& b) {
    if (a.first.author != b.first.author) return a.first.author < b.first.author;
    if (a.first.section != b.first.section) return a.first.section < b.first.section;
    return a.first.seq > b.first.seq;
  });
  std::set<ChainKey> covered;  // chains whose highest new head in this batch verified
  for (const auto& [head, signed_head] : parsed) {
    ChainKey key{head.author, head.section};
    if (head.plan != plan_) {
      out.problems.push_back(
          {SyncErrorCode::kMalformed, key, head.seq, "a chain head belongs to another plan"});
      continue;
    }
    Chain& chain = chains_[key];
    bool old = head.seq <= chain.accepted.size();
    if (old && chain.accepted[head.seq - 1] == head.hash) continue;
    if (!old && (covered.count(key) || (chain.best_head && chain.best_head->seq >= head.seq))) {
      continue;
    }
    if (!signed_head->verify()) {
      out.problems.push_back({SyncErrorCode::kBadSignature, key, head.seq,
                              "a chain head's signature does not verify; its ops were not "
                              "accepted"});
      continue;
    }
    if (old) {
      out.problems.push_back({SyncErrorCode::kChainFork, key, head.seq,
                              where(key, head.seq) +
                                  " is signed with a hash that differs from the accepted op: "
                                  "the author's history was forked"});
      continue;
    }
    chain.best_head = head;
    covered.insert(key);
    touched.insert(key);
  }

  for (const ChainKey& key : touched) try_advance(chains_[key], key, out);
  return out;
}

bool ChainVerifier::add_pending(Chain& chain, std::uint64_t seq, ParsedOp& op) {
  // try_emplace leaves `op` alone when the position is taken.
  if (spare_nodes_.empty()) return chain.pending.try_emplace(seq, std::move(op)).second;
  Pending::node_type node = std::move(spare_nodes_.back());
  spare_nodes_.pop_back();
  node.key() = seq;
  node.mapped() = std::move(op);
  // Ops usually arrive in order: the end is the likely place. A node still full was refused.
  chain.pending.insert(chain.pending.end(), std::move(node));
  if (!node) return true;
  op = std::move(node.mapped());
  spare_nodes_.push_back(std::move(node));
  return false;
}

void ChainVerifier::try_advance(Chain& chain, const ChainKey& key, ChainOutcome& out) {
  if (!chain.best_head) return;
  const ChainHead head = *chain.best_head;
  const std::uint64_t from = chain.accepted.size() + 1;
  // Every op from the accepted tip to the head must be here and linked. One walk along the
  // pending map (in sequence order) rather than a look-up per sequence number: this runs for
  // every op received.
  const OpHash zero{};
  const OpHash* prev = from == 1 ? &zero : &chain.accepted.back();
  const auto first = chain.pending.find(from);
  auto it = first;
  for (std::uint64_t seq = from; seq <= head.seq; ++seq, ++it) {
    if (it == chain.pending.end() || it->first != seq) {
      out.problems.push_back({SyncErrorCode::kChainGap, key, seq,
                              where(key, seq) + " is missing (the signed head is at " +
                                  std::to_string(head.seq) + "); waiting for it"});
      return;
    }
    if (it->second.header.prev != *prev) {
      out.problems.push_back({SyncErrorCode::kChainFork, key, seq,
                              where(key, seq) + " does not link to the op before it"});
      op_ids_.erase(it->second.header.op_id);
      chain.pending.erase(it);
      return;
    }
    prev = &it->second.hash;
  }
  // The head's own op is the last one walked, `it` is one past it. (pending.at, which throws as
  // it always did, only for a head that restore() has carried the chain past.)
  const ParsedOp& tip = head.seq >= from ? std::prev(it)->second : chain.pending.at(head.seq);
  if (tip.hash != head.hash) {
    out.problems.push_back({SyncErrorCode::kChainFork, key, head.seq,
                            where(key, head.seq) + " does not match its signed head"});
    op_ids_.erase(tip.header.op_id);
    chain.pending.erase(head.seq);
    return;
  }
  for (auto op = first; op != it;) {
    Pending::node_type node = chain.pending.extract(op++);
    chain.accepted.push_back(node.mapped().hash);
    out.accepted.push_back(std::move(node.mapped()));
    if (spare_nodes_.size() < kSpareNodes) spare_nodes_.push_back(std::move(node));
  }
  chain.best_head.reset();
}

}  // namespace kith::sync
