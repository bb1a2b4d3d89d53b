// An SQLite VFS that gathers the writes of a connection's write-ahead log into large writes.
//
// Why: SQLite writes each WAL frame with two pwrite() calls (its 24-byte header, then the page),
// so a group commit that dirties 500 pages makes 1,000 system calls before its fsync. On this
// kind of virtual machine each costs ~5-10 us whatever its size; kithd's writer spent about a
// third of its time in them with many plans committing at once (bench/README.md). This VFS
// keeps the frames of a transaction in a buffer and writes them ~30 at a time, and what is left
// when SQLite syncs the WAL, before the sync.
//
// Only for a connection with PRAGMA synchronous = FULL (or EXTRA). Frames are safe to hold back
// only because such a connection syncs the WAL at every commit, and SQLite publishes a commit to
// other connections (the wal-index) only after that sync: by then every frame is in the file.
// With synchronous = NORMAL a commit is published without a sync, and another connection could
// read a frame still held here. Nothing else changes: the database file and every other file
// go straight to the default VFS, and a read, size, truncate or file control of the WAL writes
// the held frames first, so the connection itself always sees its own writes.
//
// Durability: what SQLite has not synced may be lost in a crash, held here or in the kernel's
// page cache alike; a commit is acknowledged only after its sync, which writes every held frame
// first. A failed write is reported to SQLite by the call that made it (the sync at the latest),
// which fails the commit.
//
// Thread-safety: registration is thread-safe. SQLite uses each open file from one connection,
// one thread at a time; buffers are per open file.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kith::server {

// Buffer per open WAL file: what is held is written each time it fills. Below 128 KiB because
// SQLite's unix VFS writes at most 128 KiB - 1 bytes a call (seekAndWriteFd masks the length
// with 0x1ffff): 30 frames of 4 KiB pages a write.
inline constexpr std::size_t kWalBufferBytes = std::size_t{124} << 10;

// Registers the VFS (once; not as the default) over SQLite's default VFS and returns its name,
// for sqlite3_open_v2. Throws StorageError if that fails.
const char* buffered_wal_vfs();

// Since the process started, over every file of the VFS: the WAL writes SQLite made, and the
// writes they became. For tests and benchmarks.
struct WalBufferCounts {
  std::uint64_t asked = 0;
  std::uint64_t written = 0;
};
WalBufferCounts wal_buffer_counts() noexcept;

}  // namespace kith::server
