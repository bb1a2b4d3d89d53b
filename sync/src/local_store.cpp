#include "kith/sync/local_store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <limits>

#include "kith/crypto/bytes.hpp"
#include "kith/crypto/error.hpp"
#include "kith/sync/error.hpp"
#include "kith/sync/sqlite/database.hpp"
#include "kith/sync/sqlite/transaction.hpp"
#include "sqlite/store_schema.hpp"

namespace kith::sync {
namespace {

// Associated data of every sealed value (docs/STORE.md):
//   prefixed("kith/v1/local-store") || prefixed(table) || plan_id (16) || prefixed(row_key)
constexpr std::string_view kAdLabel = "kith/v1/local-store";
// Sealed in meta.key_check when the store is created: a wrong storage key is told at open.
constexpr std::string_view kKeyCheckPlaintext = "kith/v1/local-store/key-check";

Bytes row_ad(std::string_view table, const PlanId& plan, ByteView row_key) {
  crypto::ByteWriter w(64 + row_key.size());
  w.prefixed(kAdLabel).prefixed(table).raw(plan.bytes()).prefixed(row_key);
  return std::move(w).take();
}

Bytes section_row_key(std::string_view section, std::uint64_t epoch) {
  crypto::ByteWriter w(12 + section.size());
  w.prefixed(section).u64(epoch);
  return std::move(w).take();
}

// SQLite integers are signed 64-bit; the store refuses what it could not give back unchanged.
std::int64_t to_sql(std::uint64_t value, const char* what) {
  if (value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    throw SyncError(SyncErrorCode::kTooLarge, std::string(what) + " " + std::to_string(value) +
                                                  " is above 2^63 - 1, the largest value the "
                                                  "local store holds");
  }
  return static_cast<std::int64_t>(value);
}

std::int64_t limit_to_sql(std::size_t limit) {
  return static_cast<std::int64_t>(
      std::min<std::size_t>(limit, std::numeric_limits<std::int64_t>::max()));
}

}  // namespace

// ---------------------------------------------------------------------------------------------

class LocalStore::Impl {
  using ScopedStatement = sqlite::ScopedStatement;

 public:
  Impl(const std::filesystem::path& path, const crypto::SectionKey& storage_key)
      : db_(prepared(path)), storage_key_(storage_key) {
    sqlite::configure_connection(db_);
    // 8 MiB of page cache instead of SQLite's 2 MiB: the (plan_id, op_id) index takes op ids
    // in random order, and once it outgrew 2 MiB (~50,000 ops) a catch-up read most of its pages
    // back from the file for every batch (140,000 reads for 100,000 ops; 50,000 with this).
    db_.exec("PRAGMA cache_size = -8192");
    const int version = sqlite::inspect_store(db_);
    // The key is checked before anything is written, so a wrong key leaves the file as it was.
    if (version >= 1) check_storage_key();
    sqlite::enable_wal(db_);
    sqlite::migrate_store(db_, version, [this](int step) {
      // The key check is part of creating the store: no store exists without one.
      if (step == 1) write_key_check();
    });
  }

  sqlite::Database& db() noexcept { return db_; }
  bool& user_transaction() noexcept { return user_transaction_; }

  // Before every write: a write after SQLite rolled back the caller's transaction would
  // otherwise commit on its own, outside the transaction the caller believes is open.
  void before_write() {
    if (user_transaction_ && !db_.in_transaction()) {
      throw SyncError(SyncErrorCode::kStore,
                      "The transaction was rolled back after an earlier error; destroy it and "
                      "begin a new one (" +
                          db_.path() + ")");
    }
  }

  // Runs a write whose only expected failure is a row it refers to being absent; `missing()`
  // says which. It is called only then: put_op runs once per op received, and building the
  // sentence each time cost more than binding the op.
  template <class Missing>
  void run_write(sqlite::Statement& statement, Missing&& missing) {
    try {
      statement.run();
    } catch (const sqlite::Error& e) {
      if (e.result_code() != SQLITE_CONSTRAINT_FOREIGNKEY) throw;
      throw SyncError(SyncErrorCode::kStore, missing() + " (" + db_.path() + ")");
    }
  }

