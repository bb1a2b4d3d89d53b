// A Storage for tests of what sits above it (the group committer, the sync service): it records
// the tag of each committed batch (the `at_ms` of its first fetch record, 0 without one), can
// hold commits at a gate so that a test decides what is queued when the writer takes the next
// group, can fail the next commit, and passes everything on to a real storage when given one.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "storage.hpp"

namespace kith::test {

class GatedStorage : public server::Storage {
 public:
  explicit GatedStorage(server::Storage* inner = nullptr) : inner_(inner) {}

  void close_gate();
  void open_gate();
  // Waits until a commit is held at the gate.
  void wait_until_held();
  void set_delay(std::chrono::microseconds delay) { delay_ = delay; }
  // The next commit throws StorageError(`message`) after the gate, storing nothing.
  void fail_next_commit(std::string message);

  std::vector<std::vector<std::uint64_t>> commits();
  bool committed(std::uint64_t id);
  // How many times find_op() was called.
  std::size_t op_lookups() const noexcept { return op_lookups_; }

  void commit(std::span<const server::WriteBatch> batches) override;
  std::optional<server::PlanSnapshot> load_plan(const server::PlanId& plan) override;
  std::optional<server::OpRef> find_op(const server::PlanId& plan,
                                       const server::OpId& op) override;
  std::vector<server::StoredOp> ops_after(const server::PlanId& plan, std::uint64_t after,
                                          std::uint64_t up_to,
                                          const std::vector<server::Section>& sections,
                                          std::size_t limit) override;
  std::optional<server::StoredHead> head_at_or_below(const server::PlanId& plan,
                                                     const server::ChainKey& chain,
                                                     std::uint64_t seq) override;
  std::map<server::Section, server::SectionChecksum> checksums_at(const server::PlanId& plan,
                                                                  std::uint64_t seq) override;
  std::vector<server::Bytes> membership_from(const server::PlanId& plan, std::uint64_t from,
                                             std::size_t limit) override;
  std::vector<server::StoredEnvelope> envelopes_for(const server::PlanId& plan,
                                                    const server::Bytes& recipient) override;
  std::vector<server::FetchRecord> fetch_log(const server::PlanId& plan, std::uint64_t after,
                                             std::size_t limit) override;
  std::optional<server::DeviceRecord> find_device(const server::DeviceId& device) override;
  std::vector<server::AccountPlan> plans_of(const server::AccountId& account,
                                            const std::optional<server::PlanId>& after,
                                            std::size_t limit) override;

 private:
  server::Storage* inner_;
  std::chrono::microseconds delay_{0};
  std::mutex mutex_;
  std::condition_variable changed_;
  bool closed_ = false;
  int held_ = 0;
  std::optional<std::string> fail_next_;
  std::vector<std::vector<std::uint64_t>> commits_;
  std::atomic<std::size_t> op_lookups_{0};
};

}  // namespace kith::test
