// The local store's schema: how a file is recognised, how the connection is configured, and the
// ordered migration steps (docs/STORE.md). Private to kith_sync; used by local_store.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "kith/sync/sqlite/database.hpp"

namespace kith::sync::sqlite {

// PRAGMA application_id of every Kith store: "KITH" in ASCII.
inline constexpr std::int64_t kStoreApplicationId = 0x4B495448;

// Step `version` takes a file at schema version - 1 to `version`.
struct Migration {
  int version;
  const char* summary;
  const char* sql;
};

// In order; the last one's version is the schema this code writes.
std::span<const Migration> store_migrations() noexcept;
int newest_store_schema() noexcept;

// Per-connection settings that do not write to the file: foreign keys, synchronous=FULL, a
// busy timeout, a distrusted schema (the file may have been tampered with).
void configure_connection(Database& db);

// Reads (never writes) what the file is. Returns its schema version, or 0 for a new, empty
// file. Throws SyncError kSchemaTooNew for a newer Kith store and kStore for anything that is
// not a Kith store (an SQLite file of another application, or not an SQLite file at all).
int inspect_store(Database& db);

// Switches the file to WAL mode (persistent; it writes the file header).
void enable_wal(Database& db);

// Applies the steps after `from_version` (what inspect_store returned), each in its own IMMEDIATE
// transaction that re-reads the version (another process may have migrated meanwhile) and checks
// foreign keys before committing. `after_step(version)` runs inside each step's transaction, for
// rows the step must write that SQL alone cannot make (e.g. sealed values).
void migrate_store(Database& db, int from_version, const std::function<void(int)>& after_step);

}  // namespace kith::sync::sqlite
