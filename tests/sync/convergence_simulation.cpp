// The convergence simulation's set-up, its membership log, and the server and network it plays
// (convergence.hpp).
#include <iostream>

#include "convergence.hpp"

namespace kith::sync::convergence {

Simulation::Simulation(std::uint64_t seed, Options options) : rng_(seed), options_(options) {
  plan_ = make_id<PlanId>();
  for (const char* name : kSections) {
    Section section = Section::parse(name);
    keys_.emplace(section, crypto::SectionKey::parse(random_bytes(crypto::kSectionKeySize)));
  }
  // An owner with two devices, a nurse (write), a family member (append) and sometimes a
  // provider (write): 3-4 accounts, at least 5 devices.
  add_account("owner", true, 2);
  add_account("nurse", true, 1 + pick(2));
  add_account("family", false, 1);
  if (pick(2) == 0) add_account("provider", true, 1);
  while (replicas_.size() < 5) add_device(1 + pick(accounts_.size() - 1));
  build_membership();
}

Outcome Simulation::run() {
  for (int step = 0; step < options_.steps; ++step) this->step();
  settle();
  Outcome o;
  for (const auto& r : replicas_) {
    o.names.push_back(r->name);
    o.canonical.push_back(r->state.canonical());
    o.conflicts.push_back(conflicts_text(r->state.conflicts()));
    o.pending.push_back(r->verifier.pending_ops());
    o.versions.push_back(r->state.version_count());
  }
  o.problems = problems_;
  stats_["conflicts left at the end"] = replicas_[0]->state.conflicts().size();
  o.stats = stats_;
  return o;
}

Bytes Simulation::random_bytes(std::size_t n) {
  Bytes b(n);
  for (auto& x : b) x = static_cast<std::uint8_t>(rng_());
  return b;
}

void Simulation::add_account(const char* role, bool may_edit_any, std::size_t devices) {
  auto identity = crypto::SigningKey::parse(random_bytes(crypto::kSeedSize));
  AccountId id = AccountId::from_bytes(identity.public_key().bytes());
  accounts_.push_back({role, std::move(identity), id, may_edit_any});
  for (std::size_t d = 0; d < devices; ++d) add_device(accounts_.size() - 1);
}

void Simulation::add_device(std::size_t account) {
  std::size_t n = 0;
  for (const auto& r : replicas_) n += r->account == account;
  auto key = crypto::SigningKey::parse(random_bytes(crypto::kSeedSize));
  auto box = crypto::BoxSecretKey::parse(random_bytes(crypto::kBoxKeySize));
  replicas_.push_back(std::make_unique<Replica>(accounts_[account].role + "#" + std::to_string(n),
                                                account, std::move(key), std::move(box), plan_));
  replicas_.back()->skew_ms = static_cast<std::int64_t>(pick(4001)) - 2000;
}

crypto::DeviceCertificate Simulation::certificate(const Replica& r) const {
  return crypto::DeviceCertificate::issue(accounts_[r.account].identity, r.key.public_key(),
                                          r.box.public_key(), 1);
}

void Simulation::write_entry(Replica& author, MembershipEntry e) {
  e.sign(author.key);
  author.log.append(e);
  entries_.push_back(std::move(e));
}

Simulation::Replica* Simulation::first_device(std::size_t account) {
  for (auto& r : replicas_) {
    if (r->account == account) return r.get();
  }
  return nullptr;
}

void Simulation::build_membership() {
  using Kind = MembershipEntry::Kind;
  Replica& owner = *replicas_[0];
  auto e = owner.log.next(Kind::kPlanCreated, owner.device, 1);
  e.certificate = certificate(owner);
  write_entry(owner, std::move(e));
  for (std::size_t a = 0; a < accounts_.size(); ++a) {
    Replica* first = first_device(a);
    sync_membership(owner);
    if (a > 0) {
      Bytes secret = random_bytes(32);
      auto invite = owner.log.next(Kind::kInviteCreated, owner.device, 2);
      invite.invite_id = make_id<OpId>();
      auto invite_key = invite_key_from_secret(secret);
      invite.invite_key.assign(invite_key.public_key().bytes().begin(),
                               invite_key.public_key().bytes().end());
      invite.invite_expires_at_ms = UINT64_MAX;
      for (const char* name : kSections) {
        invite.grants.push_back(
            {Section::parse(name),
             accounts_[a].may_edit_any ? Permission::kWrite : Permission::kAppend, 0});
      }
      OpId invite_id = invite.invite_id;
      write_entry(owner, std::move(invite));
      sync_membership(*first);
      auto join = first->log.next(Kind::kInviteAccepted, first->device, 3);
      join.invite_id = invite_id;
      join.certificate = certificate(*first);
      join.invite_signature =
          invite_key.sign(crypto::labels::kInviteJoin, join.invite_join_message());
      write_entry(*first, std::move(join));
      sync_membership(owner);
    }
    for (auto& r : replicas_) {
      if (r->account != a || r.get() == first) continue;
      sync_membership(*first);
      auto added = first->log.next(Kind::kDeviceAdded, first->device, 4);
      added.certificate = certificate(*r);
      write_entry(*first, std::move(added));
    }
  }
  for (auto& r : replicas_) sync_membership(*r);
}

void Simulation::sync_membership(Replica& r) {
  while (r.log.size() < entries_.size()) {
    const MembershipEntry& e = entries_[r.log.size()];
    try {
      r.log.append(MembershipEntry::parse(e.serialize()));
    } catch (const SyncError& err) {
      problems_.push_back(r.name + ": membership entry " + std::to_string(e.index) +
                          " refused: " + err.what());
      return;
    }
    if (e.kind == MembershipEntry::Kind::kGrant || e.kind == MembershipEntry::Kind::kRevoke) {
      r.needs_rebuild = true;
    }
  }
  if (r.needs_rebuild) rebuild(r);
}

bool Simulation::merge(Replica& r, const AcceptedOp& a) {
  AuthorRights rights;
  try {
    rights = r.log.check_op(a.header);
  } catch (const SyncError& err) {
    if (err.code() != SyncErrorCode::kForbidden) {
      problems_.push_back(r.name + ": op " + a.header.op_id.short_hex() +
                          " refused: " + err.what());
    }
    return false;
  }
  auto body = open_op(a.op, keys_.at(a.header.section));
  if (!body) {
    problems_.push_back(r.name + ": op " + a.header.op_id.short_hex() + " did not open");
    return false;
  }
  try {
    r.state.apply(a.header, *body, rights);
  } catch (const SyncError& e) {
    problems_.push_back(r.name + ": op " + a.header.op_id.short_hex() +
                        " did not apply: " + e.what());
    return false;
  }
  return true;
}

void Simulation::rebuild(Replica& r) {
  r.needs_rebuild = false;
  r.state = PlanState();
  for (const AcceptedOp& a : r.history) merge(r, a);
  ++stats_["rebuilds after a rights change"];
}

void Simulation::trace(const Replica& r, const std::string& what) {
  if (options_.trace) std::cout << "  t=" << now_ms_ << " " << r.name << ": " << what << "\n";
}

void Simulation::step() {
  now_ms_ += pick(40);
  for (auto& r : replicas_) {
    if (r->offline_steps > 0 && --r->offline_steps == 0) trace(*r, "back online");
  }
  Replica& r = *replicas_[pick(replicas_.size())];
  std::size_t w = pick(1000);
  if (w < 140) {
    create(r);
  } else if (w < 360) {
    edit(r);
  } else if (w < 460) {
    append(r);
  } else if (w < 500) {
    remove(r);
  } else if (w < 560) {
    resolve(r);
  } else if (w < 590) {
    r.offline_steps = static_cast<int>(5 + pick(30));
    ++stats_["offline periods"];
    trace(r, "goes offline for " + std::to_string(r.offline_steps) + " steps");
  } else if (w < 710) {
    push(r);
  } else if (w < 830) {
    pull(r);
  } else if (w < 995) {
    deliver(r, 1 + pick(3));
  } else {
    revoke();
  }
}

void Simulation::push(Replica& r) {
  if (!online(r) || r.outbox.empty()) return;
  trace(r, "pushes " + std::to_string(r.outbox.size()) + " ops");
  for (Entry& e : r.outbox) log_.push_back(std::move(e));
  r.outbox.clear();
  for (const Section& section : r.unpushed) {
    Entry e;
    e.is_head = true;
    e.head = *r.writer.head(section);
    ChainHead h = *e.head.verify();
    e.chain = {h.author, h.section};
    e.seq = h.seq;
    log_.push_back(std::move(e));
  }
  r.unpushed.clear();
}

bool Simulation::lost_for(std::size_t replica, const Entry& e) {
  if (options_.lose_one_op_for != replica || e.is_head) return false;
  if (lost_.empty() && e.chain.author != replicas_[replica]->device) lost_.insert(e.op_id);
  return lost_.count(e.op_id) > 0;
}

void Simulation::pull(Replica& r) {
  if (!online(r)) return;
  sync_membership(r);  // the server sends membership before ops
  if (r.cursor == log_.size()) return;
  std::size_t index = 0;
  while (replicas_[index].get() != &r) ++index;
  const std::size_t from = r.cursor;
  r.cursor = log_.size();
  std::vector<Batch> batches(1 + pick(4));
  // The first batch each op reaches, per chain and sequence number.
  std::map<ChainKey, std::map<std::uint64_t, std::size_t>> arrives;
  for (std::size_t i = from; i < log_.size(); ++i) {
    const Entry& e = log_[i];
    if (e.is_head) continue;
    if (lost_for(index, e)) {
      ++stats_["ops lost"];
      continue;
    }
    std::size_t b = pick(batches.size());
    batches[b].ops.push_back(e.op);
    if (chance(12)) {  // a duplicate
      std::size_t d = pick(batches.size());
      batches[d].ops.push_back(e.op);
      b = std::min(b, d);
    }
    arrives[e.chain][e.seq] = b;
  }
  for (std::size_t i = from; i < log_.size(); ++i) {
    const Entry& e = log_[i];
    if (!e.is_head) continue;
    std::size_t b = 0;  // after every op it covers that arrives in this pull
    for (const auto& [seq, batch] : arrives[e.chain]) {
      if (seq <= e.seq) b = std::max(b, batch);
    }
    if (chance(30)) b += 1 + pick(2);  // the head comes later: its ops wait as pending
    if (b >= batches.size()) batches.resize(b + 1);
    batches[b].heads.push_back(e.head);
  }
  // Old entries again; every op they cover has reached earlier batches already.
  for (std::size_t k = 0; from > 0 && k < 2; ++k) {
    if (!chance(20)) continue;
    const Entry& e = log_[pick(from)];
    if (lost_for(index, e)) continue;
    Batch& b = batches[pick(batches.size())];
    if (e.is_head) {
      b.heads.push_back(e.head);
    } else {
      b.ops.push_back(e.op);
    }
  }
  for (Batch& b : batches) {
    std::shuffle(b.ops.begin(), b.ops.end(), rng_);
    std::shuffle(b.heads.begin(), b.heads.end(), rng_);
    r.inbox.push_back(std::move(b));
  }
  trace(r, "pulls log " + std::to_string(from) + ".." + std::to_string(r.cursor) + " in " +
               std::to_string(batches.size()) + " batches");
}

void Simulation::deliver(Replica& r, std::size_t count) {
  if (!online(r)) return;
  for (; count > 0 && !r.inbox.empty(); --count) {
    Batch b = std::move(r.inbox.front());
    r.inbox.pop_front();
    ChainOutcome out = r.verifier.add(b.ops, b.heads);
    stats_["duplicates"] += out.duplicates;
    for (const ChainProblem& p : out.problems) {
      problems_.push_back(r.name + ": " + std::string(sync_error_code_name(p.code)) + ": " +
                          p.message);
    }
    for (const AcceptedOp& a : out.accepted) {
      if (options_.skip_one_apply_on && replicas_[*options_.skip_one_apply_on].get() == &r &&
          stats_["ops skipped"] == 0 && a.header.author != r.device) {
        ++stats_["ops skipped"];
        continue;
      }
      r.history.push_back(a);
      if (!merge(r, a)) ++stats_["ops refused by a cut-off"];
      r.clock.observe(a.header.clock);
      ++stats_["ops applied from the network"];
    }
    if (r.verifier.pending_ops() > 0) ++stats_["batches leaving ops pending"];
    trace(r, "delivers " + std::to_string(b.ops.size()) + " ops, " +
                 std::to_string(b.heads.size()) + " heads: " + std::to_string(out.accepted.size()) +
                 " accepted, " + std::to_string(r.verifier.pending_ops()) + " pending");
  }
}

void Simulation::settle() {
  if (options_.trace) std::cout << "  -- settling\n";
  for (auto& r : replicas_) r->offline_steps = 0;
  for (int round = 0; round < 100; ++round) {
    bool moved = false;
    for (auto& r : replicas_) {
      moved = moved || !r->outbox.empty();
      push(*r);
    }
    for (auto& r : replicas_) {
      moved = moved || r->cursor != log_.size() || !r->inbox.empty();
      pull(*r);
      deliver(*r, r->inbox.size());
    }
    if (!moved) return;
  }
  problems_.push_back("the replicas did not settle in 100 rounds");
}

Outcome play(std::uint64_t seed, Options options) {
  if (auto steps = env_number("KITH_CONVERGENCE_STEPS")) options.steps = static_cast<int>(*steps);
  options.trace = options.trace || env_number("KITH_CONVERGENCE_TRACE").value_or(0) != 0;
  if (options.trace) std::cout << "schedule seed " << seed << "\n";
  return Simulation(seed, options).run();
}

}  // namespace kith::sync::convergence
