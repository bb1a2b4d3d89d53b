// Local-store catch-up: a device that was offline receives 100,000 ops (~300 B each, from 5
// authors, each editing its own records on from its last version) in batches of 1,000, as a
// server sends them, and applies them through the real
// client engine: chain and head checks, membership checks, decryption, merge, and one durable
// SQLite commit (WAL, synchronous=FULL) per batch with the cursor it reaches.
// Target (issue 3): at most 3 s for the 100,000.
//
// Built with the `release` preset: build-release/bench/kith_store_bench.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>

#include "kith/sync/engine.hpp"
#include "kith/sync/section_digest.hpp"

namespace ks = kith::sync;
namespace kc = kith::crypto;
namespace fs = std::filesystem;

namespace {

constexpr int kAuthors = 5;
constexpr int kOps = 100'000;
constexpr int kBatch = 1'000;
constexpr int kRecordsPerAuthor = 200;

std::string w(kc::ByteView b) { return std::string(b.begin(), b.end()); }

struct Workload {
  kc::SigningKey identity = kc::SigningKey::generate();
  std::vector<kc::DeviceKeys> authors;
  kc::DeviceKeys reader = kc::DeviceKeys::generate();
  ks::PlanId plan = ks::PlanId::random();
  std::vector<kith::v1::ServerMessage> messages;

