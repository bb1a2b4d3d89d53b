#include "sqlite_storage.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <limits>
#include <string>
#include <unordered_map>
#include <utility>

#include "kith/sync/error.hpp"
#include "kith/sync/sqlite/database.hpp"
#include "kith/sync/sqlite/transaction.hpp"
#include "log.hpp"
#include "sqlite_storage_schema.hpp"
#include "sqlite_wal_buffer.hpp"

namespace kith::server {
namespace {

namespace sqlite = sync::sqlite;
using sqlite::Database;
using sqlite::ScopedStatement;
using sqlite::Statement;

// With `plan_id = ?1`: plan ?1's ops whose ids are not merged into op_ids yet, those above the
// plan's mark (all of them for a plan without one).
const std::string kAboveMark =
    "seq > coalesce((SELECT merged_seq FROM op_id_marks WHERE plan_id = ?1), 0)";

sqlite::Wording server_wording() {
  return {.name = "the server database",
          .kind = "a kithd database",
          .if_damaged = "stop kithd and restore the file from a backup",
          .host = "the server"};
}

// Runs `f`, turning the SyncErrors of the SQLite layer into the StorageError callers expect.
template <class F>
auto translated(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const StorageError&) {
    throw;
  } catch (const sync::SyncError& e) {
    throw StorageError(e.what());
  }
}

// SQLite integers are signed 64-bit; a value it could not give back unchanged is refused.
std::int64_t to_sql(std::uint64_t value, const char* what) {
  if (value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    throw StorageError("Commit refused: " + std::string(what) + " " + std::to_string(value) +
                       " is above 2^63 - 1, the largest value the server database holds");
  }
  return static_cast<std::int64_t>(value);
}

// For query bounds, where "everything above 2^63 - 1" and "everything" are the same.
std::int64_t clamp_to_sql(std::uint64_t value) {
  return static_cast<std::int64_t>(
      std::min<std::uint64_t>(value, std::numeric_limits<std::int64_t>::max()));
}

// Reads typed values out of a result row; a value that does not parse means the file was
// altered or damaged (the schema's CHECKs keep ours from writing one).
class Row {
 public:
  Row(const Statement& statement, const std::string& path) : s_(statement), path_(path) {}

  std::uint64_t u64(int column, const char* what) const {
    const std::int64_t value = s_.column_int(column);
    if (value < 0 || s_.is_null(column)) {
      storage_schema::damaged(path_, std::string("a stored ") + what + " is missing or negative");
    }
    return static_cast<std::uint64_t>(value);
  }
  template <class Id>
  Id id(int column, const char* what) const {
    try {
      return Id::from_bytes(s_.column_view(column));
    } catch (const sync::SyncError&) {
      storage_schema::damaged(path_, std::string("a stored ") + what + " has the wrong length");
    }
  }
  template <std::size_t N>
  std::array<std::uint8_t, N> fixed(int column, const char* what) const {
    const crypto::ByteView view = s_.column_view(column);
    if (view.size() != N) {
      storage_schema::damaged(path_, std::string("a stored ") + what + " has the wrong length");
    }
    std::array<std::uint8_t, N> out{};
    std::copy(view.begin(), view.end(), out.begin());
    return out;
  }
  Section section(int column) const {
    const std::string name = s_.column_text(column);
    try {
      return Section::parse(name);
    } catch (const sync::SyncError&) {
      storage_schema::damaged(path_, "a stored section name '" + name + "' is not valid");
    }
  }
  Bytes bytes(int column) const { return s_.column_bytes(column); }

