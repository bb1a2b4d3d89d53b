// SyncService: plan discovery (ListPlans), from the account -> plans index (plan_index.hpp).
#include "sync_service.hpp"
#include "sync_service_plan.hpp"

namespace kith::server {
namespace {

// A page when the client lets the server choose: ~80 bytes a plan, far under a message's 1 MiB.
constexpr std::size_t kDefaultPlansPerPage = 500;

}  // namespace

kith::v1::ServerMessage SyncService::list_plans(const Peer& peer, std::uint64_t request_id,
                                                const kith::v1::ListPlans& request) {
  // The decoder has checked after_plan_id (empty or 16 bytes) and limit (at most 1000).
  const std::size_t limit = request.limit() == 0 ? kDefaultPlansPerPage : request.limit();
  std::optional<PlanId> after;
  if (!request.after_plan_id().empty()) {
    after = PlanId::from_bytes(view(request.after_plan_id()));
  }
  // Only the authenticated account's own rows: whoever asks learns nothing of other accounts.
  auto rows = storage_.plans_of(peer.who().account, after, limit + 1);
  const std::uint64_t now = options_.now_ms();
  kith::v1::ServerMessage out;
  out.set_request_id(request_id);
  auto* list = out.mutable_plan_list();
  list->set_more(rows.size() > limit);
  if (rows.size() > limit) rows.resize(limit);
  for (const AccountPlan& row : rows) {
    auto* p = list->add_plans();
    p->set_plan_id(as_string(row.plan.bytes()));
    p->set_owner(row.owner);
    p->set_owner_account_id(as_string(row.owner_account.bytes()));
    p->set_created_at_ms(row.created_at_ms);
    p->set_expires_at_ms(row.expires_at_ms);
    p->set_expired(row.expires_at_ms != 0 && now >= row.expires_at_ms);
  }
  return out;
}

}  // namespace kith::server