  // For run_write: the plan a write refers to is not stored.
  static auto no_plan(const PlanId& plan) {
    return
        [&plan] { return "Plan " + plan.hex() + " is not on this device; put_plan comes first"; };
  }

  Bytes seal(std::string_view table, const PlanId& plan, ByteView row_key, ByteView plaintext) {
    return crypto::seal(storage_key_, plaintext, row_ad(table, plan, row_key));
  }

  crypto::SecretBytes open(std::string_view table, const PlanId& plan, ByteView row_key,
                           ByteView sealed, std::string_view what) {
    auto plaintext = crypto::open(storage_key_, sealed, row_ad(table, plan, row_key));
    if (!plaintext) {
      throw SyncError(SyncErrorCode::kStore,
                      "The local store was altered or is damaged: the " + std::string(what) +
                          " of plan " + plan.hex() +
                          " does not open under this device's storage key; remove the store "
                          "and sync again to rebuild it (" +
                          db_.path() + ")");
    }
    return std::move(*plaintext);
  }

  template <class Id>
  Id id_column(const sqlite::Statement& statement, int column) {
    ByteView bytes = statement.column_view(column);
    if (bytes.size() != Id::kSize) damaged("an id of the wrong length");
    return Id::from_bytes(bytes);
  }

  std::uint64_t u64_column(const sqlite::Statement& statement, int column) {
    const std::int64_t value = statement.column_int(column);
    if (value < 0) damaged("a negative sequence number or count");
    return static_cast<std::uint64_t>(value);
  }

  // Columns: local_index, op_id, section, author, author_seq, server_seq, header, body.
  StoredOp op_row(const sqlite::Statement& row, const PlanId& plan) {
    StoredOp op;
    op.plan = plan;
    op.local_index = u64_column(row, 0);
    op.op_id = id_column<OpId>(row, 1);
    op.section = row.column_text(2);
    op.author = id_column<DeviceId>(row, 3);
    op.author_seq = u64_column(row, 4);
    op.server_seq = u64_column(row, 5);
    op.header = row.column_bytes(6);
    op.body = row.column_bytes(7);
    return op;
  }

  [[noreturn]] void damaged(const std::string& what) {
    throw SyncError(SyncErrorCode::kStore, "The local store is damaged: it holds " + what +
                                               "; remove it and sync again to rebuild it (" +
                                               db_.path() + ")");
  }

 private:
  static const std::filesystem::path& prepared(const std::filesystem::path& path) {
    sqlite::create_owner_only(path);
    return path;
  }

  void check_storage_key() {
    ScopedStatement q = db_.query("SELECT value FROM meta WHERE name = 'key_check'");
    if (!q->step()) damaged("no storage key check");
    auto plaintext = crypto::open(storage_key_, q->column_view(0), key_check_ad());
    if (!plaintext ||
        !crypto::constant_time_equal(plaintext->view(), crypto::as_bytes(kKeyCheckPlaintext))) {
      throw SyncError(SyncErrorCode::kStore,
                      "The storage key does not open this store: the passphrase is wrong, or the "
                      "file belongs to another device (" +
                          db_.path() + ")");
    }
  }

  void write_key_check() {
    ScopedStatement q = db_.query("INSERT INTO meta (name, value) VALUES ('key_check', ?1)");
    q->bind(1, crypto::seal(storage_key_, crypto::as_bytes(kKeyCheckPlaintext), key_check_ad()));
    q->run();
  }

  static Bytes key_check_ad() { return row_ad("meta", PlanId(), crypto::as_bytes("key_check")); }

  sqlite::Database db_;
  crypto::SectionKey storage_key_;
  bool user_transaction_ = false;
};

// ---------------------------------------------------------------------------------------------

class LocalStore::Transaction::State {
 public:
  State(Impl& impl, Durability durability)
      : impl_(&impl), sync_(impl.db(), durability), transaction_(impl.db()) {
    impl.user_transaction() = true;
  }
  // transaction_ is destroyed after this body: it rolls back anything not committed; then
  // sync_ puts the connection back to synchronous=FULL.
  ~State() { impl_->user_transaction() = false; }
  State(const State&) = delete;
  State& operator=(const State&) = delete;

