#include "group_commit.hpp"

#include <algorithm>
#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <utility>

namespace kith::server {
namespace {

GroupCommitter::Options sane(GroupCommitter::Options options) {
  // A limit of 0 would let no batch into a transaction, and the writer would spin.
  options.max_batches_per_commit = std::max<std::size_t>(options.max_batches_per_commit, 1);
  return options;
}

// A callback that throws must not end the writer thread: every later batch would wait forever.
// There is no one to report the exception to, so it is dropped.
template <class F, class... Args>
void call_quietly(const F& f, Args&&... args) noexcept {
  try {
    f(std::forward<Args>(args)...);
  } catch (...) {
  }
}

}  // namespace

GroupCommitter::GroupCommitter(Storage& storage, Options options, OnCommit on_commit)
    : storage_(storage),
      options_(sane(options)),
      on_commit_(std::move(on_commit)),
      writer_([this] { run(); }) {}

GroupCommitter::~GroupCommitter() { drain(); }

void GroupCommitter::submit(WriteBatch batch, Done done, StillValid still_valid) {
  enqueue({std::move(batch), std::move(done), std::move(still_valid), {}});
}

void GroupCommitter::submit_deferred(Make make, Done done) {
  enqueue({{}, std::move(done), {}, std::move(make)});
}

void GroupCommitter::enqueue(Pending pending) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      queue_.push_back(std::move(pending));
      // Under the lock: the committer cannot be drained and destroyed between push and notify.
      wake_.notify_one();
      return;
    }
  }
  const StorageError error("The server is shutting down; the write was not stored");
  if (pending.done) call_quietly(pending.done, &error);
}

void GroupCommitter::drain() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  // From a `done`: joining itself would deadlock; the writer ends after the queue is empty.
  if (std::this_thread::get_id() == writer_.get_id()) return;
  std::call_once(joined_, [this] { writer_.join(); });
}

void GroupCommitter::run() {
  std::vector<WriteBatch> batches;
  std::vector<Done> dones;
  std::vector<Done> withdrawn;
  std::vector<std::pair<std::size_t, Make>> deferred;  // (index in batches, its maker)
  const StorageError superseded(kSuperseded);
  for (;;) {
    std::size_t ops = 0;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued is committed
      // A prefix of the queue, so that batches commit in submission order.
      while (!queue_.empty() && batches.size() < options_.max_batches_per_commit) {
        Pending& next = queue_.front();
        // Checked with the queue locked, which only delays submitters: the checks are cheap,
        // and they run on this thread, after every earlier failure has been reported.
        if (next.still_valid && !next.still_valid()) {
          withdrawn.push_back(std::move(next.done));
          queue_.pop_front();
          continue;
        }
        const std::size_t n = next.batch.ops.size();
        if (!batches.empty() && ops + n > options_.max_ops_per_commit) break;
        ops += n;
        if (next.make) deferred.emplace_back(batches.size(), std::move(next.make));
        batches.push_back(std::move(next.batch));
        dones.push_back(std::move(next.done));
        queue_.pop_front();
      }
    }
    // Withdrawn batches were queued before the ones about to commit: report them first.
    for (const Done& done : withdrawn) {
      if (done) call_quietly(done, &superseded);
    }
    withdrawn.clear();
    if (batches.empty()) continue;
    for (auto& [at, make] : deferred) {
      // A maker that throws leaves its batch empty; its `done` still reports the commit.
      try {
        batches[at] = make();
        ops += batches[at].ops.size();
      } catch (...) {
      }
    }
    deferred.clear();
    commit_group(batches, dones, ops);
    batches.clear();
    dones.clear();
  }
}

void GroupCommitter::commit_group(std::vector<WriteBatch>& batches, std::vector<Done>& dones,
                                  std::size_t ops) {
  const auto start = std::chrono::steady_clock::now();
  std::optional<StorageError> error;
  try {
    storage_.commit(batches);
  } catch (const StorageError& e) {
    error.emplace(e);
  } catch (const std::exception& e) {
    // Storage promises StorageError only; anything else (bad_alloc) still fails every batch.
    error.emplace(std::string("The server could not store the write: ") + e.what());
  } catch (...) {
    error.emplace("The server could not store the write (an unknown error)");
  }
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  if (!error && on_commit_) call_quietly(on_commit_, batches.size(), ops, took.count());
  // The batches' memory goes before the callbacks run; they only need the outcome.
  batches.clear();
  const StorageError* outcome = error ? &*error : nullptr;
  const auto run_dones = [&] {
    for (const Done& done : dones) {
      if (done) call_quietly(done, outcome);
    }
  };
  if (options_.around_dones) {
    call_quietly(options_.around_dones, run_dones);
  } else {
    run_dones();
  }
}

}  // namespace kith::server
