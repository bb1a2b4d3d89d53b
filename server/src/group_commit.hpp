// The group-commit writer (DESIGN.md §2.4): one thread that commits the WriteBatches that many
// request handlers submit, several per transaction, so that the cost of making a transaction
// durable (an fsync) is shared by every request in it instead of paid by each.
//
// There is no timer: while one transaction commits, new submissions queue up, and the next
// transaction takes everything queued (up to the limits in Options). Under light load each batch
// commits alone and at once; under heavy load transactions grow until they keep up.
//
// Usage: the session layer builds a batch under its plan's lock, submits it before releasing
// the lock (so batches of one plan are queued in sequence order), and acks its client from
// `done`. Batches commit, and their `done`s run, in submission order.
//
// A batch may depend on batches queued before it (the sync service hands out sequence numbers
// and chain tips before they are durable). When a transaction fails, what was queued after it
// may rest on writes that never happened: `still_valid`, checked on the writer thread just
// before a batch joins a transaction, lets the submitter withdraw such batches; they fail with
// kSuperseded and are never written.
//
// Thread-safety: submit() and drain() may be called from any thread. `done` and `on_commit` run
// on the writer thread (except `done` of a submit after drain(): on the submitting thread), with
// nothing of the committer locked, so they may call submit(). They must not block for long: the
// next transaction waits for them. An exception they throw is dropped.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "storage.hpp"

namespace kith::server {

class GroupCommitter {
 public:
  struct Options {
    // A transaction takes batches from the queue until either limit would be passed (a single
    // batch over max_ops_per_commit still commits, alone). They bound a transaction's latency
    // and the time the database's write lock is held.
    std::size_t max_batches_per_commit = 4096;
    std::size_t max_ops_per_commit = 10000;
    // Runs the `done`s of one transaction: it is handed a function that calls them all, and
    // must call it once. Empty: they are called as they are. kithd wraps them in
    // Server::deliver_together, so that what they send reaches each connection at once.
    std::function<void(const std::function<void()>& run_dones)> around_dones;
  };
  // nullptr: the batch is durable. Otherwise why it was not stored: nothing of it was.
  using Done = std::function<void(const StorageError* error)>;
  // Whether a queued batch may still be written; see above. Runs on the writer thread with the
  // queue locked: it must be cheap and must not call submit().
  using StillValid = std::function<bool()>;
  // The message of the error a withdrawn batch gets.
  static constexpr const char* kSuperseded =
      "An earlier write of the same plan failed, and this one depended on it; nothing of it "
      "was stored";
  // After each successful commit: how many batches and ops it held, and how long commit() took.
  using OnCommit = std::function<void(std::size_t batches, std::size_t ops, double seconds)>;

  // Starts the writer thread. `storage` must outlive the committer.
  GroupCommitter(Storage& storage, Options options, OnCommit on_commit = {});
  // drain().
  ~GroupCommitter();
  GroupCommitter(const GroupCommitter&) = delete;
  GroupCommitter& operator=(const GroupCommitter&) = delete;

  // Queues `batch`; `done` is called once, after the transaction holding it commits or fails.
  // After drain() has begun, `done` is called at once with "the server is shutting down".
  void submit(WriteBatch batch, Done done, StillValid still_valid = {});

  // Queues a batch that is made when it joins a transaction: `make` runs on the writer thread,
  // after the transaction's batches are taken from the queue and before it commits, with
  // nothing of the committer locked. For writes that keep gathering while they wait: the
  // fetch-log records of a plan, one batch per plan per transaction however many deliveries
  // there were. It may return an empty batch; it must not call submit() nor throw (what it
  // throws is dropped, and its batch is empty).
  using Make = std::function<WriteBatch()>;
  void submit_deferred(Make make, Done done);

  // Stops accepting batches, commits everything already queued and joins the writer thread.
  // Idempotent; a second caller waits for the first to finish. Called from the writer thread
  // (a `done`), it only stops accepting: the writer finishes the queue on its own.
  void drain();

 private:
  struct Pending {
    WriteBatch batch;
    Done done;
    StillValid still_valid;
    Make make;  // when set, `batch` is made by it (submit_deferred)
  };

  void run();
  // Commits `batches` in one transaction and reports the outcome to each one's `done`.
  void commit_group(std::vector<WriteBatch>& batches, std::vector<Done>& dones, std::size_t ops);
  // submit() and submit_deferred().
  void enqueue(Pending pending);

  Storage& storage_;
  const Options options_;
  const OnCommit on_commit_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Pending> queue_;  // guarded by mutex_
  bool stopping_ = false;      // guarded by mutex_

  std::once_flag joined_;
  std::thread writer_;  // last: starts once everything it uses is constructed
};

}  // namespace kith::server
