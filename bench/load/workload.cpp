#include "workload.hpp"

#include <algorithm>
#include <chrono>
#include <exception>
#include <functional>
#include <optional>
#include <stdexcept>
#include <thread>

#include "kith/crypto/aead.hpp"
#include "kith/sync/chain.hpp"
#include "kith/sync/membership.hpp"
#include "kith/sync/op.hpp"
#include "kith/v1/sync.pb.h"

namespace kith::bench {
namespace {

using Kind = sync::MembershipEntry::Kind;

std::uint64_t wall_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

std::string str(crypto::ByteView b) { return std::string(b.begin(), b.end()); }

Message encode(const kith::v1::ClientMessage& m) {
  auto out = std::make_shared<std::string>();
  if (!m.SerializeToString(out.get())) throw std::runtime_error("cannot encode a ClientMessage");
  return out;
}

sync::DeviceId device_id(const Device& d) {
  return sync::DeviceId::from_bytes(d.secrets.device.signing.public_key().bytes());
}

// One op body: a note created with a `text` field of `padding` bytes.
sync::OpBody note_body(std::size_t padding) {
  sync::OpBody body;
  sync::Mutation create;
  create.kind = sync::Mutation::Kind::kCreate;
  create.record = sync::RecordId::random();
  create.type = "note";
  sync::Mutation text;
  text.kind = sync::Mutation::Kind::kSet;
  text.record = create.record;
  text.field = "text";
  text.value.assign(padding, 'x');
  body.mutations.push_back(std::move(create));
  body.mutations.push_back(std::move(text));
  return body;
}

// The `text` padding that makes a sealed body `op_bytes` long (or as short as it gets).
std::size_t padding_for(std::size_t op_bytes) {
  sync::OpHeader h;
  h.section = sync::Section::parse("notes");
  const std::size_t fixed =
      sync::seal_op(h, note_body(0), crypto::SectionKey::generate()).body.size();
  return op_bytes > fixed ? std::min(op_bytes - fixed, sync::kMaxFieldValue) : 0;
}

void run_parallel(std::size_t n, unsigned threads, const std::function<void(std::size_t)>& f) {
  threads = std::max(1u, threads);
  std::vector<std::thread> pool;
  std::vector<std::exception_ptr> errors(threads);
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      try {
        for (std::size_t i = t; i < n; i += threads) f(i);
      } catch (...) {
        errors[t] = std::current_exception();
      }
    });
  }
  for (auto& th : pool) th.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

PlanFixture make_plan(const WorkloadSpec& spec, std::size_t padding) {
  PlanFixture p;
  p.id = sync::PlanId::random();
  p.devices.push_back(Device::generate());
  for (std::size_t i = 1; i < spec.devices; ++i) {
    p.devices.push_back(Device::generate_for(p.devices[0].secrets.identity));
  }
  const Device& owner = p.devices[0];
  const sync::DeviceId author = device_id(owner);
  const std::string plan_bytes = str(p.id.bytes());

  // The membership log: created by devices[0], which then adds the others.
  sync::MembershipLog log(p.id);
  kith::v1::ClientMessage membership;
  membership.set_request_id(kMembershipRequest);
  membership.mutable_push_membership()->set_plan_id(plan_bytes);
  for (std::size_t i = 0; i < p.devices.size(); ++i) {
    auto e = log.next(i == 0 ? Kind::kPlanCreated : Kind::kDeviceAdded, author, wall_ms());
    e.certificate = p.devices[i].certificate;
    e.sign(owner.secrets.device.signing);
    log.append(e);  // checks it as kithd will
    membership.mutable_push_membership()->add_entries(str(e.serialize()));
  }
  p.membership = encode(membership);

  kith::v1::ClientMessage subscribe;
  subscribe.set_request_id(kSubscribeRequest);
  subscribe.mutable_subscribe()->set_plan_id(plan_bytes);
  subscribe.mutable_subscribe()->set_cursor(0);
  subscribe.mutable_subscribe()->set_membership_count(log.size());
  p.subscribe = encode(subscribe);

  // devices[0]'s chain in `notes`.
  const auto key = crypto::SectionKey::generate();
  const auto section = sync::Section::parse("notes");
  sync::OpHash prev{};
  std::uint64_t seq = 0;
  const std::uint64_t now = wall_ms();
  p.pushes.reserve(spec.pushes_per_plan);
  p.push_of.reserve(spec.pushes_per_plan);
  for (std::size_t i = 0; i < spec.pushes_per_plan; ++i) {
    kith::v1::ClientMessage m;
    m.set_request_id(kFirstPushRequest + i);
    auto* push = m.mutable_push_ops();
    push->set_plan_id(plan_bytes);
    for (std::size_t j = 0; j < spec.ops_per_push; ++j) {
      sync::OpHeader h;
      h.plan = p.id;
      h.op_id = sync::OpId::random();
      h.section = section;
      h.epoch = 1;
      h.author = author;
      h.author_seq = ++seq;
      h.prev = prev;
      h.clock = sync::Hlc{now, static_cast<std::uint32_t>(seq)};
      h.membership_index = log.size();
      const sync::Op op = sync::seal_op(h, note_body(padding), key);
      prev = op.hash();
      if (j == 0) p.push_of.emplace(h.op_id, static_cast<std::uint32_t>(i));
      auto* w = push->add_ops();
      w->set_header(str(op.header));
      w->set_body(str(op.body));
    }
    const auto head = sync::SignedHead::sign(sync::ChainHead{p.id, section, author, seq, prev},
                                             owner.secrets.device.signing);
    auto* wh = push->add_heads();
    wh->set_head(str(head.head));
    wh->set_signature(std::string(head.signature.begin(), head.signature.end()));
    p.pushes.push_back(encode(m));
  }
  return p;
}

}  // namespace

