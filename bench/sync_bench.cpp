// Benchmarks of what a device does with every op it receives: verify the author's chain,
// decrypt the body, merge it into the plan.
//
// BM_ApplyOps is the target in DESIGN.md's terms: "in-memory apply (verify + decrypt + merge)
// of 100k ops of ~300 B from 5 authors in batches of 100, >= 200k ops/s on one core". Five
// authors each write 20k ops in the `support` section: one in ten creates a record (create plus
// a ~200-byte `text`), the rest set one field of a random record of the shared pool to a
// ~200-byte value, naming the version they replace. Every op is sealed, chained and covered by
// signed heads outside the timed region. Two layouts of the same ops:
//   /authors_per_batch:1  each batch is one author's push: 100 ops and 1 signed head
//   /authors_per_batch:5  each batch mixes 20 ops of each author: 100 ops and 5 signed heads
// The timed region makes a fresh ChainVerifier and PlanState and feeds every batch:
// ChainVerifier::add, then open_op and PlanState::apply for each accepted op.
//
// The BM_Stage_* benchmarks time each stage of that loop alone over the same ops, so a shortfall
// can be traced to a stage without a profiler: ChainVerifier::add (op parse, hash, bookkeeping
// and head signatures), open_op (AEAD open and body parse) and PlanState::apply.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "kith/crypto/aead.hpp"
#include "kith/crypto/sign.hpp"
#include "kith/sync/chain.hpp"
#include "kith/sync/op.hpp"
#include "kith/sync/plan_state.hpp"

namespace ks = kith::sync;
namespace kc = kith::crypto;

namespace {

constexpr std::size_t kAuthors = 5;
constexpr std::size_t kOpsPerAuthor = 20'000;
constexpr std::size_t kBatchOps = 100;
constexpr std::size_t kValueSize = 175;  // a sealed body of ~300 bytes
constexpr const char* kFields[] = {"text", "who", "when"};

struct Batch {
  std::vector<ks::Op> ops;
  std::vector<ks::SignedHead> heads;
};

struct Author {
  explicit Author(const ks::PlanId& plan)
      : writer(plan, key), device(ks::DeviceId::from_bytes(key.public_key().bytes())) {}
  kc::SigningKey key = kc::SigningKey::generate();
  ks::ChainWriter writer;
  ks::DeviceId device;
  ks::AuthorRights rights{ks::AccountId::random(), true};
  ks::HlcClock clock;
};

// Every op of one layout, sealed and chained, plus what each stage benchmark needs.
struct Workload {
  ks::PlanId plan = ks::PlanId::random();
  ks::Section section = ks::Section::parse("support");
  kc::SectionKey key = kc::SectionKey::generate();
  std::vector<std::unique_ptr<Author>> authors;
  std::map<ks::DeviceId, ks::AuthorRights> rights;
  std::vector<Batch> batches;
  std::size_t ops = 0, heads = 0, header_bytes = 0, body_bytes = 0;
  mutable bool warmed = false;  // BM_ApplyOps ran one untimed pass

  explicit Workload(std::size_t authors_per_batch) {
    std::mt19937_64 rng(1);
    auto value = [&] {
      std::string v(kValueSize, ' ');
      for (auto& c : v) c = static_cast<char>('a' + rng() % 26);
      return v;
    };
    for (std::size_t a = 0; a < kAuthors; ++a) {
      authors.push_back(std::make_unique<Author>(plan));
      rights.emplace(authors.back()->device, authors.back()->rights);
    }
    std::vector<ks::RecordId> pool;
    std::map<std::pair<ks::RecordId, std::string>, ks::VersionId> latest;
    std::uint64_t now = 1'700'000'000'000;

    auto write = [&](Author& author) {
      ks::OpHeader h;
      h.plan = plan;
      h.op_id = ks::OpId::random();
      h.section = section;
      h.clock = author.clock.tick(++now);
      author.writer.stamp(h);
      ks::OpBody body;
      if (pool.size() < 50 || rng() % 10 == 0) {
        ks::RecordId id = ks::RecordId::random();
        body.mutations.push_back({ks::Mutation::Kind::kCreate, id, "support", "", "", {}});
        body.mutations.push_back({ks::Mutation::Kind::kSet, id, "", "text", value(), {}});
        latest[{id, "text"}] = {h.op_id, 1};
        pool.push_back(id);
      } else {
        const ks::RecordId& id = pool[rng() % pool.size()];
        std::string field = kFields[rng() % 3];
        std::vector<ks::VersionId> seen;
        auto it = latest.find({id, field});
        if (it != latest.end()) seen.push_back(it->second);
        body.mutations.push_back({ks::Mutation::Kind::kSet, id, "", field, value(), seen});
        latest[{id, field}] = {h.op_id, 0};
      }
      ks::Op op = ks::seal_op(h, body, key);
      author.writer.append(h, op);
      header_bytes += op.header.size();
      body_bytes += op.body.size();
      ++ops;
      return op;
    };

    const std::size_t per_author = kBatchOps / authors_per_batch;
    const std::size_t total_batches = kAuthors * kOpsPerAuthor / kBatchOps;
    for (std::size_t b = 0; b < total_batches; ++b) {
      Batch batch;
      for (std::size_t k = 0; k < authors_per_batch; ++k) {
        Author& author = *authors[(b * authors_per_batch + k) % kAuthors];
        for (std::size_t i = 0; i < per_author; ++i) batch.ops.push_back(write(author));
        batch.heads.push_back(*author.writer.head(section));
        ++heads;
      }
      batches.push_back(std::move(batch));
    }
  }
};

const Workload& workload(std::size_t authors_per_batch) {
  static std::map<std::size_t, std::unique_ptr<Workload>> made;
  auto& w = made[authors_per_batch];
  if (!w) w = std::make_unique<Workload>(authors_per_batch);
  return *w;
}

void report(benchmark::State& state, const Workload& w) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * w.ops));
  state.counters["op_bytes"] =
      static_cast<double>(w.header_bytes + w.body_bytes) / static_cast<double>(w.ops);
  state.counters["body_bytes"] = static_cast<double>(w.body_bytes) / static_cast<double>(w.ops);
  state.counters["heads"] = static_cast<double>(w.heads);
}

