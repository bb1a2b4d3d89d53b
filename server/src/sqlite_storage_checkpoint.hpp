// Checkpoints kithd's write-ahead log from a thread of its own (sqlite_storage.hpp).
//
// Left to SQLite, the commit that pushes the WAL past 1,000 pages copies every page in it back
// into the database file and fsyncs that file before it returns: the group commit that happens
// to cross the line, and every ack waiting on it, pays for all the commits before it. Here the
// writer's connection does no checkpoint at all. Its WAL hook reports the WAL's size after each
// commit; past `passive_pages` this thread runs a PASSIVE checkpoint on its own connection,
// which copies pages while commits go on (SQLite lets one checkpointer and one writer work at
// once) and never waits for a lock. Once every frame is copied, the next commit starts the WAL
// over from its beginning.
//
// Under a steady stream of commits a PASSIVE checkpoint never catches the last frame (commits
// append while it copies), so the WAL would not start over and would grow without end. So each
// PASSIVE checkpoint that succeeds is followed at once by a RESTART one: the thread takes the
// storage's write mutex (commits wait for it, without SQLite's busy polling, and new commits
// hold back until it is done: hold_for_restart), copies what was committed during the PASSIVE
// one, a few milliseconds' worth, syncs the database file, and makes the next commit start the
// WAL over; journal_size_limit then truncates the file. That RESTART does not wait for reads
// (catch-ups) still using older frames: with commits held, it gives up at once, and a later one
// starts the WAL over. Past `restart_pages` (the PASSIVE ones
// keep failing) the thread goes straight to a RESTART.
//
// Measured with kithd_load latency at 1,000 pushes/s (bench/README.md, 2026-11-23 evening):
// when RESTART waited for `restart_pages`, commits were held 25-100 ms a few times a run while
// it copied and synced what had gathered, and p99 push -> delivery was 18-82 ms; with a RESTART
// after each PASSIVE, no commit took over 25 ms and p99 was 6.6-8.8 ms.
//
// Durability is unchanged: a checkpoint only copies committed pages (each already fsynced in the
// WAL when synchronous = FULL), and fsyncs the database file before the WAL may be reused.
//
// Thread-safety: committed() may be called from any thread (it is called from the writer's WAL
// hook, with the write mutex held). A failed checkpoint is logged and tried again after the next
// commit; the WAL grows meanwhile, nothing is lost.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

namespace kith::sync::sqlite {
class Database;
}

namespace kith::server {

class WalCheckpointer {
 public:
  struct Options {
    // WAL pages (4 KiB each) after which a PASSIVE checkpoint starts.
    int passive_pages = 16384;
    // WAL pages after which commits are held back for a RESTART checkpoint without a PASSIVE
    // one first (when PASSIVE ones keep failing).
    int restart_pages = 65536;
    // How long a RESTART past restart_pages waits, commits held, for reads of older frames to
    // end. The RESTART after each PASSIVE checkpoint does not wait: if a read is in the way it
    // gives up at once, and a later one starts the WAL over.
    int reader_wait_ms = 5000;
  };

  // `db` is a connection of its own to the database; `write_mutex` is the one commit() holds.
  WalCheckpointer(std::unique_ptr<sync::sqlite::Database> db, std::mutex& write_mutex,
                  Options options);
  // Stops the thread (a checkpoint in progress finishes first).
  ~WalCheckpointer();
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  // After a commit: the WAL now holds `wal_pages` pages. Cheap; never blocks on a checkpoint.
  void committed(int wal_pages) noexcept;
  // Before a commit takes the write mutex: waits while a RESTART checkpoint is due or running.
  // std::mutex is not fair, so without this a writer committing back to back could take the
  // mutex again and again and hold the RESTART off until the WAL had grown without end.
  void hold_for_restart();

  // Checkpoints run so far (PASSIVE and RESTART), for tests.
  std::uint64_t checkpoints() const;

 private:
  void run();
  // One checkpoint of `mode` (SQLITE_CHECKPOINT_*); false if SQLite refused or failed.
  bool checkpoint(int mode);
  // A RESTART checkpoint, with commits held back (hold_for_restart) while it runs; waiting up
  // to reader_wait_ms for reads of older frames, or not at all.
  void restart(bool wait_for_readers);

  std::unique_ptr<sync::sqlite::Database> db_;
  std::mutex& write_mutex_;
  const Options options_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  int wal_pages_ = 0;            // guarded by mutex_: as of the last commit
  bool stopping_ = false;        // guarded by mutex_
  bool restart_wanted_ = false;  // guarded by mutex_: commits wait (hold_for_restart)
  std::condition_variable restart_done_;
  std::uint64_t checkpoints_ = 0;  // guarded by mutex_

  std::thread thread_;  // last: starts once everything it uses is constructed
};

}  // namespace kith::server