 private:
  const Statement& s_;
  const std::string& path_;
};

// The columns ops_after reads, in the order op_from_row expects.
constexpr const char* kOpColumns =
    "seq, op_id, section, author, author_seq, epoch, hash, section_count, section_digest, "
    "header, body";

StoredOp op_from_row(const Row& row) {
  StoredOp op;
  op.seq = row.u64(0, "op sequence");
  op.op_id = row.id<OpId>(1, "op id");
  op.section = row.section(2);
  op.author = row.id<DeviceId>(3, "op author");
  op.author_seq = row.u64(4, "author sequence");
  op.epoch = row.u64(5, "op epoch");
  op.hash = row.fixed<crypto::kHashSize>(6, "op hash");
  op.section_count = row.u64(7, "section count");
  op.section_digest = row.fixed<crypto::kHashSize>(8, "section digest");
  op.header = row.bytes(9);
  op.body = row.bytes(10);
  return op;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

// Borrows a read connection for one call, waiting while all of them are in use.
class SqliteStorage::Reader {
 public:
  explicit Reader(SqliteStorage& storage) : storage_(storage) {
    std::unique_lock lock(storage.read_mutex_);
    storage.read_free_.wait(lock, [&] { return !storage.idle_readers_.empty(); });
    db_ = std::move(storage.idle_readers_.back());
    storage.idle_readers_.pop_back();
  }
  ~Reader() {
    {
      std::lock_guard lock(storage_.read_mutex_);
      storage_.idle_readers_.push_back(std::move(db_));
    }
    storage_.read_free_.notify_one();
  }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  Database& db() const noexcept { return *db_; }

 private:
  SqliteStorage& storage_;
  std::unique_ptr<Database> db_;
};

SqliteStorage::SqliteStorage(std::filesystem::path file, Options options)
    : path_(file.string()), options_(options) {
  translated([&] {
    sqlite::create_owner_only(file);
    // The writer's WAL frames go to the file in a few large writes (sqlite_wal_buffer.hpp),
    // which is safe only where every commit syncs the WAL.
    writer_ = open_connection(options_.synchronous == Options::Sync::kFull);
    // Until the file is known to be ours, closing must not checkpoint a WAL it may have into
    // it: a refused file is left exactly as it was.
    sqlite3_db_config(writer_->handle(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
    const int version = storage_schema::inspect(*writer_);
    configure(*writer_, true);
    {
      // WAL is persistent (it writes the file header): only now that the file is known to be ours.
      Statement mode(*writer_, "PRAGMA journal_mode = WAL");
      if (!mode.step() || mode.column_text(0) != "wal") {
        writer_->fail(SQLITE_CANTOPEN,
                      "switching to WAL mode (the file system may not support it)");
      }
    }
    storage_schema::migrate(*writer_, version);
    storage_schema::check(*writer_);
    {
      // The unmerged op ids: each marked plan's ops above its mark.
      ScopedStatement q = writer_->query(
          "SELECT m.plan_id, o.op_id FROM op_id_marks m "
          "JOIN ops o ON o.plan_id = m.plan_id AND o.seq > m.merged_seq");
      while (q->step()) {
        const Row row(*q, path_);
        if (unmerged_[row.id<PlanId>(0, "plan id")].insert(row.id<OpId>(1, "op id")).second) {
          ++unmerged_size_;
        }
      }
    }
    sqlite3_db_config(writer_->handle(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, nullptr);
    const std::size_t readers = std::max<std::size_t>(options_.read_connections, 1);
    for (std::size_t i = 0; i < readers; ++i) {
      idle_readers_.push_back(open_connection());
      configure(*idle_readers_.back(), false);
    }
    auto checkpoints = open_connection();
    checkpoints->exec(options_.synchronous == Options::Sync::kFull ? "PRAGMA synchronous = FULL"
                                                                   : "PRAGMA synchronous = NORMAL");
    checkpointer_ = std::make_unique<WalCheckpointer>(std::move(checkpoints), write_mutex_,
                                                      options_.checkpoint);
    // Replaces SQLite's own checkpoint at the end of a commit (wal_autocheckpoint).
    sqlite3_wal_hook(
        writer_->handle(),
        [](void* checkpointer, sqlite3*, const char*, int pages) {
          static_cast<WalCheckpointer*>(checkpointer)->committed(pages);
          return SQLITE_OK;
        },
        checkpointer_.get());
  });
}

SqliteStorage::~SqliteStorage() {
  if (writer_) sqlite3_wal_hook(writer_->handle(), nullptr, nullptr);
  checkpointer_.reset();
}

int SqliteStorage::newest_schema() noexcept { return storage_schema::newest(); }

std::unique_ptr<Database> SqliteStorage::open_connection(bool buffered_wal) const {
  // Nothing here reads the file: that is for inspect(), which tells a file that is not ours.
  auto db = std::make_unique<Database>(path_, server_wording(),
                                       buffered_wal ? buffered_wal_vfs() : nullptr);
  sqlite3_busy_timeout(db->handle(), options_.busy_timeout_ms);
  // A tampered file must not run SQL functions from its schema, nor a bug of ours write the
  // schema table directly.
  sqlite3_db_config(db->handle(), SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
  sqlite3_db_config(db->handle(), SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  return db;
}

void SqliteStorage::configure(Database& db, bool writer) const {
  db.exec("PRAGMA temp_store = MEMORY");
  if (writer) {
    // FULL: every commit fsyncs the WAL. journal_size_limit: a burst of writes does not leave a
    // large WAL file behind once it is checkpointed.
    db.exec(options_.synchronous == Options::Sync::kFull ? "PRAGMA synchronous = FULL"
                                                         : "PRAGMA synchronous = NORMAL");
    db.exec("PRAGMA journal_size_limit = 67108864");
    db.exec(("PRAGMA cache_size = -" +
             std::to_string(std::max<std::int64_t>(options_.writer_cache_kib, 1)))
                .c_str());
  } else {
    db.exec("PRAGMA query_only = ON");
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

void SqliteStorage::commit(std::span<const WriteBatch> batches) {
  translated([&] {
    if (checkpointer_) checkpointer_->hold_for_restart();
    std::lock_guard lock(write_mutex_);
    std::vector<std::pair<PlanId, OpId>> added;
    try {
      sqlite::Transaction transaction(*writer_);
      for (const WriteBatch& batch : batches) write_batch(*writer_, batch, added);
      transaction.commit();
    } catch (...) {
      // The Transaction's destructor has rolled back every batch: so do the ids it added.
      for (const auto& [plan, op] : added) {
        auto ids = unmerged_.find(plan);
        unmerged_size_ -= ids->second.erase(op);
        if (ids->second.empty()) unmerged_.erase(ids);
      }
      throw;
    }
    merge_op_ids();
  });
}

void SqliteStorage::merge_op_ids() noexcept {
  const std::size_t limit = std::max<std::size_t>(options_.merge_op_ids_at, 1);
  if (unmerged_size_ >= limit) merging_ = true;
  if (!merging_) return;
  // A plan's ids in (plan, op id) order: each page of op_ids that receives some is written once
  // per step however many it receives. Largest plans first, so that each step moves many ids
  // for few pages, and a step stops after limit / 8 ids, so that no commit waits for a merge of
  // everything. The ids and the raised mark commit together: a step that fails leaves the ids
  // above the old mark, still found there, and is tried again after the next commit. An id
  // already in op_ids is skipped: kithd never lowers a mark, but in a file whose mark row was
  // lost (a plan starts again from 0) the step would otherwise fail at every commit, and the
  // unmerged ids of every plan would pile up in memory.
  try {
    std::vector<std::pair<std::size_t, PlanId>> plans;
    plans.reserve(unmerged_.size());
    for (const auto& [plan, ids] : unmerged_) plans.emplace_back(ids.size(), plan);
    std::sort(plans.begin(), plans.end(),
              [](const auto& a, const auto& b) { return a.first > b.first; });
    std::vector<PlanId> merged;
    std::size_t ids = 0;
    {
      sqlite::Transaction transaction(*writer_);
      ScopedStatement move = writer_->query(
          "INSERT INTO op_ids (plan_id, op_id, seq) SELECT plan_id, op_id, seq FROM ops "
          "WHERE plan_id = ?1 AND " +
          kAboveMark + " ORDER BY op_id ON CONFLICT (plan_id, op_id) DO NOTHING");
      ScopedStatement mark = writer_->query(
          "INSERT INTO op_id_marks (plan_id, merged_seq) "
          "SELECT ?1, max(seq) FROM ops WHERE plan_id = ?1 "
          "ON CONFLICT (plan_id) DO UPDATE SET merged_seq = excluded.merged_seq");
      for (const auto& [count, plan] : plans) {
        if (ids >= std::max<std::size_t>(limit / 8, 1)) break;
        for (Statement* q : {&*move, &*mark}) {
          q->bind_borrowed(1, plan.bytes());
          q->run();
          q->reset();
        }
        merged.push_back(plan);
        ids += count;
      }
      transaction.commit();
    }
    for (const PlanId& plan : merged) unmerged_.erase(plan);
    unmerged_size_ -= ids;
    if (unmerged_size_ <= limit / 2) merging_ = false;
  } catch (const std::exception& e) {
    log::event("op_id_merge_failed", {{"error", e.what()}, {"unmerged_op_ids", unmerged_size_}});
  }
}

void SqliteStorage::write_ops(Database& db, const WriteBatch& batch,
                              std::vector<std::pair<PlanId, OpId>>& added) {
  const crypto::ByteView plan = batch.plan.bytes();
  // Prepared once for all the batch's ops, each reset after its op; what they bind is borrowed
  // from `batch`, which outlives them.
  ScopedStatement find_id = db.query("SELECT 1 FROM op_ids WHERE plan_id = ?1 AND op_id = ?2");
  ScopedStatement insert_op = db.query(
      "INSERT INTO ops (plan_id, seq, op_id, section, author, author_seq, epoch, hash, "
      "section_count, section_digest, header, body) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
  auto at = unmerged_.find(batch.plan);
  if (at == unmerged_.end()) {
    // The plan's first unmerged op since its last merge: it must have a mark, so that the writer
    // finds its unmerged ops when it opens the file again (a new plan's is 0). The plan enters
    // unmerged_ once the mark is written; a failed commit takes it out with its ids.
    ScopedStatement mark = db.query(
        "INSERT INTO op_id_marks (plan_id, merged_seq) VALUES (?1, 0) "
        "ON CONFLICT (plan_id) DO NOTHING");
    mark->bind_borrowed(1, plan);
    mark->run();
    at = unmerged_.try_emplace(batch.plan).first;
  }
  auto& unmerged = at->second;
  for (const StoredOp& op : batch.ops) {
    // The op id must be new to the plan: not among its unmerged ids (unmerged_, which also holds
    // what this transaction wrote so far), nor in op_ids.
    bool taken = !unmerged.insert(op.op_id).second;
    if (!taken) {
      ++unmerged_size_;
      added.emplace_back(batch.plan, op.op_id);
      find_id->bind_borrowed(1, plan);
      find_id->bind_borrowed(2, op.op_id.bytes());
      taken = find_id->step();
      find_id->reset();
    }
    if (taken) {
      // The caller accepted an op id its in-memory state says is free.
      throw StorageError("Commit refused: op " + op.op_id.hex() + " is already stored in plan " +
                         batch.plan.hex() + "; reload the plan");
    }
    insert_op->bind_borrowed(1, plan);
    insert_op->bind(2, to_sql(op.seq, "op sequence"));
    insert_op->bind_borrowed(3, op.op_id.bytes());
    insert_op->bind(4, std::string_view(op.section.name()));
    insert_op->bind_borrowed(5, op.author.bytes());
    insert_op->bind(6, to_sql(op.author_seq, "author sequence"));
    insert_op->bind(7, to_sql(op.epoch, "epoch"));
    insert_op->bind_borrowed(8, crypto::ByteView(op.hash));
    insert_op->bind(9, to_sql(op.section_count, "section count"));
    insert_op->bind_borrowed(10, crypto::ByteView(op.section_digest));
    insert_op->bind_borrowed(11, crypto::ByteView(op.header));
    insert_op->bind_borrowed(12, crypto::ByteView(op.body));
    try {
      insert_op->run();
    } catch (const sqlite::Error& e) {
      // The caller assigned a seq or accepted an op id its in-memory state says is free.
      if (e.result_code() == SQLITE_CONSTRAINT_PRIMARYKEY) {
        throw StorageError("Commit refused: sequence " + std::to_string(op.seq) + " of plan " +
                           batch.plan.hex() + " is already taken; reload the plan");
      }
      throw;
    }
    insert_op->reset();
  }
  // Each chain's last op in the batch becomes its tip (a push holds one author's ops, in chain
  // order; a few chains at most).
  std::vector<const StoredOp*> tips;
  for (const StoredOp& op : batch.ops) {
    auto same_chain = [&](const StoredOp* t) {
      return t->author == op.author && t->section == op.section;
    };
    if (auto it = std::find_if(tips.begin(), tips.end(), same_chain); it != tips.end()) {
      if (op.author_seq > (*it)->author_seq) *it = &op;
    } else {
      tips.push_back(&op);
    }
  }
  ScopedStatement tip = db.query(
      "INSERT INTO chain_tips (plan_id, author, section, author_seq, seq) "
      "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (plan_id, author, section) "
      "DO UPDATE SET author_seq = excluded.author_seq, seq = excluded.seq "
      "WHERE excluded.author_seq > chain_tips.author_seq");
  for (const StoredOp* op : tips) {
    tip->bind_borrowed(1, plan);
    tip->bind_borrowed(2, op->author.bytes());
    tip->bind(3, std::string_view(op->section.name()));
    tip->bind(4, to_sql(op->author_seq, "author sequence"));
    tip->bind(5, to_sql(op->seq, "op sequence"));
    tip->run();
    tip->reset();
  }
}

void SqliteStorage::write_batch(Database& db, const WriteBatch& batch,
                                std::vector<std::pair<PlanId, OpId>>& added) {
  const crypto::ByteView plan = batch.plan.bytes();
  if (!batch.ops.empty()) write_ops(db, batch, added);
  for (const StoredHead& head : batch.heads) {
    ScopedStatement q = db.query(
        "INSERT INTO heads (plan_id, author, section, seq, head, signature) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (plan_id, author, section, seq) "
        "DO UPDATE SET head = excluded.head, signature = excluded.signature");
    q->bind(1, plan);
    q->bind(2, head.author.bytes());
    q->bind(3, std::string_view(head.section.name()));
    q->bind(4, to_sql(head.seq, "head sequence"));
    q->bind(5, crypto::ByteView(head.head));
    q->bind(6, crypto::ByteView(head.signature));
    q->run();
  }
  for (const auto& [index, entry] : batch.membership) {
    const std::int64_t idx = to_sql(index, "membership index");
    {
      ScopedStatement q = db.query(
          "INSERT INTO membership (plan_id, idx, entry) VALUES (?1, ?2, ?3) "
          "ON CONFLICT (plan_id, idx) DO NOTHING");
      q->bind(1, plan);
      q->bind(2, idx);
      q->bind(3, crypto::ByteView(entry));
      q->run();
    }
    if (db.changes() != 0) continue;
    // Already stored: a retry of the same entry is fine; a different entry at that index means
    // two writers disagree on the plan's log.
    ScopedStatement q = db.query("SELECT entry FROM membership WHERE plan_id = ?1 AND idx = ?2");
    q->bind(1, plan);
    q->bind(2, idx);
    if (!q->step() || !std::ranges::equal(q->column_view(0), entry)) {
      throw StorageError("Commit refused: membership entry " + std::to_string(index) + " of plan " +
                         batch.plan.hex() +
                         " is already stored with different contents; reload the plan");
    }
  }
  for (const StoredEnvelope& envelope : batch.envelopes) {
    ScopedStatement q = db.query(
        "INSERT INTO envelopes (plan_id, recipient, section, epoch, envelope) "
        "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING");
    q->bind(1, plan);
    q->bind(2, crypto::ByteView(envelope.recipient));
    q->bind(3, std::string_view(envelope.section.name()));
    q->bind(4, to_sql(envelope.epoch, "envelope epoch"));
    q->bind(5, crypto::ByteView(envelope.envelope));
    q->run();
  }
  for (const FetchRecord& fetch : batch.fetches) {
    ScopedStatement q = db.query(
        "INSERT INTO fetch_log (plan_id, account, device, section, up_to_seq, at_ms, live) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    q->bind(1, plan);
    q->bind(2, fetch.account.bytes());
    q->bind(3, fetch.device.bytes());
    q->bind(4, std::string_view(fetch.section.name()));
    q->bind(5, to_sql(fetch.up_to_seq, "fetched sequence"));
    q->bind(6, to_sql(fetch.at_ms, "fetch time"));
    q->bind(7, std::int64_t{fetch.live ? 1 : 0});
    q->run();
  }
  for (const DeviceRecord& device : batch.devices) {
    ScopedStatement q = db.query(
        "INSERT INTO devices (device_id, account, certificate, last_seen_ms) "
        "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (device_id) "
        "DO UPDATE SET last_seen_ms = excluded.last_seen_ms");
    q->bind(1, device.device.bytes());
    q->bind(2, device.account.bytes());
    q->bind(3, crypto::ByteView(device.certificate));
    q->bind(4, to_sql(device.last_seen_ms, "last seen time"));
    q->run();
  }
  for (const AccountId& account : batch.plan_index_drop) {
    ScopedStatement q = db.query("DELETE FROM account_plans WHERE account = ?1 AND plan_id = ?2");
    q->bind(1, account.bytes());
    q->bind(2, plan);
    q->run();
  }
  for (const AccountPlan& row : batch.plan_index_put) {
    if (row.plan != batch.plan) {
      throw StorageError("Commit refused: a plan index row of plan " + row.plan.hex() +
                         " was written with plan " + batch.plan.hex());
    }
    ScopedStatement q = db.query(
        "INSERT INTO account_plans (account, plan_id, owner, owner_account, created_at_ms, "
        "expires_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (account, plan_id) "
        "DO UPDATE SET owner = excluded.owner, owner_account = excluded.owner_account, "
        "created_at_ms = excluded.created_at_ms, expires_at_ms = excluded.expires_at_ms");
    q->bind(1, row.account.bytes());
    q->bind(2, plan);
    q->bind(3, std::int64_t{row.owner ? 1 : 0});
    q->bind(4, row.owner_account.bytes());
    q->bind(5, storage_schema::index_time(row.created_at_ms));
    q->bind(6, storage_schema::index_time(row.expires_at_ms));
    q->run();
  }
}

// ---------------------------------------------------------------------------------------------
// Reading

std::optional<PlanSnapshot> SqliteStorage::load_plan(const PlanId& plan) {
  return translated([&]() -> std::optional<PlanSnapshot> {
    Reader reader(*this);
    Database& db = reader.db();
    sqlite::ReadTransaction snapshot(db);  // membership, ops and checksums as of one commit
    PlanSnapshot out;
    {
      ScopedStatement q = db.query("SELECT entry FROM membership WHERE plan_id = ?1 ORDER BY idx");
      q->bind(1, plan.bytes());
      while (q->step()) out.membership.push_back(q->column_bytes(0));
    }
    if (out.membership.empty()) return std::nullopt;
    {
      ScopedStatement q = db.query("SELECT max(seq) FROM ops WHERE plan_id = ?1");
      q->bind(1, plan.bytes());
      if (q->step() && !q->is_null(0)) out.last_seq = Row(*q, path_).u64(0, "op sequence");
    }
    {
      // The plan's range of chain_tips, and each tip op's hash and header by its (plan, seq).
      ScopedStatement q = db.query(
          "SELECT t.author, t.section, t.author_seq, o.hash, o.header FROM chain_tips AS t "
          "JOIN ops AS o ON o.plan_id = ?1 AND o.seq = t.seq WHERE t.plan_id = ?1");
      q->bind(1, plan.bytes());
      while (q->step()) {
        const Row row(*q, path_);
        const ChainKey key{row.id<DeviceId>(0, "op author"), row.section(1)};
        out.chain_tips[key] = {row.u64(2, "author sequence"),
                               row.fixed<crypto::kHashSize>(3, "op hash")};
        out.tip_headers[key] = row.bytes(4);
      }
    }
    out.sections = checksums(db, plan, out.last_seq);
    {
      // The plan's range of op_ids, and its ops above the mark (those not merged yet).
      ScopedStatement q = db.query(
          "SELECT op_id FROM op_ids WHERE plan_id = ?1 "
          "UNION ALL SELECT op_id FROM ops WHERE plan_id = ?1 AND " +
          kAboveMark);
      q->bind(1, plan.bytes());
      while (q->step()) out.op_ids.push_back(Row(*q, path_).id<OpId>(0, "op id"));
    }
    return out;
  });
}

std::optional<OpRef> SqliteStorage::find_op(const PlanId& plan, const OpId& op) {
  return find_ops(plan, {&op, 1}).front();
}

std::vector<std::optional<OpRef>> SqliteStorage::find_ops(const PlanId& plan,
                                                          std::span<const OpId> ops) {
  return translated([&] {
    std::vector<std::optional<OpRef>> out(ops.size());
    if (ops.empty()) return out;
    Reader reader(*this);
    Database& db = reader.db();
    sqlite::ReadTransaction snapshot(db);  // an id the writer merges meanwhile is seen once
    std::vector<std::optional<std::uint64_t>> seqs(ops.size());
    std::unordered_map<OpId, std::size_t, sync::IdHash> unfound;  // op id -> index in ops
    for (std::size_t i = 0; i < ops.size(); ++i) {
      ScopedStatement q = db.query("SELECT seq FROM op_ids WHERE plan_id = ?1 AND op_id = ?2");
      q->bind(1, plan.bytes());
      q->bind(2, ops[i].bytes());
      if (q->step()) {
        seqs[i] = Row(*q, path_).u64(0, "op sequence");
      } else {
        unfound.emplace(ops[i], i);
      }
    }
    if (!unfound.empty()) {
      // One pass over the plan's unmerged ops (above its mark) answers them all.
      ScopedStatement q =
          db.query("SELECT seq, op_id FROM ops WHERE plan_id = ?1 AND " + kAboveMark);
      q->bind(1, plan.bytes());
      while (q->step()) {
        const Row row(*q, path_);
        if (auto it = unfound.find(row.id<OpId>(1, "op id")); it != unfound.end()) {
          seqs[it->second] = row.u64(0, "op sequence");
        }
      }
      for (std::size_t i = 0; i < ops.size(); ++i) {  // an id asked twice
        if (!seqs[i]) {
          if (auto it = unfound.find(ops[i]); it != unfound.end()) seqs[i] = seqs[it->second];
        }
      }
    }
    for (std::size_t i = 0; i < ops.size(); ++i) {
      if (!seqs[i]) continue;
      ScopedStatement q = db.query(
          "SELECT op_id, section, author, author_seq, hash FROM ops "
          "WHERE plan_id = ?1 AND seq = ?2");
      q->bind(1, plan.bytes());
      q->bind(2, clamp_to_sql(*seqs[i]));
      const Row row(*q, path_);
      if (!q->step() || row.id<OpId>(0, "op id") != ops[i]) {
        storage_schema::damaged(path_, "an op id names an op that is not there");
      }
      out[i] = OpRef{*seqs[i], row.section(1), row.id<DeviceId>(2, "op author"),
                     row.u64(3, "author sequence"), row.fixed<crypto::kHashSize>(4, "op hash")};
    }
    return out;
  });
}

std::vector<StoredOp> SqliteStorage::ops_after(const PlanId& plan, std::uint64_t after,
                                               std::uint64_t up_to,
                                               const std::vector<Section>& sections,
                                               std::size_t limit) {
  if (sections.empty() || limit == 0 || up_to <= after) return {};
  return translated([&] {
    // One statement per number of sections (a handful): the section filter binds its names.
    // A range scan of the (plan, seq) clustering in seq order that stops at `limit` matches;
    // the unary + keeps SQLite from trading it for ops_by_section and a sort of the whole range.
    std::string sql = std::string("SELECT ") + kOpColumns +
                      " FROM ops WHERE plan_id = ?1 AND seq > ?2 AND seq <= ?3 AND +section IN (";
    for (std::size_t i = 0; i < sections.size(); ++i) {
      sql += (i ? ", ?" : "?") + std::to_string(i + 5);
    }
    sql += ") ORDER BY seq LIMIT ?4";
    Reader reader(*this);
    ScopedStatement q = reader.db().query(sql);
    q->bind(1, plan.bytes());
    q->bind(2, clamp_to_sql(after));
    q->bind(3, clamp_to_sql(up_to));
    q->bind(4, clamp_to_sql(limit));
    for (std::size_t i = 0; i < sections.size(); ++i) {
      q->bind(static_cast<int>(i + 5), std::string_view(sections[i].name()));
    }
    std::vector<StoredOp> out;
    while (q->step()) out.push_back(op_from_row(Row(*q, path_)));
    return out;
  });
}

std::optional<StoredHead> SqliteStorage::head_at_or_below(const PlanId& plan, const ChainKey& chain,
                                                          std::uint64_t seq) {
  return translated([&]() -> std::optional<StoredHead> {
    Reader reader(*this);
    ScopedStatement q = reader.db().query(
        "SELECT seq, head, signature FROM heads "
        "WHERE plan_id = ?1 AND author = ?2 AND section = ?3 AND seq <= ?4 "
        "ORDER BY seq DESC LIMIT 1");
    q->bind(1, plan.bytes());
    q->bind(2, chain.author.bytes());
    q->bind(3, std::string_view(chain.section.name()));
    q->bind(4, clamp_to_sql(seq));
    if (!q->step()) return std::nullopt;
    const Row row(*q, path_);
    return StoredHead{chain.author, chain.section, row.u64(0, "head sequence"), row.bytes(1),
                      row.fixed<crypto::kSignatureSize>(2, "head signature")};
  });
}

std::map<Section, SectionChecksum> SqliteStorage::checksums_at(const PlanId& plan,
                                                               std::uint64_t seq) {
  return translated([&] {
    Reader reader(*this);
    return checksums(reader.db(), plan, seq);
  });
}

std::map<Section, SectionChecksum> SqliteStorage::checksums(Database& db, const PlanId& plan,
                                                            std::uint64_t seq) const {
  std::map<Section, SectionChecksum> out;
  if (seq == 0) return out;
  // Skips from one section name to the next through ops_by_section (a few index seeks per
  // section, however many ops the plan has), then takes each section's last op at or below
  // `seq` by another seek.
  ScopedStatement q = db.query(
      "WITH RECURSIVE sections (name) AS ("
      "  SELECT min(section) FROM ops WHERE plan_id = ?1"
      "  UNION ALL"
      "  SELECT (SELECT min(section) FROM ops WHERE plan_id = ?1 AND section > sections.name)"
      "  FROM sections WHERE sections.name IS NOT NULL) "
      "SELECT o.section, o.section_count, o.section_digest FROM sections JOIN ops AS o "
      "ON o.plan_id = ?1 AND o.seq = (SELECT max(seq) FROM ops "
      "  WHERE plan_id = ?1 AND section = sections.name AND seq <= ?2)");
  q->bind(1, plan.bytes());
  q->bind(2, clamp_to_sql(seq));
  while (q->step()) {
    const Row row(*q, path_);
    out.emplace(row.section(0), SectionChecksum{row.u64(1, "section count"),
                                                row.fixed<crypto::kHashSize>(2, "section digest")});
  }
  return out;
}

std::vector<Bytes> SqliteStorage::membership_from(const PlanId& plan, std::uint64_t from,
                                                  std::size_t limit) {
  return translated([&] {
    Reader reader(*this);
    ScopedStatement q = reader.db().query(
        "SELECT entry FROM membership WHERE plan_id = ?1 AND idx >= ?2 ORDER BY idx LIMIT ?3");
    q->bind(1, plan.bytes());
    q->bind(2, clamp_to_sql(from));
    q->bind(3, clamp_to_sql(limit));
    std::vector<Bytes> out;
    while (q->step()) out.push_back(q->column_bytes(0));
    return out;
  });
}

std::vector<StoredEnvelope> SqliteStorage::envelopes_for(const PlanId& plan,
                                                         const Bytes& recipient) {
  return translated([&] {
    Reader reader(*this);
    ScopedStatement q = reader.db().query(
        "SELECT section, epoch, envelope FROM envelopes "
        "WHERE plan_id = ?1 AND recipient = ?2 ORDER BY id");
    q->bind(1, plan.bytes());
    q->bind(2, crypto::ByteView(recipient));
    std::vector<StoredEnvelope> out;
    while (q->step()) {
      const Row row(*q, path_);
      out.push_back({recipient, row.section(0), row.u64(1, "envelope epoch"), row.bytes(2)});
    }
    return out;
  });
}

std::vector<FetchRecord> SqliteStorage::fetch_log(const PlanId& plan, std::uint64_t after,
                                                  std::size_t limit) {
  return translated([&] {
    Reader reader(*this);
    ScopedStatement q = reader.db().query(
        "SELECT id, account, device, section, up_to_seq, at_ms, live FROM fetch_log "
        "WHERE plan_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3");
    q->bind(1, plan.bytes());
    q->bind(2, clamp_to_sql(after));
    q->bind(3, clamp_to_sql(limit));
    std::vector<FetchRecord> out;
    while (q->step()) {
      const Row row(*q, path_);
      out.push_back({row.u64(0, "fetch log id"), row.id<AccountId>(1, "account id"),
                     row.id<DeviceId>(2, "device id"), row.section(3),
                     row.u64(4, "fetched sequence"), row.u64(5, "fetch time"),
                     q->column_int(6) != 0});
    }
    return out;
  });
}

std::optional<DeviceRecord> SqliteStorage::find_device(const DeviceId& device) {
  return translated([&]() -> std::optional<DeviceRecord> {
    Reader reader(*this);
    ScopedStatement q = reader.db().query(
        "SELECT account, certificate, last_seen_ms FROM devices WHERE device_id = ?1");
    q->bind(1, device.bytes());
    if (!q->step()) return std::nullopt;
    const Row row(*q, path_);
    return DeviceRecord{device, row.id<AccountId>(0, "account id"), row.bytes(1),
                        row.u64(2, "last seen time")};
  });
}

std::vector<AccountPlan> SqliteStorage::plans_of(const AccountId& account,
                                                 const std::optional<PlanId>& after,
                                                 std::size_t limit) {
  if (limit == 0) return {};
  return translated([&] {
    Reader reader(*this);
    // One range of the primary key: (account, plan_id > after) in plan-id order. An empty blob
    // sorts before every 16-byte id, so "from the first" needs no second statement.
    ScopedStatement q = reader.db().query(
        "SELECT plan_id, owner, owner_account, created_at_ms, expires_at_ms FROM account_plans "
        "WHERE account = ?1 AND plan_id > ?2 ORDER BY plan_id LIMIT ?3");
    q->bind(1, account.bytes());
    q->bind(2, after ? after->bytes() : crypto::ByteView());
    q->bind(3, clamp_to_sql(limit));
    std::vector<AccountPlan> out;
    while (q->step()) {
      const Row row(*q, path_);
      out.push_back({account, row.id<PlanId>(0, "plan id"), q->column_int(1) != 0,
                     row.id<AccountId>(2, "owner account id"), row.u64(3, "plan creation time"),
                     row.u64(4, "expiry time")});
    }
    return out;
  });
}

}  // namespace kith::server
