// The ids of the ops a plan holds, kept in memory beside the plan's view (sync_service_plan.hpp)
// so that the uniqueness check of a pushed op (a repeated op id is acknowledged again, never
// stored twice) reads storage only for an id it may already hold.
//
// Why: op ids are random, chosen by clients, so looking each new one up in the database's
// (plan, op_id) index reads a page in a random place per op, often one the cache does not
// hold. A new op is almost never a repeat; this set answers "not stored" for it from memory.
// The database stays the truth (op_ids, and ops above op_id_marks: sqlite_storage_schema.cpp),
// and is what a possible repeat is looked up in (for its sequence number: Storage::find_ops, one
// read transaction per push); after a restart the set is loaded from it with the plan.
//
// Each id is kept as a 64-bit keyed hash (sync::keyed_id_hash: SipHash under a per-process
// key, so a client cannot choose ids that collide). A collision costs one database look-up,
// never a wrong answer. Open addressing, at most half full: 16-32 bytes per op of each plan in
// memory. A plan with more ops than `max_ids` gives its set up (may_contain() is then always
// true: every op is looked up, as before the set existed), which bounds one plan's share at
// 32 MiB by default. Not thread-safe: used under the plan's mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kith/sync/ids.hpp"

namespace kith::server {

class OpIdSet {
 public:
  static constexpr std::size_t kDefaultMaxIds = std::size_t{1} << 21;

  explicit OpIdSet(std::size_t max_ids = kDefaultMaxIds) : max_ids_(max_ids) {}

  void insert(const sync::OpId& id) {
    if (gave_up_) return;
    if (size_ >= max_ids_) {
      gave_up_ = true;
      std::vector<std::uint64_t>().swap(slots_);
      size_ = 0;
      return;
    }
    if (2 * (size_ + 1) > slots_.size()) grow();
    if (place(fingerprint(id))) ++size_;
  }
  // False: no op with this id was inserted. True: one may have been.
  bool may_contain(const sync::OpId& id) const noexcept {
    if (gave_up_) return true;
    if (slots_.empty()) return false;
    const std::uint64_t f = fingerprint(id);
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = f & mask;; i = (i + 1) & mask) {
      if (slots_[i] == f) return true;
      if (slots_[i] == 0) return false;
    }
  }
  // Ids held; 0 once the set has given up.
  std::size_t size() const noexcept { return size_; }
  // The memory its table takes.
  std::size_t bytes() const noexcept { return slots_.capacity() * sizeof(std::uint64_t); }

 private:
  static std::uint64_t fingerprint(const sync::OpId& id) noexcept {
    const std::uint64_t f = sync::keyed_id_hash(id.bytes());
    return f == 0 ? 1 : f;  // 0 marks an empty slot
  }
  // False if `f` was there already.
  bool place(std::uint64_t f) noexcept {
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = f & mask;; i = (i + 1) & mask) {
      if (slots_[i] == f) return false;
      if (slots_[i] == 0) {
        slots_[i] = f;
        return true;
      }
    }
  }
  void grow() {
    std::vector<std::uint64_t> old(slots_.empty() ? 16 : 2 * slots_.size(), 0);
    old.swap(slots_);
    for (std::uint64_t f : old) {
      if (f != 0) place(f);
    }
  }

  std::size_t max_ids_;
  bool gave_up_ = false;              // more than max_ids_ were inserted
  std::vector<std::uint64_t> slots_;  // a power of two long, or empty
  std::size_t size_ = 0;
};

}  // namespace kith::server
