// SyncEngine: the owner's access log. Reads come from the server's fetch log; changes from the
// signed ops this device holds; circle changes from the membership log.
#include <algorithm>

#include "engine_plan.hpp"
#include "kith/sync/error.hpp"

namespace kith::sync {

using engine_detail::to_wire;

namespace {

using Kind = MembershipEntry::Kind;

std::string membership_text(const MembershipEntry& e, const MembershipLog& log) {
  auto who = [&](const AccountId& a) { return "member " + a.short_hex(); };
  auto grants_text = [](const std::vector<GrantSpec>& grants) {
    std::string out;
    for (const GrantSpec& g : grants) {
      if (!out.empty()) out += ", ";
      out += g.section.name() + ": " + std::string(permission_name(g.permission));
      if (g.expires_at_ms != 0) out += " (expires)";
    }
    return out;
  };
  switch (e.kind) {
    case Kind::kPlanCreated:
      return "created the plan";
    case Kind::kDeviceAdded:
      return "added a device";
    case Kind::kInviteCreated:
      return "invited someone (" + grants_text(e.grants) + ")";
    case Kind::kInviteAccepted: {
      const InviteInfo* inv = log.invite(e.invite_id);
      return "joined with an invitation" + (inv ? " (" + grants_text(inv->grants) + ")" : "");
    }
    case Kind::kGrant:
      return "gave " + who(e.member) + " " + grants_text(e.grants);
    case Kind::kRevoke:
      return "removed " + who(e.member) + "'s access" +
             (e.section ? " to " + e.section->name() : std::string(" to the plan"));
    case Kind::kKeyRotation:
      return "replaced the key of " + (e.section ? e.section->name() : std::string("a section"));
  }
  return "changed the circle";
}

}  // namespace

kith::v1::ClientMessage SyncEngine::fetch_access_log(const PlanId& plan) {
  Plan& p = plan_ref(plan);
  p.fetch_log_fresh = true;
  kith::v1::ClientMessage m;
  m.set_request_id(next_request_++);
  m.mutable_fetch_log()->set_plan_id(to_wire(p.id.bytes()));
  return m;
}

std::vector<kith::v1::ClientMessage> SyncEngine::handle_access_log(const kith::v1::AccessLog& page) {
  Plan& p = plan_ref(PlanId::from_bytes(crypto::as_bytes(page.plan_id())));
  if (p.fetch_log_fresh) {
    p.fetch_log.clear();
    p.fetch_log_fresh = false;
  }
  for (const auto& e : page.entries()) p.fetch_log.push_back(e);
  if (!page.more()) return {};
  kith::v1::ClientMessage m;
  m.set_request_id(next_request_++);
  m.mutable_fetch_log()->set_plan_id(page.plan_id());
  m.mutable_fetch_log()->set_after(page.next_after());
  return {m};
}

std::vector<AccessEvent> SyncEngine::access_log(const PlanId& plan) const {
  Plan& p = plan_ref(plan);
  std::vector<AccessEvent> out;
  for (const auto& f : p.fetch_log) {
    AccessEvent e;
    e.kind = AccessEvent::Kind::kRead;
    e.at_ms = f.at_ms();
    e.account = AccountId::from_bytes(crypto::as_bytes(f.account_id()));
    e.device = DeviceId::from_bytes(crypto::as_bytes(f.device_id()));
    e.section = f.section();
    e.text = "received " + f.section() + " up to change " + std::to_string(f.up_to_seq()) +
             (f.kind() == kith::v1::AccessLogEntry::LIVE ? " (live)" : " (catching up)");
    out.push_back(std::move(e));
  }
  for (const Bytes& bytes : store_.membership(p.id)) {
    MembershipEntry m = MembershipEntry::parse(bytes);
    AccessEvent e;
    e.kind = AccessEvent::Kind::kMembership;
    e.at_ms = m.at_ms;
    e.device = m.author;
    if (auto a = p.log.account_of(m.author)) e.account = *a;
    if (m.section) e.section = m.section->name();
    e.text = membership_text(m, p.log);
    out.push_back(std::move(e));
  }
  std::uint64_t after = 0;
  for (;;) {
    auto batch = store_.ops(p.id, after, 1000);
    if (batch.empty()) break;
    for (const StoredOp& s : batch) {
      after = s.local_index;
      OpHeader h = OpHeader::parse(s.header);
      AccessEvent e;
      e.kind = AccessEvent::Kind::kChange;
      e.at_ms = h.clock.wall_ms;
      e.device = h.author;
      if (auto a = p.log.account_of(h.author)) e.account = *a;
      e.section = h.section.name();
      std::size_t created = 0;
      std::set<std::string> fields;
      const crypto::SectionKey* key = p.keys.find(h.section, h.epoch);
      std::optional<crypto::SectionKey> stored;
      if (!key && (stored = store_.section_key(p.id, h.section.name(), h.epoch))) key = &*stored;
      std::optional<OpBody> body;
      if (key) body = open_op(Op{s.header, s.body}, *key);
      if (body) {
        for (const Mutation& m : body->mutations) {
          if (m.kind == Mutation::Kind::kCreate) {
            ++created;
          } else if (m.field == "_deleted") {
            fields.insert("deleted a record");
          } else {
            fields.insert(m.field);
          }
        }
        std::string text;
        if (created) text = "added " + std::to_string(created) + (created == 1 ? " record" : " records");
        std::string set;
        for (const std::string& f : fields) set += (set.empty() ? "" : ", ") + f;
        if (!set.empty()) text += (text.empty() ? "changed " : "; changed ") + set;
        e.text = text + " in " + e.section;
      } else {
        e.text = "changed " + e.section + " (this device cannot read it)";
      }
      out.push_back(std::move(e));
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const AccessEvent& a, const AccessEvent& b) { return a.at_ms < b.at_ms; });
  return out;
}

}  // namespace kith::sync
