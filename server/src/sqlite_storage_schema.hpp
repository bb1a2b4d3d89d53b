// The schema of kithd's SQLite database (sqlite_storage.hpp): how a file is recognised, the
// ordered migration steps, and the check that a file holds what the newest schema needs. Used by
// SqliteStorage when it opens a file; kept apart as the device store keeps its store_schema.
//
// Every function throws StorageError with a sentence naming the file (or sync::sqlite::Error,
// which SqliteStorage turns into one).
#pragma once

#include <cstdint>
#include <string>

#include "storage.hpp"

namespace kith::sync::sqlite {
class Database;
}

namespace kith::server::storage_schema {

// PRAGMA application_id of a kithd database: "KTHD" in ASCII.
inline constexpr std::int64_t kApplicationId = 0x4B544844;

// The schema version this kithd writes (the last migration step).
int newest() noexcept;

// Reads (never writes) what the file is. Returns its schema version, or 0 for a new, empty file.
// Throws for a file that is not an SQLite database, one of another application, one written by a
// newer kithd, or one that says it is ours but has no schema version.
int inspect(sync::sqlite::Database& db);

// Applies the steps after `from_version` (what inspect returned) up to `to_version` (tests make
// files of an older schema with it), each in its own IMMEDIATE transaction that re-reads the
// version first (another kithd may have migrated meanwhile).
void migrate(sync::sqlite::Database& db, int from_version, int to_version = newest());

// Throws (damaged) unless every table and index of the newest schema is there.
void check(sync::sqlite::Database& db);

// A time of the plan index (created_at_ms, expires_at_ms) as SQLite stores it. The values come
// from signed entries whose clocks a member chose; one past 2^63 - 1 ms (some 292 million
// years) is kept as 2^63 - 1 rather than failing the commit of a push the log accepted.
std::int64_t index_time(std::uint64_t ms) noexcept;

// Throws the StorageError for a damaged database: "The server database <path> is damaged
// (<what>); stop kithd and restore the file from a backup".
[[noreturn]] void damaged(const std::string& path, const std::string& what);

}  // namespace kith::server::storage_schema