// The whole pipeline: verify + decrypt + merge of every batch into `verifier` and `plan`.
// Returns how many ops were applied, or nullopt if one did not open. Not inlined, so that a
// profiler can be pointed at it (valgrind --tool=callgrind --toggle-collect='*apply_all*').
[[gnu::noinline]] std::optional<std::size_t> apply_all(const Workload& w,
                                                       ks::ChainVerifier& verifier,
                                                       ks::PlanState& plan) {
  std::size_t applied = 0;
  for (const Batch& batch : w.batches) {
    ks::ChainOutcome out = verifier.add(batch.ops, batch.heads);
    for (const ks::AcceptedOp& a : out.accepted) {
      auto body = ks::open_op(a.op, w.key);
      if (!body) return std::nullopt;
      plan.apply(a.header, std::move(*body), w.rights.at(a.header.author));
      ++applied;
    }
  }
  return applied;
}

void BM_ApplyOps(benchmark::State& state) {
  const Workload& w = workload(static_cast<std::size_t>(state.range(0)));
  if (!w.warmed) {
    // One untimed pass first: the very first one also page-faults in the ~100 MB the verifier
    // and the plan grow to, which made the first repetition ~30% slower than the others.
    ks::ChainVerifier verifier(w.plan);
    ks::PlanState plan;
    if (apply_all(w, verifier, plan) != w.ops) {
      state.SkipWithError("not every op was accepted, opened and applied");
      return;
    }
    w.warmed = true;
  }
  for (auto _ : state) {
    state.PauseTiming();
    auto verifier = std::make_unique<ks::ChainVerifier>(w.plan);
    auto plan = std::make_unique<ks::PlanState>();
    state.ResumeTiming();

    auto applied = apply_all(w, *verifier, *plan);

    state.PauseTiming();
    if (applied != w.ops || verifier->pending_ops() != 0) {
      state.SkipWithError("not every op was accepted, opened and applied");
      return;
    }
    benchmark::DoNotOptimize(plan->version_count());
    verifier.reset();  // freeing 100k map nodes is not part of applying
    plan.reset();
    state.ResumeTiming();
  }
  report(state, w);
}
BENCHMARK(BM_ApplyOps)
    ->ArgName("authors_per_batch")
    ->Arg(1)
    ->Arg(5)
    ->MinTime(2.0)  // a few passes per repetition: one pass is ~0.5 s
    ->Unit(benchmark::kMillisecond);

// Stage 1 alone: ChainVerifier::add over every batch (op header parse, op hash, bookkeeping,
// one Ed25519 verification per head).
void BM_Stage_ChainVerify(benchmark::State& state) {
  const Workload& w = workload(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    state.PauseTiming();
    auto verifier = std::make_unique<ks::ChainVerifier>(w.plan);
    state.ResumeTiming();
    std::size_t accepted = 0;
    for (const Batch& batch : w.batches) {
      accepted += verifier->add(batch.ops, batch.heads).accepted.size();
    }
    state.PauseTiming();
    if (accepted != w.ops) state.SkipWithError("not every op was accepted");
    verifier.reset();
    state.ResumeTiming();
  }
  report(state, w);
}
BENCHMARK(BM_Stage_ChainVerify)
    ->ArgName("authors_per_batch")
    ->Arg(1)
    ->Arg(5)
    ->MinTime(2.0)
    ->Unit(benchmark::kMillisecond);

// Stage 2 alone: open_op (commitment check, XChaCha20-Poly1305 open, body parse).
void BM_Stage_Open(benchmark::State& state) {
  const Workload& w = workload(1);
  for (auto _ : state) {
    for (const Batch& batch : w.batches) {
      for (const ks::Op& op : batch.ops) {
        auto body = ks::open_op(op, w.key);
        benchmark::DoNotOptimize(body);
      }
    }
  }
  report(state, w);
}
BENCHMARK(BM_Stage_Open)->MinTime(2.0)->Unit(benchmark::kMillisecond);

// Stage 3 alone: PlanState::apply of already decrypted bodies, in chain order.
void BM_Stage_Merge(benchmark::State& state) {
  const Workload& w = workload(1);
  std::vector<std::pair<ks::OpHeader, ks::OpBody>> opened;
  for (const Batch& batch : w.batches) {
    for (const ks::Op& op : batch.ops) {
      opened.emplace_back(ks::OpHeader::parse(op.header), *ks::open_op(op, w.key));
    }
  }
  for (auto _ : state) {
    state.PauseTiming();
    auto plan = std::make_unique<ks::PlanState>();
    state.ResumeTiming();
    for (const auto& [header, body] : opened) plan->apply(header, body, w.rights.at(header.author));
    state.PauseTiming();
    benchmark::DoNotOptimize(plan->version_count());
    plan.reset();
    state.ResumeTiming();
  }
  report(state, w);
}
BENCHMARK(BM_Stage_Merge)->MinTime(2.0)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
