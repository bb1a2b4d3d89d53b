#include "support/test_device.hpp"

#include <gtest/gtest.h>

#include <set>

namespace kith::test {

TestDevice::TestDevice(const std::filesystem::path& root, std::string person,
                       const crypto::SigningKey* identity)
    : name(std::move(person)), dir(root / name) {
  std::filesystem::create_directories(dir);
  crypto::DeviceSecrets secrets{identity ? *identity : crypto::SigningKey::generate(),
                                crypto::DeviceKeys::generate()};
  store = std::make_unique<sync::LocalStore>(dir / "store.db", storage_key);
  engine = std::make_unique<sync::SyncEngine>(
      *store, sync::DeviceIdentity::create(std::move(secrets), 1), [] {
        return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                              std::chrono::system_clock::now().time_since_epoch())
                                              .count());
      });
  engine->on_event([this](const sync::SyncEvent& e) { events.push_back(e); });
}

TestDevice::~TestDevice() {
  if (conn) {
    try {
      conn->close();
    } catch (...) {
    }
  }
}

void TestDevice::connect(const KithdProcess& server) {
  conn.reset();
  client::TlsOptions tls;
  tls.ca_file = server.ca_file();
  conn = client::Connection::open(server.endpoint(), tls);
  conn->authenticate(engine->identity(), "kith server tests");
}

std::vector<kith::v1::Error> TestDevice::sync(const sync::PlanId& plan,
                                              std::chrono::milliseconds timeout) {
  return converse(engine->subscribe(plan), timeout);
}

std::vector<kith::v1::Error> TestDevice::join(const sync::InviteCode& code, std::string_view title,
                                              std::chrono::milliseconds timeout) {
  return converse({engine->redeem(code, title)}, timeout);
}

std::vector<kith::v1::Error> TestDevice::converse(std::vector<kith::v1::ClientMessage> first,
                                                  std::chrono::milliseconds timeout) {
  std::vector<kith::v1::Error> errors;
  std::set<std::uint64_t> open;
  auto send_all = [&](std::vector<kith::v1::ClientMessage> msgs) {
    for (auto& m : msgs) {
      open.insert(m.request_id());
      conn->send(m);
    }
  };
  send_all(std::move(first));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!open.empty()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ADD_FAILURE() << name << ": sync timed out with " << open.size() << " requests unanswered";
      break;
    }
    auto m = conn->receive(left);
    if (!m) continue;
    const bool final = m->has_catch_up_complete() || m->has_push_ack() || m->has_error() ||
                       m->has_access_log() || m->has_invite_redeemed();
    if (m->has_error()) errors.push_back(m->error());
    send_all(engine->handle(*m));
    if (final && m->request_id() != 0) open.erase(m->request_id());
  }
  return errors;
}

kith::v1::ServerMessage TestDevice::request(kith::v1::ClientMessage m,
                                            std::chrono::milliseconds timeout) {
  if (m.request_id() == 0) m.set_request_id(next_request++);
  conn->send(m);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) throw std::runtime_error(name + ": no answer to request");
    auto reply = conn->receive(left);
    if (!reply) continue;
    if (reply->request_id() == m.request_id()) return *reply;
    for (auto& next : engine->handle(*reply)) conn->send(next);
  }
}

bool TestDevice::pump_until(const std::function<bool()>& until,
                            std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!until()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    auto m = conn->receive(std::min(left, std::chrono::milliseconds(200)));
    if (!m) continue;
    for (auto& next : engine->handle(*m)) conn->send(next);
  }
  return true;
}

}  // namespace kith::test

namespace kith::test {

namespace {
std::string str(crypto::ByteView b) { return std::string(b.begin(), b.end()); }
std::uint64_t wall_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}
}  // namespace

sync::DeviceId Forge::author() const {
  return sync::DeviceId::from_bytes(secrets->device.signing.public_key().bytes());
}

sync::Op Forge::op(std::string_view section, std::uint64_t seq, const sync::OpHash& prev,
                   std::uint64_t epoch, sync::OpId id) const {
  sync::OpHeader h;
  h.plan = plan;
  h.op_id = id;
  h.section = sync::Section::parse(section);
  h.epoch = epoch;
  h.author = author();
  h.author_seq = seq;
  h.prev = prev;
  h.clock = sync::Hlc{wall_ms(), 0};
  h.membership_index = membership_index;
  sync::OpBody body;
  sync::Mutation m;
  m.kind = sync::Mutation::Kind::kCreate;
  m.record = sync::RecordId::random();
  m.type = "note";
  body.mutations.push_back(m);
  return sync::seal_op(h, body, crypto::SectionKey::generate());
}

