// Helpers shared by the local store's tests (local_store_test.cpp, local_store_at_rest_test.cpp,
// local_store_migration_test.cpp): temporary folders, files, ops, and raw SQLite to build fixture
// files and look underneath the store, independently of the store's own code. Sealed values use
// the associated data as docs/STORE.md defines it.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "kith/crypto/bytes.hpp"
#include "kith/sync/error.hpp"
#include "kith/sync/local_store.hpp"

namespace kith::sync::store_test {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "kith-store-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  fs::path operator/(const std::string& name) const { return path_ / name; }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

inline Bytes read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_file(const fs::path& path, ByteView bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

inline bool contains(ByteView haystack, ByteView needle) {
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) !=
         haystack.end();
}

inline Bytes bytes_of(std::string_view text) {
  auto view = crypto::as_bytes(text);
  return Bytes(view.begin(), view.end());
}

inline std::set<std::string> files_in(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.insert(entry.path().filename());
  return names;
}

// The database file and its WAL and shared-memory files, whichever exist.
inline std::vector<fs::path> store_files(const fs::path& db) {
  std::vector<fs::path> out;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    fs::path p = db.string() + suffix;
    if (fs::exists(p)) out.push_back(p);
  }
  return out;
}

inline DeviceId device(std::uint8_t fill) { return DeviceId::from_bytes(Bytes(32, fill)); }

inline StoredOp make_op(const PlanId& plan, std::uint64_t author_seq, std::size_t body_size = 48) {
  StoredOp op;
  op.plan = plan;
  op.section = "notes";
  op.author = device(7);
  op.author_seq = author_seq;
  op.op_id = OpId::random();
  op.header = bytes_of("header-" + std::to_string(author_seq));
  op.body = Bytes(body_size, static_cast<std::uint8_t>(author_seq));
  return op;
}

inline std::vector<OpId> ids_of(const std::vector<StoredOp>& ops) {
  std::vector<OpId> ids;
  for (const auto& op : ops) ids.push_back(op.op_id);
  return ids;
}

// The op as the store returns it: the caller's fields plus the local index the store chose.
inline void expect_same_op(const StoredOp& stored, const StoredOp& put) {
  StoredOp expected = put;
  expected.local_index = stored.local_index;
  EXPECT_EQ(stored, expected);
  EXPECT_GT(stored.local_index, 0u);
}

template <class F>
inline SyncError expect_sync_error(F&& f, SyncErrorCode code) {
  try {
    f();
  } catch (const SyncError& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    return e;
  }
  ADD_FAILURE() << "expected SyncError " << sync_error_code_name(code);
  return SyncError(code, "");
}

// Raw SQLite, for fixtures and for looking underneath the store.
class RawDb {
 public:
  using Param = std::variant<std::int64_t, Bytes, std::string>;

  explicit RawDb(const fs::path& path) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) {
      std::string message = sqlite3_errmsg(db_);
      sqlite3_close(db_);
      throw std::runtime_error("open " + path.string() + ": " + message);
    }
  }
  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void exec(const std::string& sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
      std::string message = error ? error : "?";
      sqlite3_free(error);
      throw std::runtime_error(sql + ": " + message);
    }
  }

  // Runs one statement with parameters; returns each row's columns as text joined by '|'.
  std::vector<std::string> rows(const std::string& sql, const std::vector<Param>& params = {}) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
    }
    for (std::size_t i = 0; i < params.size(); ++i) {
      const int index = static_cast<int>(i + 1);
      if (auto* n = std::get_if<std::int64_t>(&params[i])) {
        sqlite3_bind_int64(stmt, index, *n);
      } else if (auto* b = std::get_if<Bytes>(&params[i])) {
        sqlite3_bind_blob(stmt, index, b->data(), static_cast<int>(b->size()), SQLITE_TRANSIENT);
      } else {
        const auto& s = std::get<std::string>(params[i]);
        sqlite3_bind_text(stmt, index, s.c_str(), -1, SQLITE_TRANSIENT);
      }
    }
    std::vector<std::string> out;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      std::string row;
      for (int c = 0; c < sqlite3_column_count(stmt); ++c) {
        if (c) row += '|';
        const unsigned char* text = sqlite3_column_text(stmt, c);
        row += text ? reinterpret_cast<const char*>(text) : "NULL";
      }
      out.push_back(row);
    }
    std::string message = sqlite3_errmsg(db_);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) throw std::runtime_error(sql + ": " + message);
    return out;
  }

  std::string scalar(const std::string& sql) {
    auto r = rows(sql);
    return r.empty() ? "" : r.front();
  }

 private:
  sqlite3* db_ = nullptr;
};

// docs/STORE.md, "Sealed values": the associated data of a sealed value.
inline Bytes documented_ad(std::string_view table, const PlanId& plan, ByteView row_key) {
  crypto::ByteWriter w;
  w.prefixed("kith/v1/local-store").prefixed(table).raw(plan.bytes()).prefixed(row_key);
  return std::move(w).take();
}

inline Bytes documented_section_row_key(std::string_view section, std::uint64_t epoch) {
  crypto::ByteWriter w;
  w.prefixed(section).u64(epoch);
  return std::move(w).take();
}

inline constexpr std::int64_t kApplicationId = 0x4B495448;  // "KITH"
}  // namespace kith::sync::store_test
