// Convergence property test: seeded random schedules through the real sync pipeline.
//
// Each replica is one device of one account. It authors ops with ChainWriter (stamp, seal_op
// under the section key, append), applies them to its own PlanState at once, and pushes them
// with one signed head per section per push to a simulated server: a total-order log of ops
// and heads. Pulling copies the log after the replica's cursor into its network inbox, where
// the ops of one pull are spread over a few batches in a random order, some twice, and some
// heads come one or two batches after the last op they cover (the ops wait as pending). Old
// entries are sometimes delivered again. Each delivered batch goes through the replica's
// ChainVerifier; every accepted op is opened with open_op and applied to the PlanState.
//
// The schedule mixes creating records (health, support, outcome), editing fields of records
// the replica can see (naming `current_versions` as seen, so edits of replicas that have not
// synced are concurrent and conflict), appending activity records and notes, deleting
// (`_deleted` = "1"), resolving conflicts, going offline, pushing, pulling and delivering.
//
// Rights come from the real membership log. The owner's first device creates the plan; every
// other account joins through an invite granting every section (write, or append for family);
// further devices are added by their account's first device. Each replica keeps its own copy of
// the log, brought up to the server's before each pull (as the server sends membership before
// ops). An op carries the log size its author had seen and every replica judges it with
// MembershipLog::check_op. A rights drop is a real grant entry per section (write -> append)
// written by the owner's first device, with cut-offs from what that device has accepted: ops of
// the member beyond them are refused everywhere, the author's own view included, so a replica
// that learns of such an entry re-judges every op it holds. Every member holds every section's
// key (epoch 1).
//
// At the end every replica comes online and pushes, pulls and delivers until nothing moves.
// Then every replica's canonical() bytes and conflicts() must be equal, nothing may be left
// pending, and no ChainProblem (nor an open or apply failure) may have been reported.
//
// Environment:
//   KITH_CONVERGENCE_SCHEDULES=N    play N schedules (default 200); seeds FIRST..FIRST+N-1
//   KITH_CONVERGENCE_FIRST_SEED=S   first seed (default 1)
//   KITH_CONVERGENCE_SEED=S         play only seed S (what a failure message tells you to run)
//   KITH_CONVERGENCE_STEPS=K        steps per schedule (default 160), to shrink a failing one
//   KITH_CONVERGENCE_TRACE=1        print every step of the schedules played
// Every id and key is drawn from the seed, so a seed replays the same schedule and ends in
// the same canonical bytes (only the AEAD nonces, which no decision depends on, differ).
#include "convergence.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <iostream>
#include <sstream>
#include <string>

namespace kith::sync::convergence {
namespace {

// Empty if the outcome converged honestly; otherwise what went wrong.
std::string divergence(const Outcome& o) {
  std::ostringstream s;
  for (const std::string& p : o.problems) s << "problem: " << p << "\n";
  for (std::size_t i = 0; i < o.names.size(); ++i) {
    if (o.pending[i] != 0) s << o.names[i] << " still has " << o.pending[i] << " pending ops\n";
    if (o.canonical[i] != o.canonical[0]) {
      const Bytes& a = o.canonical[0];
      const Bytes& b = o.canonical[i];
      std::size_t at = 0;
      while (at < a.size() && at < b.size() && a[at] == b[at]) ++at;
      s << o.names[i] << "'s canonical state (" << b.size() << " bytes, " << o.versions[i]
        << " versions) differs from " << o.names[0] << "'s (" << a.size() << " bytes, "
        << o.versions[0] << " versions) from byte " << at << "\n";
    }
    if (o.conflicts[i] != o.conflicts[0]) {
      s << o.names[i] << "'s conflicts differ from " << o.names[0] << "'s:\n"
        << o.conflicts[i] << "versus\n"
        << o.conflicts[0];
    }
  }
  return s.str();
}

TEST(Convergence, RandomSchedulesConverge) {
  std::uint64_t first = env_number("KITH_CONVERGENCE_FIRST_SEED").value_or(1);
  std::uint64_t count = env_number("KITH_CONVERGENCE_SCHEDULES").value_or(kDefaultSchedules);
  if (auto only = env_number("KITH_CONVERGENCE_SEED")) {
    first = *only;
    count = 1;
  }

  Stats total;
  int failures = 0;
  for (std::uint64_t seed = first; seed < first + count && failures < 5; ++seed) {
    Outcome o = play(seed);
    for (const auto& [name, n] : o.stats) total[name] += n;
    std::string why = divergence(o);
    if (!why.empty()) {
      ++failures;
      ADD_FAILURE() << "schedule seed " << seed << " did not converge:\n"
                    << why << "Replay it step by step with\n  KITH_CONVERGENCE_SEED=" << seed
                    << " KITH_CONVERGENCE_TRACE=1 <build>/tests/sync/kith_sync_tests"
                       " --gtest_filter=Convergence.RandomSchedulesConverge\n"
                    << "(KITH_CONVERGENCE_STEPS=K replays a shorter prefix of it).";
    }
  }
  std::cout << "[ schedules ] " << count << " from seed " << first << ":";
  for (const auto& [name, n] : total) std::cout << " " << name << " " << n << ";";
  std::cout << "\n";
  if (count >= 50) {
    // The schedules must exercise what they claim to, or passing says little.
    for (const char* what :
         {"duplicates", "batches leaving ops pending", "resolves", "conflicts left at the end",
          "deletes", "edits every replica must ignore", "rights drops", "ops refused by a cut-off",
          "rebuilds after a rights change"}) {
      EXPECT_GT(total[what], 0u) << what;
    }
  }
}

TEST(Convergence, SameSeedReplaysTheSameSchedule) {
  Outcome a = play(42), b = play(42);
  EXPECT_EQ(a.canonical, b.canonical);
  EXPECT_EQ(a.stats, b.stats);
}

TEST(Convergence, ReplicaThatSkipsAnOpDiverges) {
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    Options faulty;
    faulty.skip_one_apply_on = 2;
    Outcome o = play(seed, faulty);
    ASSERT_EQ(o.stats["ops skipped"], 1u) << "seed " << seed;
    EXPECT_TRUE(o.problems.empty()) << "seed " << seed;  // the chain was fine; the merge not
    EXPECT_NE(o.canonical[2], o.canonical[0]) << "seed " << seed;
    EXPECT_NE(divergence(o), "") << "seed " << seed;
  }
}

TEST(Convergence, OpLostByTheNetworkIsReportedAsAGap) {
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    Options faulty;
    faulty.lose_one_op_for = 1;
    Outcome o = play(seed, faulty);
    ASSERT_GT(o.stats["ops lost"], 0u) << "seed " << seed;
    EXPECT_NE(o.canonical[1], o.canonical[0]) << "seed " << seed;
    bool gap = std::any_of(o.problems.begin(), o.problems.end(), [](const std::string& p) {
      return p.find(sync_error_code_name(SyncErrorCode::kChainGap)) != std::string::npos;
    });
    EXPECT_TRUE(gap) << "seed " << seed;
  }
}

}  // namespace
}  // namespace kith::sync::convergence
