#include "sqlite_wal_buffer.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "storage.hpp"

namespace kith::server {
namespace {

constexpr const char* kVfsName = "kith-wal-buffer";

std::atomic<std::uint64_t> g_asked{0};    // WAL writes SQLite asked for
std::atomic<std::uint64_t> g_written{0};  // WAL writes passed to the default VFS

// An open WAL file: this header, then the default VFS's own file object (`inner`), in the
// memory SQLite allocates (szOsFile). Plain data: SQLite allocates and frees the memory.
struct WalFile {
  sqlite3_file base;    // first: SQLite sees a sqlite3_file
  sqlite3_file* inner;  // the default VFS's file, just after this struct
  unsigned char* data;  // held frames, kWalBufferBytes long once allocated (malloc)
  std::size_t length;   // bytes held
  sqlite3_int64 start;  // file offset of data[0]
};

// Where the default VFS's file object starts, aligned as SQLite aligns its allocations.
constexpr std::size_t kInnerOffset = (sizeof(WalFile) + 7) / 8 * 8;

sqlite3_vfs* inner_vfs(sqlite3_vfs* vfs) { return static_cast<sqlite3_vfs*>(vfs->pAppData); }
WalFile* wal(sqlite3_file* file) { return reinterpret_cast<WalFile*>(file); }

int write_inner(WalFile* f, const void* data, int n, sqlite3_int64 offset) {
  g_written.fetch_add(1, std::memory_order_relaxed);
  return f->inner->pMethods->xWrite(f->inner, data, n, offset);
}

// Writes what is held. The held bytes are dropped even if the write fails: SQLite fails the
// statement that gets the error, and the transaction with it, so they will not be asked for.
int flush(WalFile* f) {
  if (f->length == 0) return SQLITE_OK;
  const int rc = write_inner(f, f->data, static_cast<int>(f->length), f->start);
  f->length = 0;
  return rc;
}

int wal_close(sqlite3_file* file) {
  WalFile* f = wal(file);
  const int flushed = flush(f);
  const int closed = f->inner->pMethods->xClose(f->inner);
  std::free(f->data);
  f->data = nullptr;
  return flushed != SQLITE_OK ? flushed : closed;
}

int wal_read(sqlite3_file* file, void* out, int n, sqlite3_int64 offset) {
  WalFile* f = wal(file);
  // Overlapping what is held (SQLite reading back a page it spilled this transaction).
  if (f->length > 0 && offset < f->start + static_cast<sqlite3_int64>(f->length) &&
      f->start < offset + n) {
    if (const int rc = flush(f); rc != SQLITE_OK) return rc;
  }
  return f->inner->pMethods->xRead(f->inner, out, n, offset);
}

int wal_write(sqlite3_file* file, const void* data, int n, sqlite3_int64 offset) {
  WalFile* f = wal(file);
  g_asked.fetch_add(1, std::memory_order_relaxed);
  const auto size = static_cast<std::size_t>(n);
  if (f->length > 0 && offset == f->start + static_cast<sqlite3_int64>(f->length) &&
      f->length + size <= kWalBufferBytes) {
    std::memcpy(f->data + f->length, data, size);
    f->length += size;
    return SQLITE_OK;
  }
  // Not the continuation of what is held (or no room): what is held goes first, in order.
  if (const int rc = flush(f); rc != SQLITE_OK) return rc;
  if (f->data == nullptr && size <= kWalBufferBytes) {
    f->data = static_cast<unsigned char*>(std::malloc(kWalBufferBytes));
  }
  if (f->data == nullptr || size > kWalBufferBytes) {
    return write_inner(f, data, n, offset);
  }
  std::memcpy(f->data, data, size);
  f->length = size;
  f->start = offset;
  return SQLITE_OK;
}

int wal_truncate(sqlite3_file* file, sqlite3_int64 size) {
  WalFile* f = wal(file);
  if (const int rc = flush(f); rc != SQLITE_OK) return rc;
  return f->inner->pMethods->xTruncate(f->inner, size);
}

int wal_sync(sqlite3_file* file, int flags) {
  WalFile* f = wal(file);
  if (const int rc = flush(f); rc != SQLITE_OK) return rc;
  return f->inner->pMethods->xSync(f->inner, flags);
}

int wal_file_size(sqlite3_file* file, sqlite3_int64* size) {
  WalFile* f = wal(file);
  if (const int rc = flush(f); rc != SQLITE_OK) return rc;
  return f->inner->pMethods->xFileSize(f->inner, size);
}

int wal_lock(sqlite3_file* file, int level) {
  return wal(file)->inner->pMethods->xLock(wal(file)->inner, level);
}
int wal_unlock(sqlite3_file* file, int level) {
  return wal(file)->inner->pMethods->xUnlock(wal(file)->inner, level);
}
int wal_check_reserved_lock(sqlite3_file* file, int* out) {
  return wal(file)->inner->pMethods->xCheckReservedLock(wal(file)->inner, out);
}

// A file control may ask about the file (its size hint, its state): the held frames go first.
int wal_file_control(sqlite3_file* file, int op, void* arg) {
  WalFile* f = wal(file);
  if (const int rc = flush(f); rc != SQLITE_OK) return rc;
  return f->inner->pMethods->xFileControl(f->inner, op, arg);
}
int wal_sector_size(sqlite3_file* file) {
  return wal(file)->inner->pMethods->xSectorSize(wal(file)->inner);
}
int wal_device_characteristics(sqlite3_file* file) {
  return wal(file)->inner->pMethods->xDeviceCharacteristics(wal(file)->inner);
}

// Version 1: no shared memory and no memory mapping, which SQLite uses for the database file
// only, never for a WAL.
const sqlite3_io_methods kWalMethods = {1,
                                        wal_close,
                                        wal_read,
                                        wal_write,
                                        wal_truncate,
                                        wal_sync,
                                        wal_file_size,
                                        wal_lock,
                                        wal_unlock,
                                        wal_check_reserved_lock,
                                        wal_file_control,
                                        wal_sector_size,
                                        wal_device_characteristics,
                                        nullptr,
                                        nullptr,
                                        nullptr,
                                        nullptr,
                                        nullptr,
                                        nullptr};

int vfs_open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  sqlite3_vfs* inner = inner_vfs(vfs);
  // Every file but a WAL is the default VFS's own, with no wrapper in the way.
  if ((flags & SQLITE_OPEN_WAL) == 0) return inner->xOpen(inner, name, file, flags, out_flags);
  auto* inner_file =
      reinterpret_cast<sqlite3_file*>(reinterpret_cast<unsigned char*>(file) + kInnerOffset);
  inner_file->pMethods = nullptr;
  const int rc = inner->xOpen(inner, name, inner_file, flags, out_flags);
  if (rc != SQLITE_OK) {
    // SQLite closes a failed file only if its pMethods is set; ours stays unset, so do it here.
    if (inner_file->pMethods != nullptr) inner_file->pMethods->xClose(inner_file);
    file->pMethods = nullptr;
    return rc;
  }
  WalFile* f = wal(file);
  f->inner = inner_file;
  f->data = nullptr;
  f->length = 0;
  f->start = 0;
  f->base.pMethods = &kWalMethods;
  return SQLITE_OK;
}

// The rest of the VFS is the default one's, called with the default VFS as SQLite would.
int vfs_delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  return inner_vfs(vfs)->xDelete(inner_vfs(vfs), name, sync_dir);
}
int vfs_access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  return inner_vfs(vfs)->xAccess(inner_vfs(vfs), name, flags, out);
}
int vfs_full_pathname(sqlite3_vfs* vfs, const char* name, int n, char* out) {
  return inner_vfs(vfs)->xFullPathname(inner_vfs(vfs), name, n, out);
}
void* vfs_dl_open(sqlite3_vfs* vfs, const char* name) {
  return inner_vfs(vfs)->xDlOpen(inner_vfs(vfs), name);
}
void vfs_dl_error(sqlite3_vfs* vfs, int n, char* out) {
  inner_vfs(vfs)->xDlError(inner_vfs(vfs), n, out);
}
void (*vfs_dl_sym(sqlite3_vfs* vfs, void* handle, const char* symbol))(void) {
  return inner_vfs(vfs)->xDlSym(inner_vfs(vfs), handle, symbol);
}
void vfs_dl_close(sqlite3_vfs* vfs, void* handle) {
  inner_vfs(vfs)->xDlClose(inner_vfs(vfs), handle);
}
int vfs_randomness(sqlite3_vfs* vfs, int n, char* out) {
  return inner_vfs(vfs)->xRandomness(inner_vfs(vfs), n, out);
}
int vfs_sleep(sqlite3_vfs* vfs, int micros) {
  return inner_vfs(vfs)->xSleep(inner_vfs(vfs), micros);
}
int vfs_current_time(sqlite3_vfs* vfs, double* out) {
  return inner_vfs(vfs)->xCurrentTime(inner_vfs(vfs), out);
}
int vfs_get_last_error(sqlite3_vfs* vfs, int n, char* out) {
  return inner_vfs(vfs)->xGetLastError(inner_vfs(vfs), n, out);
}
int vfs_current_time_int64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  return inner_vfs(vfs)->xCurrentTimeInt64(inner_vfs(vfs), out);
}