  Workload() {
    for (int i = 0; i < kAuthors; ++i) authors.push_back(kc::DeviceKeys::generate());
    auto cert = [&](const kc::DeviceKeys& d) {
      return kc::DeviceCertificate::issue(identity, d.signing.public_key(),
                                          d.encryption.public_key(), 1);
    };
    auto dev = [](const kc::DeviceKeys& d) {
      return ks::DeviceId::from_bytes(d.signing.public_key().bytes());
    };
    // Membership: the plan, then the other authors' devices and the reader's.
    ks::MembershipLog log(plan);
    kith::v1::ServerMessage mb;
    mb.mutable_membership_batch()->set_plan_id(w(plan.bytes()));
    auto add = [&](ks::MembershipEntry e) {
      e.sign(authors[0].signing);
      log.append(e);
      mb.mutable_membership_batch()->add_entries(w(e.serialize()));
    };
    auto first = log.next(ks::MembershipEntry::Kind::kPlanCreated, dev(authors[0]), 1);
    first.certificate = cert(authors[0]);
    add(first);
    for (int i = 1; i <= kAuthors; ++i) {
      const kc::DeviceKeys& d = i < kAuthors ? authors[static_cast<std::size_t>(i)] : reader;
      auto e = log.next(ks::MembershipEntry::Kind::kDeviceAdded, dev(authors[0]), 2);
      e.certificate = cert(d);
      add(e);
    }
    messages.push_back(mb);
    // The health key, wrapped for the reader.
    ks::Section health = ks::Section::parse("health");
    ks::KeyRing ring(plan);
    ring.add(health, 1, kc::SectionKey::generate());
    kith::v1::ServerMessage eb;
    eb.mutable_envelope_batch()->set_plan_id(w(plan.bytes()));
    eb.mutable_envelope_batch()->add_envelopes(
        w(ring.wrap(health, 1, reader.encryption.public_key(), authors[0].signing).serialize()));
    messages.push_back(eb);

    // 100,000 ops, round-robin over the authors, as the server would order them.
    std::vector<ks::ChainWriter> writers;
    for (const auto& a : authors) writers.emplace_back(plan, a.signing);
    std::vector<std::vector<ks::RecordId>> records(kAuthors);
    std::map<ks::RecordId, ks::VersionId> last;  // each author edits on from its last version
    const kc::SectionKey& key = *ring.find(health, 1);
    std::string value(200, 'x');
    ks::SectionDigest digest;  // the health section's checksum, as kithd keeps it
    kith::v1::ServerMessage batch;
    for (int n = 0; n < kOps; ++n) {
      auto a = static_cast<std::size_t>(n % kAuthors);
      ks::OpHeader h;
      h.plan = plan;
      h.op_id = ks::OpId::random();
      h.section = health;
      h.epoch = 1;
      h.clock = {1'795'305'600'000 + static_cast<std::uint64_t>(n), 0};
      h.membership_index = log.size();
      writers[a].stamp(h);
      ks::OpBody body;
      if (records[a].size() < kRecordsPerAuthor) {
        records[a].push_back(ks::RecordId::random());
        body.mutations.push_back(
            {ks::Mutation::Kind::kCreate, records[a].back(), "health", "", "", {}});
      }
      value[static_cast<std::size_t>(n) % value.size()] = static_cast<char>('a' + n % 26);
      ks::RecordId target = records[a][static_cast<std::size_t>(n) % records[a].size()];
      std::vector<ks::VersionId> seen;
      if (auto it = last.find(target); it != last.end()) seen.push_back(it->second);
      last[target] = ks::VersionId{h.op_id, static_cast<std::uint16_t>(body.mutations.size())};
      body.mutations.push_back({ks::Mutation::Kind::kSet, target, "", "text", value, seen});
      ks::Op op = ks::seal_op(h, body, key);
      writers[a].append(h, op);
      digest.add(ks::op_hash(op.header, op.body));
      auto* d = batch.mutable_ops_batch()->add_ops();
      d->set_server_seq(static_cast<std::uint64_t>(n) + 1);
      d->mutable_op()->set_header(w(op.header));
      d->mutable_op()->set_body(w(op.body));
      if ((n + 1) % kBatch == 0) {
        auto* ob = batch.mutable_ops_batch();
        ob->set_plan_id(w(plan.bytes()));
        for (auto& wr : writers) {
          auto head = wr.head(health);
          auto* hh = ob->add_heads();
          hh->set_head(w(head->head));
          hh->set_signature(w(head->signature));
        }
        ob->set_up_to_seq(static_cast<std::uint64_t>(n) + 1);
        ob->set_more(n + 1 < kOps);
        messages.push_back(batch);
        batch.Clear();
      }
    }
    kith::v1::ServerMessage done;
    done.mutable_catch_up_complete()->set_plan_id(w(plan.bytes()));
    done.mutable_catch_up_complete()->set_server_seq(kOps);
    auto* sum = done.mutable_catch_up_complete()->add_checksums();
    sum->set_section("health");
    sum->set_op_count(digest.op_count);
    sum->set_digest(w(digest.digest));
    messages.push_back(done);
  }
};

void BM_StoreCatchUp100k(benchmark::State& state) {
  static Workload work;
  fs::path dir = fs::temp_directory_path() / ("kith-store-bench-" + std::to_string(::getpid()));
  for (auto _ : state) {
    state.PauseTiming();
    fs::remove_all(dir);
    fs::create_directories(dir);
    {
      ks::LocalStore store(dir / "store.db", kc::SectionKey::generate());
      ks::SyncEngine engine(
          store, ks::DeviceIdentity::create(kc::DeviceSecrets{work.identity, work.reader}, 1),
          [] { return std::uint64_t{1'795'400'000'000}; });
      std::size_t problems = 0;
      engine.on_event([&](const ks::SyncEvent& e) {
        if (e.kind == ks::SyncEvent::Kind::kProblem) ++problems;
      });
      engine.follow(work.plan, "bench");
      state.ResumeTiming();
      for (const auto& m : work.messages) engine.handle(m);
      state.PauseTiming();
      if (problems != 0 || engine.cursor(work.plan) != kOps ||
          engine.state(work.plan).records().size() != kAuthors * kRecordsPerAuthor) {
        state.SkipWithError("catch-up did not apply every op");
        break;  // timing is paused; the harness must not resume it after an error
      }
    }
    fs::remove_all(dir);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * kOps);
}
BENCHMARK(BM_StoreCatchUp100k)->Unit(benchmark::kMillisecond)->Iterations(1)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