Device Device::generate() { return generate_for(crypto::SigningKey::generate()); }

Device Device::generate_for(const crypto::SigningKey& identity) {
  crypto::DeviceKeys keys = crypto::DeviceKeys::generate();
  auto certificate = crypto::DeviceCertificate::issue(identity, keys.signing.public_key(),
                                                      keys.encryption.public_key(), wall_ms());
  const crypto::Bytes bytes = certificate.serialize();
  return Device{crypto::DeviceSecrets{identity, std::move(keys)}, std::move(certificate),
                std::string(bytes.begin(), bytes.end())};
}

std::vector<PlanFixture> make_plans(const WorkloadSpec& spec, unsigned threads,
                                    WorkloadStats* stats) {
  if (spec.devices < 1 || spec.ops_per_push < 1 || spec.ops_per_push > 1000) {
    throw std::invalid_argument("a plan needs at least one device and 1..1000 ops per push");
  }
  const auto start = std::chrono::steady_clock::now();
  const std::size_t padding = padding_for(spec.op_bytes);
  std::vector<std::unique_ptr<PlanFixture>> made(spec.plans);
  run_parallel(spec.plans, threads, [&](std::size_t i) {
    made[i] = std::make_unique<PlanFixture>(make_plan(spec, padding));
  });
  std::vector<PlanFixture> out;
  out.reserve(spec.plans);
  for (auto& p : made) out.push_back(std::move(*p));
  if (stats) {
    stats->seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!out.empty() && !out[0].pushes.empty()) {
      kith::v1::ClientMessage m;
      m.ParseFromString(*out[0].pushes[0]);
      stats->header_bytes = m.push_ops().ops(0).header().size();
      stats->body_bytes = m.push_ops().ops(0).body().size();
      stats->push_bytes = out[0].pushes[0]->size();
    }
  }
  return out;
}

std::vector<Device> make_accounts(std::size_t n, unsigned threads) {
  std::vector<std::optional<Device>> made(n);
  run_parallel(n, threads, [&](std::size_t i) { made[i] = Device::generate(); });
  std::vector<Device> out;
  out.reserve(n);
  for (auto& d : made) out.push_back(std::move(*d));
  return out;
}

bool op_id_of_header(const std::string& header, sync::OpId& out) {
  constexpr std::size_t kOffset = 1 + sync::PlanId::kSize;
  if (header.size() < kOffset + sync::OpId::kSize) return false;
  out = sync::OpId::from_bytes(crypto::as_bytes(header).subspan(kOffset, sync::OpId::kSize));
  return true;
}

}  // namespace kith::bench
