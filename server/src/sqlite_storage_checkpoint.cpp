#include "sqlite_storage_checkpoint.hpp"

#include <sqlite3.h>

#include <string>
#include <utility>

#include "kith/sync/sqlite/database.hpp"
#include "log.hpp"

namespace kith::server {

WalCheckpointer::WalCheckpointer(std::unique_ptr<sync::sqlite::Database> db,
                                 std::mutex& write_mutex, Options options)
    : db_(std::move(db)),
      write_mutex_(write_mutex),
      options_(options),
      thread_([this] { run(); }) {}

WalCheckpointer::~WalCheckpointer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  restart_done_.notify_all();
  thread_.join();
}

void WalCheckpointer::committed(int wal_pages) noexcept {
  {
    std::lock_guard lock(mutex_);
    wal_pages_ = wal_pages;
    if (wal_pages < options_.passive_pages) return;
  }
  wake_.notify_one();
}

void WalCheckpointer::hold_for_restart() {
  std::unique_lock lock(mutex_);
  restart_done_.wait(lock, [this] { return !restart_wanted_ || stopping_; });
}

std::uint64_t WalCheckpointer::checkpoints() const {
  std::lock_guard lock(mutex_);
  return checkpoints_;
}

void WalCheckpointer::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || wal_pages_ >= options_.passive_pages; });
    if (stopping_) return;
    const int pages = wal_pages_;
    // The next commit reports the size again; until then there is nothing new to copy.
    wal_pages_ = 0;
    lock.unlock();
    // Past restart_pages the copy is not left to a PASSIVE checkpoint that might never catch up.
    // Otherwise a PASSIVE one copies nearly everything while commits go on, and the RESTART
    // right after it has only what was committed meanwhile to copy and sync.
    if (pages >= options_.restart_pages) {
      restart(true);
    } else if (checkpoint(SQLITE_CHECKPOINT_PASSIVE)) {
      restart(false);
    }
    lock.lock();
    ++checkpoints_;
  }
}

void WalCheckpointer::restart(bool wait_for_readers) {
  {
    std::lock_guard l(mutex_);
    restart_wanted_ = true;
  }
  {
    // No commit may append while the rest is copied, or the WAL could not start over.
    std::lock_guard writes(write_mutex_);
    sqlite3_busy_timeout(db_->handle(), wait_for_readers ? options_.reader_wait_ms : 0);
    checkpoint(SQLITE_CHECKPOINT_RESTART);
  }
  {
    std::lock_guard l(mutex_);
    restart_wanted_ = false;
  }
  restart_done_.notify_all();
}

bool WalCheckpointer::checkpoint(int mode) {
  const int rc = sqlite3_wal_checkpoint_v2(db_->handle(), nullptr, mode, nullptr, nullptr);
  // BUSY: a reader still needs frames (RESTART) or another connection is checkpointing; what
  // was copied stays copied, and the next commit past the threshold tries again.
  if (rc == SQLITE_OK || rc == SQLITE_BUSY) return rc == SQLITE_OK;
  log::event("checkpoint_failed",
             {{"mode", mode == SQLITE_CHECKPOINT_RESTART ? "restart" : "passive"},
              {"error", std::string(sqlite3_errmsg(db_->handle()))}});
  return false;
}

}  // namespace kith::server
