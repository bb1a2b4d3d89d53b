// A hash table keyed by ids, for the tables that hold an entry per op or per record.
//
// Open addressing: one array of entries probed linearly from the slot the id's hash picks, and
// beside it the hashes (0 marks a free slot). std::unordered_map, which it replaces there,
// allocates a node per entry and reaches an entry through the node before it in its list, so
// once a table outgrows the cache a look-up cost three or four cache misses (the bucket, the
// previous node, the node's cached hash, its key); here it costs about two (the hash, the
// entry). Hashes are keyed_id_hash (SipHash under a per-process key), as before, so ids chosen
// by clients cannot be made to collide. An entry's home slot is the top bits of its hash, so
// entries lie in hash order and growing the table rewrites it front to back instead of in
// random order.
//
// Entries live in the array: inserting may move every entry, and erasing may move others, so
// a pointer from find() or try_emplace() is good only until the next insert or erase. A free
// slot holds a default-constructed T, so T must be default-constructible and movable. Not
// thread-safe; copyable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <utility>
#include <vector>

#include "kith/sync/ids.hpp"

namespace kith::sync {

template <class Id, class T>
class IdMap {
 public:
  using value_type = std::pair<Id, T>;

  class const_iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = IdMap::value_type;
    using difference_type = std::ptrdiff_t;
    using pointer = const value_type*;
    using reference = const value_type&;

    const_iterator() = default;
    reference operator*() const { return map_->slots_[i_]; }
    pointer operator->() const { return &map_->slots_[i_]; }
    const_iterator& operator++() {
      ++i_;
      skip_free();
      return *this;
    }
    const_iterator operator++(int) {
      const_iterator old = *this;
      ++*this;
      return old;
    }
    friend bool operator==(const const_iterator& a, const const_iterator& b) noexcept {
      return a.i_ == b.i_;
    }

   private:
    friend class IdMap;
    const_iterator(const IdMap* map, std::size_t i) : map_(map), i_(i) { skip_free(); }
    void skip_free() {
      while (i_ < map_->hashes_.size() && map_->hashes_[i_] == 0) ++i_;
    }
    const IdMap* map_ = nullptr;
    std::size_t i_ = 0;
  };

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  // In slot order, which is no particular order.
  const_iterator begin() const { return {this, 0}; }
  const_iterator end() const { return {this, hashes_.size()}; }

  // The entry for `id`, or nullptr.
  const T* find(const Id& id) const {
    if (size_ == 0) return nullptr;
    auto [i, found] = probe(id, hash_of(id));
    return found ? &slots_[i].second : nullptr;
  }
  T* find(const Id& id) { return const_cast<T*>(std::as_const(*this).find(id)); }

  // The entry for `id`, made from `args` if there was none; and whether it was made.
  template <class... Args>
  std::pair<T*, bool> try_emplace(const Id& id, Args&&... args) {
    const std::uint64_t h = hash_of(id);
    if (size_ != 0) {
      if (auto [i, found] = probe(id, h); found) return {&slots_[i].second, false};
    }
    if (too_full(size_ + 1)) grow(size_ + 1);
    const std::size_t i = probe(id, h).first;
    hashes_[i] = h;
    slots_[i].first = id;
    slots_[i].second = T(std::forward<Args>(args)...);
    ++size_;
    return {&slots_[i].second, true};
  }
  T& operator[](const Id& id) { return *try_emplace(id).first; }

  // Whether there was an entry for `id`.
  bool erase(const Id& id) {
    if (size_ == 0) return false;
    auto [i, found] = probe(id, hash_of(id));
    if (!found) return false;
    // Backward-shift deletion: move later entries of the same run into the gap, so that no
    // probe stops early at it, then free the slot left at the end of the run.
    const std::size_t mask = hashes_.size() - 1;
    for (std::size_t j = (i + 1) & mask; hashes_[j] != 0; j = (j + 1) & mask) {
      const std::size_t home = home_of(hashes_[j]);
      // The entry at j may fill the gap at i unless its home lies cyclically in (i, j].
      const bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (stays) continue;
      hashes_[i] = hashes_[j];
      slots_[i] = std::move(slots_[j]);
      i = j;
    }
    hashes_[i] = 0;
    slots_[i] = value_type{};
    --size_;
    return true;
  }

  // Room for `n` entries without growing.
  void reserve(std::size_t n) {
    if (too_full(n)) grow(n);
  }

 private:
  // At most 7/8 full. Linear probing makes long runs at that load, but a probe reads the array
  // of hashes, eight to a cache line, and an entry only when its hash matches; a larger
  // array would cost more to fill each time the table grows.
  bool too_full(std::size_t n) const noexcept { return 8 * n > 7 * hashes_.size(); }

  // Never 0, which marks a free slot (the home slot comes from the top bits).
  static std::uint64_t hash_of(const Id& id) noexcept { return keyed_id_hash(id.bytes()) | 1; }
  std::size_t home_of(std::uint64_t h) const noexcept {
    return static_cast<std::size_t>(h >> shift_);
  }

  // The slot holding `id`, or the free slot where it would go. The table has a free slot.
  std::pair<std::size_t, bool> probe(const Id& id, std::uint64_t h) const {
    const std::size_t mask = hashes_.size() - 1;
    for (std::size_t i = home_of(h);; i = (i + 1) & mask) {
      if (hashes_[i] == 0) return {i, false};
      if (hashes_[i] == h && slots_[i].first == id) return {i, true};
    }
  }

  void grow(std::size_t n) {
    std::size_t capacity = 16;
    shift_ = 64 - 4;
    while (8 * n > 7 * capacity) {
      capacity *= 2;
      --shift_;
    }
    std::vector<std::uint64_t> old_hashes(capacity, 0);
    std::vector<value_type> old_slots(capacity);
    old_hashes.swap(hashes_);
    old_slots.swap(slots_);
    const std::size_t mask = capacity - 1;
    for (std::size_t k = 0; k < old_hashes.size(); ++k) {
      if (old_hashes[k] == 0) continue;
      std::size_t i = home_of(old_hashes[k]);
      while (hashes_[i] != 0) i = (i + 1) & mask;
      hashes_[i] = old_hashes[k];
      slots_[i] = std::move(old_slots[k]);
    }
  }

  std::vector<std::uint64_t> hashes_;  // 0: free; size a power of two, or 0
  std::vector<value_type> slots_;      // same size
  std::size_t size_ = 0;
  int shift_ = 64;  // 64 - log2(capacity)
};

}  // namespace kith::sync
