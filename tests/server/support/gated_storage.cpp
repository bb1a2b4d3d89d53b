#include "support/gated_storage.hpp"

#include <algorithm>
#include <thread>
#include <utility>

namespace kith::test {

using namespace kith::server;

void GatedStorage::close_gate() {
  std::lock_guard lock(mutex_);
  closed_ = true;
}

void GatedStorage::open_gate() {
  {
    std::lock_guard lock(mutex_);
    closed_ = false;
  }
  changed_.notify_all();
}

void GatedStorage::wait_until_held() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return held_ > 0; });
}

void GatedStorage::fail_next_commit(std::string message) {
  std::lock_guard lock(mutex_);
  fail_next_ = std::move(message);
}

std::vector<std::vector<std::uint64_t>> GatedStorage::commits() {
  std::lock_guard lock(mutex_);
  return commits_;
}

bool GatedStorage::committed(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  for (const auto& c : commits_) {
    if (std::find(c.begin(), c.end(), id) != c.end()) return true;
  }
  return false;
}

void GatedStorage::commit(std::span<const WriteBatch> batches) {
  std::optional<std::string> fail;
  {
    std::unique_lock lock(mutex_);
    ++held_;
    changed_.notify_all();
    changed_.wait(lock, [&] { return !closed_; });
    --held_;
    fail = std::exchange(fail_next_, std::nullopt);
  }
  if (fail) throw StorageError(*fail);
  if (delay_.count() > 0) std::this_thread::sleep_for(delay_);
  if (inner_) inner_->commit(batches);  // throws: nothing recorded, as nothing was stored
  std::vector<std::uint64_t> ids;
  for (const WriteBatch& b : batches) ids.push_back(b.fetches.empty() ? 0 : b.fetches[0].at_ms);
  std::lock_guard lock(mutex_);
  commits_.push_back(std::move(ids));
}

std::optional<PlanSnapshot> GatedStorage::load_plan(const PlanId& plan) {
  return inner_->load_plan(plan);
}
std::optional<OpRef> GatedStorage::find_op(const PlanId& plan, const OpId& op) {
  op_lookups_ += 1;
  return inner_->find_op(plan, op);
}
std::vector<StoredOp> GatedStorage::ops_after(const PlanId& plan, std::uint64_t after,
                                              std::uint64_t up_to,
                                              const std::vector<Section>& sections,
                                              std::size_t limit) {
  return inner_->ops_after(plan, after, up_to, sections, limit);
}
std::optional<StoredHead> GatedStorage::head_at_or_below(const PlanId& plan,
                                                         const ChainKey& chain,
                                                         std::uint64_t seq) {
  return inner_->head_at_or_below(plan, chain, seq);
}
std::map<Section, SectionChecksum> GatedStorage::checksums_at(const PlanId& plan,
                                                              std::uint64_t seq) {
  return inner_->checksums_at(plan, seq);
}
std::vector<Bytes> GatedStorage::membership_from(const PlanId& plan, std::uint64_t from,
                                                 std::size_t limit) {
  return inner_->membership_from(plan, from, limit);
}
std::vector<StoredEnvelope> GatedStorage::envelopes_for(const PlanId& plan,
                                                        const Bytes& recipient) {
  return inner_->envelopes_for(plan, recipient);
}
std::vector<FetchRecord> GatedStorage::fetch_log(const PlanId& plan, std::uint64_t after,
                                                 std::size_t limit) {
  return inner_->fetch_log(plan, after, limit);
}
std::optional<DeviceRecord> GatedStorage::find_device(const DeviceId& device) {
  return inner_->find_device(device);
}

std::vector<server::AccountPlan> GatedStorage::plans_of(const server::AccountId& account,
                                                        const std::optional<server::PlanId>& after,
                                                        std::size_t limit) {
  return inner_->plans_of(account, after, limit);
}

}  // namespace kith::test