sqlite3_vfs g_vfs{};

}  // namespace

const char* buffered_wal_vfs() {
  static std::once_flag once;
  std::call_once(once, [] {
    sqlite3_vfs* inner = sqlite3_vfs_find(nullptr);
    if (inner == nullptr || inner->iVersion < 2) {
      throw StorageError(
          "The server could not set up its database layer: SQLite has no default VFS");
    }
    g_vfs.iVersion = 2;  // not the system-call overrides of version 3
    g_vfs.szOsFile = static_cast<int>(kInnerOffset) + inner->szOsFile;
    g_vfs.mxPathname = inner->mxPathname;
    g_vfs.zName = kVfsName;
    g_vfs.pAppData = inner;
    g_vfs.xOpen = vfs_open;
    g_vfs.xDelete = vfs_delete;
    g_vfs.xAccess = vfs_access;
    g_vfs.xFullPathname = vfs_full_pathname;
    g_vfs.xDlOpen = vfs_dl_open;
    g_vfs.xDlError = vfs_dl_error;
    g_vfs.xDlSym = vfs_dl_sym;
    g_vfs.xDlClose = vfs_dl_close;
    g_vfs.xRandomness = vfs_randomness;
    g_vfs.xSleep = vfs_sleep;
    g_vfs.xCurrentTime = vfs_current_time;
    g_vfs.xGetLastError = vfs_get_last_error;
    g_vfs.xCurrentTimeInt64 = vfs_current_time_int64;
    if (const int rc = sqlite3_vfs_register(&g_vfs, 0); rc != SQLITE_OK) {
      throw StorageError(std::string("The server could not set up its database layer: ") +
                         sqlite3_errstr(rc));
    }
  });
  return kVfsName;
}

WalBufferCounts wal_buffer_counts() noexcept {
  return {g_asked.load(std::memory_order_relaxed), g_written.load(std::memory_order_relaxed)};
}

}  // namespace kith::server