kith::v1::SignedHead Forge::head(const sync::Op& op) const {
  auto h = sync::OpHeader::parse(op.header);
  sync::ChainHead head{plan, h.section, h.author, h.author_seq, op.hash()};
  auto signed_head = sync::SignedHead::sign(head, secrets->device.signing);
  kith::v1::SignedHead out;
  out.set_head(str(signed_head.head));
  out.set_signature(std::string(signed_head.signature.begin(), signed_head.signature.end()));
  return out;
}

kith::v1::ClientMessage Forge::push(const std::vector<sync::Op>& ops, bool with_head) const {
  kith::v1::ClientMessage m;
  auto* p = m.mutable_push_ops();
  p->set_plan_id(str(plan.bytes()));
  for (const auto& op : ops) {
    auto* w = p->add_ops();
    w->set_header(str(op.header));
    w->set_body(str(op.body));
  }
  if (with_head && !ops.empty()) *p->add_heads() = head(ops.back());
  return m;
}

kith::v1::ClientMessage message_with(std::uint64_t request_id,
                                     const std::function<void(kith::v1::ClientMessage&)>& fill) {
  kith::v1::ClientMessage m;
  m.set_request_id(request_id);
  fill(m);
  return m;
}

void add_member(TestDevice& owner, TestDevice& member, const sync::PlanId& plan,
                const std::vector<sync::GrantSpec>& grants) {
  using Kind = sync::MembershipEntry::Kind;
  sync::MembershipLog log = owner.engine->membership(plan);
  crypto::Bytes secret(32);
  crypto::random_fill(secret.data(), secret.size());
  auto invite_key = sync::invite_key_from_secret(secret);
  auto inv = log.next(Kind::kInviteCreated, owner.device(), wall_ms());
  inv.invite_id = sync::OpId::random();
  inv.invite_key.assign(invite_key.public_key().bytes().begin(),
                        invite_key.public_key().bytes().end());
  inv.invite_expires_at_ms = wall_ms() + 3600 * 1000;
  inv.grants = grants;
  inv.sign(owner.secrets().device.signing);
  log.append(inv);
  auto join = log.next(Kind::kInviteAccepted, member.device(), wall_ms());
  join.invite_id = inv.invite_id;
  join.certificate = member.engine->identity().certificate;
  join.invite_signature =
      invite_key.sign(crypto::labels::kInviteJoin, join.invite_join_message());
  join.sign(member.secrets().device.signing);

  auto push_entry = [&](TestDevice& d, const sync::MembershipEntry& e) {
    auto reply = d.request(message_with(0, [&](kith::v1::ClientMessage& m) {
      m.mutable_push_membership()->set_plan_id(str(plan.bytes()));
      m.mutable_push_membership()->add_entries(str(e.serialize()));
    }));
    ASSERT_TRUE(reply.has_push_ack()) << d.name << ": " << reply.DebugString();
  };
  push_entry(owner, inv);
  push_entry(member, join);
  EXPECT_TRUE(owner.sync(plan).empty());
  for (const auto& g : grants) owner.engine->rotate_key(plan, g.section);
  EXPECT_TRUE(owner.sync(plan).empty());
  member.engine->follow(plan, "a plan shared with " + member.name);
  EXPECT_TRUE(member.sync(plan).empty());
}

RawCatchUp raw_catch_up(TestDevice& device, const sync::PlanId& plan, std::uint64_t cursor,
                        const std::function<void(kith::v1::Subscribe&)>& fill) {
  RawCatchUp out;
  const std::uint64_t id = device.next_request++;
  device.conn->send(message_with(id, [&](kith::v1::ClientMessage& m) {
    m.mutable_subscribe()->set_plan_id(str(plan.bytes()));
    m.mutable_subscribe()->set_cursor(cursor);
    if (fill) fill(*m.mutable_subscribe());
  }));
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto m = device.conn->receive(1s);
    if (!m || m->request_id() != id) continue;
    if (m->has_error()) {
      out.error = m->error();
      break;
    }
    for (const auto& op : m->ops_batch().ops()) out.ops.push_back(op);
    for (const auto& e : m->membership_batch().entries()) out.entries.push_back(e);
    for (const auto& e : m->envelope_batch().envelopes()) out.envelopes.push_back(e);
    if (m->has_catch_up_complete()) {
      out.complete = m->catch_up_complete();
      break;
    }
  }
  return out;
}

}  // namespace kith::test