  void commit() { transaction_.commit(); }

 private:
  // Sets the connection's synchronous level for one transaction (PRAGMA synchronous cannot
  // change inside one) and restores FULL afterwards.
  class SyncLevel {
   public:
    SyncLevel(sqlite::Database& db, Durability durability)
        : db_(&db), relaxed_(durability == Durability::kRelaxed) {
      if (relaxed_) db_->exec("PRAGMA synchronous = NORMAL");
    }
    ~SyncLevel() {
      if (!relaxed_) return;
      try {
        db_->exec("PRAGMA synchronous = FULL");
      } catch (...) {
        // The connection is unusable if even this fails; the next write reports it.
      }
    }
    SyncLevel(const SyncLevel&) = delete;
    SyncLevel& operator=(const SyncLevel&) = delete;

   private:
    sqlite::Database* db_;
    bool relaxed_;
  };

  Impl* impl_;
  SyncLevel sync_;
  sqlite::Transaction transaction_;
};

LocalStore::Transaction::Transaction(std::unique_ptr<State> state) : state_(std::move(state)) {}
LocalStore::Transaction::~Transaction() = default;
LocalStore::Transaction::Transaction(Transaction&&) noexcept = default;

void LocalStore::Transaction::commit() {
  if (!state_) {
    throw SyncError(SyncErrorCode::kStore, "This transaction was already committed");
  }
  // Whether the commit succeeds or throws, the transaction is over.
  auto state = std::move(state_);
  state->commit();
}

// ---------------------------------------------------------------------------------------------

LocalStore::LocalStore(const std::filesystem::path& path, const crypto::SectionKey& storage_key)
    : impl_(std::make_unique<Impl>(path, storage_key)) {}
LocalStore::~LocalStore() = default;
LocalStore::LocalStore(LocalStore&&) noexcept = default;
LocalStore& LocalStore::operator=(LocalStore&&) noexcept = default;

LocalStore::Transaction LocalStore::begin(Durability durability) {
  if (impl_->user_transaction()) {
    throw SyncError(SyncErrorCode::kStore,
                    "A transaction is already open on this store; commit it or let it go out of "
                    "scope first");
  }
  return Transaction(std::make_unique<Transaction::State>(*impl_, durability));
}

// --- Plans ---

void LocalStore::put_plan(const PlanId& plan, std::string_view title) {
  impl_->before_write();
  auto q = impl_->db().query(
      "INSERT INTO plans (plan_id, title_sealed) VALUES (?1, ?2) "
      "ON CONFLICT (plan_id) DO UPDATE SET title_sealed = excluded.title_sealed");
  q->bind(1, plan.bytes());
  q->bind(2, impl_->seal("plans", plan, {}, crypto::as_bytes(title)));
  q->run();
}

std::vector<std::pair<PlanId, std::string>> LocalStore::plans() const {
  auto q = impl_->db().query("SELECT plan_id, title_sealed FROM plans ORDER BY rowid");
  std::vector<std::pair<PlanId, std::string>> out;
  while (q->step()) {
    auto plan = impl_->id_column<PlanId>(*q, 0);
    auto title = impl_->open("plans", plan, {}, q->column_view(1), "title");
    out.emplace_back(plan, std::string(title.view().begin(), title.view().end()));
  }
  return out;
}

bool LocalStore::has_plan(const PlanId& plan) const {
  auto q = impl_->db().query("SELECT 1 FROM plans WHERE plan_id = ?1");
  q->bind(1, plan.bytes());
  return q->step();
}

void LocalStore::remove_plan(const PlanId& plan) {
  impl_->before_write();
  auto q = impl_->db().query("DELETE FROM plans WHERE plan_id = ?1");
  q->bind(1, plan.bytes());
  q->run();
}

// --- Ops ---

bool LocalStore::put_op(const StoredOp& op) {
  impl_->before_write();
  auto q = impl_->db().query(
      "INSERT INTO ops (plan_id, op_id, section, author, author_seq, server_seq, header, body) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (plan_id, op_id) DO NOTHING");
  q->bind(1, op.plan.bytes());
  q->bind(2, op.op_id.bytes());
  q->bind(3, op.section);
  q->bind(4, op.author.bytes());
  q->bind(5, to_sql(op.author_seq, "author sequence"));
  q->bind(6, to_sql(op.server_seq, "server sequence"));
  q->bind(7, op.header);
  q->bind(8, op.body);
  impl_->run_write(*q, Impl::no_plan(op.plan));
  return impl_->db().changes() == 1;
}

std::optional<StoredOp> LocalStore::op(const PlanId& plan, const OpId& op_id) const {
  auto q = impl_->db().query(
      "SELECT local_index, op_id, section, author, author_seq, server_seq, header, body "
      "FROM ops WHERE plan_id = ?1 AND op_id = ?2");
  q->bind(1, plan.bytes());
  q->bind(2, op_id.bytes());
  if (!q->step()) return std::nullopt;
  return impl_->op_row(*q, plan);
}

std::vector<StoredOp> LocalStore::ops(const PlanId& plan, std::uint64_t after_local_index,
                                      std::size_t limit) const {
  auto q = impl_->db().query(
      "SELECT local_index, op_id, section, author, author_seq, server_seq, header, body "
      "FROM ops WHERE plan_id = ?1 AND local_index > ?2 ORDER BY local_index LIMIT ?3");
  q->bind(1, plan.bytes());
  // An index past the largest SQLite holds has nothing after it.
  if (after_local_index > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return {};
  }
  q->bind(2, static_cast<std::int64_t>(after_local_index));
  q->bind(3, limit_to_sql(limit));
  std::vector<StoredOp> out;
  while (q->step()) out.push_back(impl_->op_row(*q, plan));
  return out;
}

bool LocalStore::set_server_seq(const PlanId& plan, const OpId& op_id, std::uint64_t server_seq) {
  impl_->before_write();
  auto q = impl_->db().query("UPDATE ops SET server_seq = ?3 WHERE plan_id = ?1 AND op_id = ?2");
  q->bind(1, plan.bytes());
  q->bind(2, op_id.bytes());
  q->bind(3, to_sql(server_seq, "server sequence"));
  q->run();
  return impl_->db().changes() == 1;
}

bool LocalStore::replace_op_body(const PlanId& plan, const OpId& op_id, ByteView header,
                                 ByteView body) {
  impl_->before_write();
  auto q =
      impl_->db().query("UPDATE ops SET header = ?3, body = ?4 WHERE plan_id = ?1 AND op_id = ?2");
  q->bind(1, plan.bytes());
  q->bind(2, op_id.bytes());
  q->bind(3, header);
  q->bind(4, body);
  q->run();
  return impl_->db().changes() == 1;
}

// --- Outbox ---

void LocalStore::outbox_add(const PlanId& plan, const OpId& op_id) {
  impl_->before_write();
  // One statement, so the position cannot be taken by another write in between.
  auto q = impl_->db().query(
      "INSERT INTO outbox (plan_id, op_id, position) "
      "SELECT ?1, ?2, coalesce(max(position), 0) + 1 FROM outbox WHERE plan_id = ?1 "
      "ON CONFLICT (plan_id, op_id) DO NOTHING");
  q->bind(1, plan.bytes());
  q->bind(2, op_id.bytes());
  impl_->run_write(*q, [&] {
    return "Op " + op_id.hex() + " of plan " + plan.hex() +
           " is not stored; put_op comes before outbox_add";
  });
}

void LocalStore::outbox_remove(const PlanId& plan, const OpId& op_id) {
  impl_->before_write();
  auto q = impl_->db().query("DELETE FROM outbox WHERE plan_id = ?1 AND op_id = ?2");
  q->bind(1, plan.bytes());
  q->bind(2, op_id.bytes());
  q->run();
}

std::vector<OpId> LocalStore::outbox(const PlanId& plan) const {
  auto q = impl_->db().query("SELECT op_id FROM outbox WHERE plan_id = ?1 ORDER BY position");
  q->bind(1, plan.bytes());
  std::vector<OpId> out;
  while (q->step()) out.push_back(impl_->id_column<OpId>(*q, 0));
  return out;
}

std::vector<StoredOp> LocalStore::outbox_ops(const PlanId& plan, std::size_t limit) const {
  auto q = impl_->db().query(
      "SELECT ops.local_index, ops.op_id, ops.section, ops.author, ops.author_seq, "
      "ops.server_seq, ops.header, ops.body FROM outbox JOIN ops "
      "ON ops.plan_id = outbox.plan_id AND ops.op_id = outbox.op_id "
      "WHERE outbox.plan_id = ?1 ORDER BY outbox.position LIMIT ?2");
  q->bind(1, plan.bytes());
  q->bind(2, limit_to_sql(limit));
  std::vector<StoredOp> out;
  while (q->step()) out.push_back(impl_->op_row(*q, plan));
  return out;
}

// --- Membership ---

bool LocalStore::put_membership_entry(const PlanId& plan, std::uint64_t index, ByteView entry) {
  impl_->before_write();
  const std::int64_t sql_index = to_sql(index, "membership index");
  sqlite::WriteScope scope(impl_->db());
  std::int64_t next = 0;
  {
    auto q =
        impl_->db().query("SELECT coalesce(max(idx) + 1, 0) FROM membership WHERE plan_id = ?1");
    q->bind(1, plan.bytes());
    if (q->step()) next = q->column_int(0);
  }
  // Entries are stored contiguously from 0, so every index below `next` is taken.
  if (sql_index < next) return false;
  if (sql_index > next) {
    throw SyncError(SyncErrorCode::kMembershipInvalid,
                    "Membership entry " + std::to_string(index) + " of plan " + plan.hex() +
                        " would leave a gap: the next entry is " + std::to_string(next));
  }
  {
    auto q = impl_->db().query("INSERT INTO membership (plan_id, idx, entry) VALUES (?1, ?2, ?3)");
    q->bind(1, plan.bytes());
    q->bind(2, sql_index);
    q->bind(3, entry);
    impl_->run_write(*q, Impl::no_plan(plan));
  }
  scope.commit();
  return true;
}

std::vector<Bytes> LocalStore::membership(const PlanId& plan) const {
  auto q = impl_->db().query("SELECT entry FROM membership WHERE plan_id = ?1 ORDER BY idx");
  q->bind(1, plan.bytes());
  std::vector<Bytes> out;
  while (q->step()) out.push_back(q->column_bytes(0));
  return out;
}

void LocalStore::truncate_membership(const PlanId& plan, std::uint64_t from_index) {
  impl_->before_write();
  // An index past the largest SQLite holds has nothing from it on.
  if (from_index > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return;
  auto q = impl_->db().query("DELETE FROM membership WHERE plan_id = ?1 AND idx >= ?2");
  q->bind(1, plan.bytes());
  q->bind(2, static_cast<std::int64_t>(from_index));
  q->run();
}

// --- Envelopes ---

void LocalStore::put_envelope(const PlanId& plan, std::string_view section, std::uint64_t epoch,
                              ByteView envelope) {
  impl_->before_write();
  auto q = impl_->db().query(
      "INSERT INTO envelopes (plan_id, section, epoch, envelope) VALUES (?1, ?2, ?3, ?4) "
      "ON CONFLICT (plan_id, section, epoch) DO UPDATE SET envelope = excluded.envelope");
  q->bind(1, plan.bytes());
  q->bind(2, section);
  q->bind(3, to_sql(epoch, "epoch"));
  q->bind(4, envelope);
  impl_->run_write(*q, Impl::no_plan(plan));
}

std::optional<Bytes> LocalStore::envelope(const PlanId& plan, std::string_view section,
                                          std::uint64_t epoch) const {
  if (epoch > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return std::nullopt;
  }
  auto q = impl_->db().query(
      "SELECT envelope FROM envelopes WHERE plan_id = ?1 AND section = ?2 AND epoch = ?3");
  q->bind(1, plan.bytes());
  q->bind(2, section);
  q->bind(3, static_cast<std::int64_t>(epoch));
  if (!q->step()) return std::nullopt;
  return q->column_bytes(0);
}

std::vector<StoredEnvelope> LocalStore::envelopes(const PlanId& plan) const {
  auto q = impl_->db().query(
      "SELECT section, epoch, envelope FROM envelopes WHERE plan_id = ?1 "
      "ORDER BY section, epoch");
  q->bind(1, plan.bytes());
  std::vector<StoredEnvelope> out;
  while (q->step()) {
    out.push_back({q->column_text(0), impl_->u64_column(*q, 1), q->column_bytes(2)});
  }
  return out;
}

// --- Names of members ---

void LocalStore::set_name(const PlanId& plan, ByteView subject, std::string_view name) {
  impl_->before_write();
  if (name.empty()) {
    auto q = impl_->db().query("DELETE FROM names WHERE plan_id = ?1 AND subject = ?2");
    q->bind(1, plan.bytes());
    q->bind(2, subject);
    q->run();
    return;
  }
  auto q = impl_->db().query(
      "INSERT INTO names (plan_id, subject, name_sealed) VALUES (?1, ?2, ?3) "
      "ON CONFLICT (plan_id, subject) DO UPDATE SET name_sealed = excluded.name_sealed");
  q->bind(1, plan.bytes());
  q->bind(2, subject);
  q->bind(3, impl_->seal("names", plan, subject, crypto::as_bytes(name)));
  impl_->run_write(*q, Impl::no_plan(plan));
}

std::vector<std::pair<Bytes, std::string>> LocalStore::names(const PlanId& plan) const {
  auto q = impl_->db().query(
      "SELECT subject, name_sealed FROM names WHERE plan_id = ?1 ORDER BY subject");
  q->bind(1, plan.bytes());
  std::vector<std::pair<Bytes, std::string>> out;
  while (q->step()) {
    Bytes subject = q->column_bytes(0);
    auto name = impl_->open("names", plan, subject, q->column_view(1), "name");
    out.emplace_back(std::move(subject),
                     std::string(reinterpret_cast<const char*>(name.data()), name.size()));
  }
  return out;
}

// --- Keys sealed for recovery ---

void LocalStore::mark_recovery_sealed(const PlanId& plan, std::string_view section,
                                      std::uint64_t epoch) {
  impl_->before_write();
  auto q = impl_->db().query(
      "INSERT OR IGNORE INTO recovery_sealed (plan_id, section, epoch) VALUES (?1, ?2, ?3)");
  q->bind(1, plan.bytes());
  q->bind(2, section);
  q->bind(3, static_cast<std::int64_t>(epoch));
  impl_->run_write(*q, Impl::no_plan(plan));
}

std::set<std::pair<std::string, std::uint64_t>> LocalStore::recovery_sealed(
    const PlanId& plan) const {
  auto q = impl_->db().query("SELECT section, epoch FROM recovery_sealed WHERE plan_id = ?1");
  q->bind(1, plan.bytes());
  std::set<std::pair<std::string, std::uint64_t>> out;
  while (q->step()) out.emplace(q->column_text(0), impl_->u64_column(*q, 1));
  return out;
}

// --- Outgoing envelopes ---

std::uint64_t LocalStore::add_outgoing_envelope(const PlanId& plan, ByteView envelope,
                                               const std::optional<OpId>& invite, bool recovery) {
  impl_->before_write();
  auto q = impl_->db().query(
      "INSERT INTO outgoing_envelopes (plan_id, envelope, invite_id, recovery) "
      "VALUES (?1, ?2, ?3, ?4)");
  q->bind(1, plan.bytes());
  q->bind(2, envelope);
  if (invite) q->bind(3, invite->bytes());
  q->bind(4, static_cast<std::int64_t>(recovery ? 1 : 0));
  impl_->run_write(*q, Impl::no_plan(plan));
  return static_cast<std::uint64_t>(sqlite3_last_insert_rowid(impl_->db().handle()));
}

std::vector<OutgoingEnvelope> LocalStore::outgoing_envelopes(const PlanId& plan) const {
  auto q = impl_->db().query(
      "SELECT id, envelope, invite_id, recovery FROM outgoing_envelopes WHERE plan_id = ?1 "
      "ORDER BY id");
  q->bind(1, plan.bytes());
  std::vector<OutgoingEnvelope> out;
  while (q->step()) {
    OutgoingEnvelope e{impl_->u64_column(*q, 0), q->column_bytes(1), std::nullopt,
                       q->column_int(3) != 0};
    if (!q->is_null(2)) e.invite = OpId::from_bytes(q->column_bytes(2));
    out.push_back(std::move(e));
  }
  return out;
}

void LocalStore::remove_outgoing_envelope(const PlanId& plan, std::uint64_t id) {
  impl_->before_write();
  if (id > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return;
  auto q = impl_->db().query("DELETE FROM outgoing_envelopes WHERE plan_id = ?1 AND id = ?2");
  q->bind(1, plan.bytes());
  q->bind(2, static_cast<std::int64_t>(id));
  q->run();
}

void LocalStore::set_verified(const AccountId& account, std::uint64_t at_ms) {
  impl_->before_write();
  auto q = impl_->db().query(
      "INSERT INTO verified_accounts (account, verified_at) VALUES (?1, ?2) "
      "ON CONFLICT (account) DO UPDATE SET verified_at = excluded.verified_at");
  q->bind(1, account.bytes());
  q->bind(2, static_cast<std::int64_t>(std::min<std::uint64_t>(
                 at_ms, static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))));
  q->run();
}

std::optional<std::uint64_t> LocalStore::verified_at(const AccountId& account) const {
  auto q = impl_->db().query("SELECT verified_at FROM verified_accounts WHERE account = ?1");
  q->bind(1, account.bytes());
  if (!q->step()) return std::nullopt;
  return impl_->u64_column(*q, 0);
}

// --- Section keys ---

void LocalStore::put_section_key(const PlanId& plan, std::string_view section, std::uint64_t epoch,
                                 const crypto::SectionKey& key) {
  impl_->before_write();
  auto q = impl_->db().query(
      "INSERT INTO section_keys (plan_id, section, epoch, key_sealed) VALUES (?1, ?2, ?3, ?4) "
      "ON CONFLICT (plan_id, section, epoch) DO UPDATE SET key_sealed = excluded.key_sealed");
  q->bind(1, plan.bytes());
  q->bind(2, section);
  q->bind(3, to_sql(epoch, "epoch"));
  q->bind(4,
          impl_->seal("section_keys", plan, section_row_key(section, epoch), key.secret().view()));
  impl_->run_write(*q, Impl::no_plan(plan));
}

std::optional<crypto::SectionKey> LocalStore::section_key(const PlanId& plan,
                                                          std::string_view section,
                                                          std::uint64_t epoch) const {
  if (epoch > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return std::nullopt;
  }
  auto q = impl_->db().query(
      "SELECT key_sealed FROM section_keys WHERE plan_id = ?1 AND section = ?2 AND epoch = ?3");
  q->bind(1, plan.bytes());
  q->bind(2, section);
  q->bind(3, static_cast<std::int64_t>(epoch));
  if (!q->step()) return std::nullopt;
  auto secret = impl_->open("section_keys", plan, section_row_key(section, epoch),
                            q->column_view(0), "key of section " + std::string(section));
  try {
    return crypto::SectionKey::parse(secret.view());
  } catch (const crypto::KeyFormatError&) {
    impl_->damaged("a section key of the wrong length");
  }
}

// --- Cursor ---

void LocalStore::set_cursor(const PlanId& plan, std::uint64_t server_seq) {
  impl_->before_write();
  auto q = impl_->db().query(
      "INSERT INTO cursors (plan_id, server_seq) VALUES (?1, ?2) "
      "ON CONFLICT (plan_id) DO UPDATE SET server_seq = excluded.server_seq");
  q->bind(1, plan.bytes());
  q->bind(2, to_sql(server_seq, "cursor"));
  impl_->run_write(*q, Impl::no_plan(plan));
}

std::uint64_t LocalStore::cursor(const PlanId& plan) const {
  auto q = impl_->db().query("SELECT server_seq FROM cursors WHERE plan_id = ?1");
  q->bind(1, plan.bytes());
  return q->step() ? impl_->u64_column(*q, 0) : 0;
}

// --- Section digests ---

void LocalStore::put_section_digests(const PlanId& plan, std::uint64_t digest_seq,
                                     const std::vector<StoredSectionDigest>& changed) {
  impl_->before_write();
  sqlite::WriteScope scope(impl_->db());
  {
    // A plan without a cursor row yet gets one at cursor 0.
    auto q = impl_->db().query(
        "INSERT INTO cursors (plan_id, server_seq, digest_seq) VALUES (?1, 0, ?2) "
        "ON CONFLICT (plan_id) DO UPDATE SET digest_seq = excluded.digest_seq");
    q->bind(1, plan.bytes());
    q->bind(2, to_sql(digest_seq, "digest sequence"));
    impl_->run_write(*q, Impl::no_plan(plan));
  }
  for (const StoredSectionDigest& s : changed) {
    auto q = impl_->db().query(
        "INSERT INTO section_digests (plan_id, section, op_count, digest) VALUES (?1, ?2, ?3, ?4) "
        "ON CONFLICT (plan_id, section) DO UPDATE SET op_count = excluded.op_count, "
        "digest = excluded.digest");
    q->bind(1, plan.bytes());
    q->bind(2, s.section);
    q->bind(3, to_sql(s.digest.op_count, "section op count"));
    q->bind(4, ByteView(s.digest.digest));
    impl_->run_write(*q, Impl::no_plan(plan));
  }
  scope.commit();
}

void LocalStore::clear_section_digests(const PlanId& plan) {
  impl_->before_write();
  sqlite::WriteScope scope(impl_->db());
  {
    auto q = impl_->db().query("DELETE FROM section_digests WHERE plan_id = ?1");
    q->bind(1, plan.bytes());
    q->run();
  }
  {
    auto q = impl_->db().query("UPDATE cursors SET digest_seq = 0 WHERE plan_id = ?1");
    q->bind(1, plan.bytes());
    q->run();
  }
  scope.commit();
}

std::vector<StoredSectionDigest> LocalStore::section_digests(const PlanId& plan) const {
  auto q = impl_->db().query(
      "SELECT section, op_count, digest FROM section_digests WHERE plan_id = ?1 ORDER BY section");
  q->bind(1, plan.bytes());
  std::vector<StoredSectionDigest> out;
  while (q->step()) {
    StoredSectionDigest s;
    s.section = q->column_text(0);
    s.digest.op_count = impl_->u64_column(*q, 1);
    ByteView digest = q->column_view(2);
    if (digest.size() != s.digest.digest.size())
      impl_->damaged("a section digest of the wrong length");
    std::copy(digest.begin(), digest.end(), s.digest.digest.begin());
    out.push_back(std::move(s));
  }
  return out;
}

std::uint64_t LocalStore::digest_seq(const PlanId& plan) const {
  auto q = impl_->db().query("SELECT digest_seq FROM cursors WHERE plan_id = ?1");
  q->bind(1, plan.bytes());
  return q->step() ? impl_->u64_column(*q, 0) : 0;
}

// --- Plan state ---

void LocalStore::save_plan_state(const PlanId& plan, ByteView plaintext) {
  impl_->before_write();
  auto q = impl_->db().query(
      "INSERT INTO plan_states (plan_id, state_sealed) VALUES (?1, ?2) "
      "ON CONFLICT (plan_id) DO UPDATE SET state_sealed = excluded.state_sealed");
  q->bind(1, plan.bytes());
  q->bind(2, impl_->seal("plan_states", plan, {}, plaintext));
  impl_->run_write(*q, Impl::no_plan(plan));
}

std::optional<crypto::SecretBytes> LocalStore::load_plan_state(const PlanId& plan) const {
  auto q = impl_->db().query("SELECT state_sealed FROM plan_states WHERE plan_id = ?1");
  q->bind(1, plan.bytes());
  if (!q->step()) return std::nullopt;
  return impl_->open("plan_states", plan, {}, q->column_view(0), "plan state");
}

// --- Housekeeping ---

int LocalStore::schema_version() const {
  return static_cast<int>(impl_->db().pragma_int("user_version"));
}

void LocalStore::checkpoint() {
  const int rc = sqlite3_wal_checkpoint_v2(impl_->db().handle(), nullptr,
                                           SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
  if (rc != SQLITE_OK) impl_->db().fail(rc, "checkpointing the WAL");
}

}  // namespace kith::sync
