// kithd's storage alone: SqliteStorage::commit as the group-commit writer calls it, without the
// network, TLS or signature checks around it, so that a change to the storage can be measured
// without the noise of a whole kithd_load run (bench/README.md, "kithd storage").
//
// Each benchmark opens a new database in a temporary directory, creates 64 plans, then commits
// group after group of batches, as kithd_load's scenarios make the writer do:
// - BM_CommitBatches: 44 batches of 100 ops each per commit (the `batch` scenario's mean);
// - BM_CommitSingleOps: 64 batches of one op each per commit (the `latency` scenario at
//   5,000 ops/s).
// Ops are ~300-byte bodies and 139-byte headers with random op ids, one signed head per batch.
// Per commit, Time is wall time and CPU the committing thread's CPU time (the WAL checkpoint
// thread is not in it); items_per_second and cpu_per_op are ops per second of that CPU time and
// its inverse. The argument is synchronous: 1 = FULL (kithd's default: every commit fsyncs),
// 0 = NORMAL.
//
// Built with the `release` preset: build-release/bench/kith_server_storage_bench.
#include <benchmark/benchmark.h>
#include <sodium.h>

#include <memory>
#include <vector>

#include "sqlite_storage.hpp"
#include "support/temp_dir.hpp"

namespace ks = kith::server;
using kith::crypto::Bytes;

namespace {

constexpr std::size_t kPlans = 64;

Bytes random_bytes(std::size_t n) {
  Bytes b(n);
  randombytes_buf(b.data(), b.size());
  return b;
}

struct Run {
  kith::test::TempDir dir{"kith-storage-bench"};
  std::unique_ptr<ks::SqliteStorage> storage;
  std::vector<ks::PlanId> plans;
  std::vector<std::uint64_t> next_seq;
  ks::DeviceId author = ks::DeviceId::from_bytes(random_bytes(32));
  Bytes header = random_bytes(139);
  Bytes body = random_bytes(300);

  explicit Run(bool full) {
    ks::SqliteStorage::Options options;
    options.synchronous =
        full ? ks::SqliteStorage::Options::Sync::kFull : ks::SqliteStorage::Options::Sync::kNormal;
    storage = std::make_unique<ks::SqliteStorage>(dir / "kithd.db", options);
    for (std::size_t i = 0; i < kPlans; ++i) {
      plans.push_back(ks::PlanId::random());
      next_seq.push_back(1);
      ks::WriteBatch genesis;
      genesis.plan = plans.back();
      genesis.membership = {{0, random_bytes(200)}};
      storage->commit({&genesis, 1});
    }
  }

  // `batches` batches of `ops` ops each, plan after plan.
  std::vector<ks::WriteBatch> group(std::size_t batches, std::size_t ops, std::size_t& plan) {
    std::vector<ks::WriteBatch> out(batches);
    for (ks::WriteBatch& b : out) {
      const std::size_t p = plan++ % kPlans;
      b.plan = plans[p];
      for (std::size_t i = 0; i < ops; ++i) {
        ks::StoredOp o;
        o.seq = next_seq[p]++;
        o.op_id = ks::OpId::random();
        o.section = kith::sync::Section::parse("notes");
        o.author = author;
        o.author_seq = o.seq;
        o.epoch = 1;
        randombytes_buf(o.hash.data(), o.hash.size());
        o.section_count = o.seq;
        randombytes_buf(o.section_digest.data(), o.section_digest.size());
        o.header = header;
        o.body = body;
        b.ops.push_back(std::move(o));
      }
      b.heads.push_back({author,
                         kith::sync::Section::parse("notes"),
                         b.ops.back().author_seq,
                         random_bytes(180),
                         {}});
    }
    return out;
  }
};

void commit_groups(benchmark::State& state, std::size_t batches, std::size_t ops) {
  Run run(state.range(0) != 0);
  std::size_t plan = 0;
  std::int64_t committed = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto group = run.group(batches, ops, plan);
    state.ResumeTiming();
    run.storage->commit(group);
    committed += static_cast<std::int64_t>(batches * ops);
  }
  state.SetItemsProcessed(committed);
  state.counters["cpu_per_op"] = benchmark::Counter(
      static_cast<double>(committed), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// 136 groups of 4,400 ops: ~600,000 ops, what a 12-second `batch` run commits.
void BM_CommitBatches(benchmark::State& state) { commit_groups(state, 44, 100); }
// 5,000 groups of 64 ops: 320,000 ops.
void BM_CommitSingleOps(benchmark::State& state) { commit_groups(state, 64, 1); }

}  // namespace

BENCHMARK(BM_CommitBatches)->Arg(1)->Arg(0)->Iterations(136)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CommitSingleOps)->Arg(1)->Arg(0)->Iterations(5000)->Unit(benchmark::kMicrosecond);

int main(int argc, char** argv) {
  if (sodium_init() < 0) return 1;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
