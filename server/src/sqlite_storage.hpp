// kithd's embedded database: the Storage interface (storage.hpp) over one SQLite file in WAL
// mode, created on first start (DESIGN.md §2.4).
//
// One write connection serves `commit()`; a small pool of read connections serves the reads, so
// catch-up and look-ups run while the group committer writes (WAL readers never wait for the
// writer and see only committed transactions). A read that needs several queries runs them in
// one read transaction, so it sees one snapshot.
//
// The file carries PRAGMA application_id "KTHD" and its schema version in PRAGMA user_version;
// opening applies the missing migration steps. Opening refuses, with a StorageError naming the
// file and saying what to do, a file that is not an SQLite database, one of another application
// (a Kith device's local store included), one written by a newer kithd, and a damaged one; it
// writes nothing to a file it refuses.
//
// Thread-safety: as Storage. Every method throws StorageError.
#pragma once

#include <array>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "sqlite_storage_checkpoint.hpp"
#include "sqlite_storage_schema.hpp"
#include "storage.hpp"

namespace kith::sync::sqlite {
class Database;
}

namespace kith::server {

class SqliteStorage final : public Storage {
 public:
  struct Options {
    // kFull: a commit is fsynced before it returns, so an ack survives a power cut. kNormal:
    // just as atomic and it survives a crash of kithd, but the last commits may roll back on a
    // power cut (for tests and benchmarks, or a host with a battery-backed disk cache).
    enum class Sync { kFull, kNormal };
    Sync synchronous = Sync::kFull;
    // How long a connection waits for a lock held by another process before failing.
    int busy_timeout_ms = 5000;
    // Reads that can run at once; at least one connection is always opened.
    std::size_t read_connections = 4;
    // The write connection's page cache. One group commit dirties a page of each table it
    // writes for each plan it touches, and a merge of op ids (below) most of a plan's op_ids:
    // SQLite's default 2 MiB spills them to the WAL in the middle of the transaction, and reads
    // them back.
    std::int64_t writer_cache_kib = 65536;
    // When the WAL is checkpointed (by a thread of its own, sqlite_storage_checkpoint.hpp).
    WalCheckpointer::Options checkpoint{};
    // How many op ids may wait unmerged (in ops above their plan's mark in op_id_marks, schema
    // version 6) before the writer merges them into op_ids. Once they reach it, the writer
    // merges, after each commit and in a transaction of its own, the plans with the most
    // unmerged ids, at least merge_op_ids_at / 8 ids a time, until half are left: each plan's ids
    // in one sorted pass. Larger: fewer pages of op_ids written per op, more memory (~100 bytes
    // an id, held by the writer), and longer merge steps (merging 2^17 ids at once took
    // 0.3-0.8 s here), which delay that commit's acks.
    std::size_t merge_op_ids_at = std::size_t{1} << 17;
  };

  // PRAGMA application_id of a kithd database: "KTHD" in ASCII.
  static constexpr std::int64_t kApplicationId = storage_schema::kApplicationId;
  // The schema version this kithd writes (the last migration step).
  static int newest_schema() noexcept;

  // Opens `file`, creating it (mode 0600) when missing, and migrates it to the newest schema.
  // Throws StorageError when the file cannot be used (see above).
  SqliteStorage(std::filesystem::path file, Options options);
  ~SqliteStorage() override;
  SqliteStorage(const SqliteStorage&) = delete;
  SqliteStorage& operator=(const SqliteStorage&) = delete;

  void commit(std::span<const WriteBatch> batches) override;

  std::optional<PlanSnapshot> load_plan(const PlanId& plan) override;
  std::optional<OpRef> find_op(const PlanId& plan, const OpId& op) override;
  std::vector<std::optional<OpRef>> find_ops(const PlanId& plan,
                                             std::span<const OpId> ops) override;
  std::vector<StoredOp> ops_after(const PlanId& plan, std::uint64_t after, std::uint64_t up_to,
                                  const std::vector<Section>& sections, std::size_t limit) override;
  std::optional<StoredHead> head_at_or_below(const PlanId& plan, const ChainKey& chain,
                                             std::uint64_t seq) override;
  std::map<Section, SectionChecksum> checksums_at(const PlanId& plan, std::uint64_t seq) override;
  std::vector<Bytes> membership_from(const PlanId& plan, std::uint64_t from,
                                     std::size_t limit) override;
  std::vector<StoredEnvelope> envelopes_for(const PlanId& plan, const Bytes& recipient) override;
  std::vector<FetchRecord> fetch_log(const PlanId& plan, std::uint64_t after,
                                     std::size_t limit) override;
  std::optional<DeviceRecord> find_device(const DeviceId& device) override;
  std::vector<AccountPlan> plans_of(const AccountId& account, const std::optional<PlanId>& after,
                                    std::size_t limit) override;

  const std::string& path() const noexcept { return path_; }
  // WAL checkpoints run so far by the checkpoint thread (for tests).
  std::uint64_t wal_checkpoints() const { return checkpointer_->checkpoints(); }
  // Op ids not yet merged into op_ids (for tests; the writer's count).
  std::size_t unmerged_op_ids() {
    std::lock_guard lock(write_mutex_);
    return unmerged_size_;
  }

 private:
  class Reader;  // a read connection borrowed from the pool

  // `buffered_wal`: through buffered_wal_vfs() (sqlite_wal_buffer.hpp); synchronous = FULL only.
  std::unique_ptr<sync::sqlite::Database> open_connection(bool buffered_wal = false) const;
  // Per-connection settings; they read the file, so they come after inspecting it.
  void configure(sync::sqlite::Database& db, bool writer) const;
  // Writes one batch; the (plan, op id) of each op it writes is added to unmerged_ and to `added`.
  void write_batch(sync::sqlite::Database& db, const WriteBatch& batch,
                   std::vector<std::pair<PlanId, OpId>>& added);
  // write_batch's ops (at least one).
  void write_ops(sync::sqlite::Database& db, const WriteBatch& batch,
                 std::vector<std::pair<PlanId, OpId>>& added);
  // One merge step (see Options::merge_op_ids_at), if one is due. Called by the writer with
  // write_mutex_ held, after a commit. Never throws: a step that fails is tried again.
  void merge_op_ids() noexcept;
  std::map<Section, SectionChecksum> checksums(sync::sqlite::Database& db, const PlanId& plan,
                                               std::uint64_t seq) const;

  std::string path_;
  Options options_;

  std::mutex write_mutex_;  // commit() is documented single-threaded; this makes it safe anyway
  std::unique_ptr<sync::sqlite::Database> writer_;
  // The unmerged op ids, as of the last commit (write_mutex_): with op_ids, what a commit checks
  // a new op id against. Loaded when the file is opened.
  std::unordered_map<PlanId, std::unordered_set<OpId, sync::IdHash>, sync::IdHash> unmerged_;
  std::size_t unmerged_size_ = 0;  // ids in unmerged_
  bool merging_ = false;           // merge steps go on until half of merge_op_ids_at is left

  std::mutex read_mutex_;
  std::condition_variable read_free_;
  std::vector<std::unique_ptr<sync::sqlite::Database>> idle_readers_;

  // Last: stopped before the connections close. Told of the WAL's size by the writer's hook.
  std::unique_ptr<WalCheckpointer> checkpointer_;
};

}  // namespace kith::server
