#include "kith/sync/membership.hpp"

#include <algorithm>

#include "kith/crypto/error.hpp"
#include "kith/crypto/hash.hpp"
#include "kith/sync/error.hpp"

namespace kith::sync {

namespace {

constexpr std::uint8_t kEntryVersion = 1;
constexpr std::size_t kMaxCertificate = 256;
constexpr std::size_t kMaxGrants = 32;
constexpr std::size_t kMaxCutoffs = 1024;
constexpr std::string_view kInviteKeyLabel = "kith/v1/invite-key";

using Kind = MembershipEntry::Kind;

[[noreturn]] void invalid(const std::string& why) {
  throw SyncError(SyncErrorCode::kMembershipInvalid, why);
}
[[noreturn]] void forbidden(const std::string& why) {
  throw SyncError(SyncErrorCode::kForbidden, why);
}

void write_section(crypto::ByteWriter& w, const Section& s) {
  w.u8(static_cast<std::uint8_t>(s.name().size())).raw(s.name());
}
Section read_section(crypto::ByteReader& r) {
  ByteView name = r.raw(r.u8());
  return Section::parse(std::string_view(reinterpret_cast<const char*>(name.data()), name.size()));
}
void write_grant(crypto::ByteWriter& w, const GrantSpec& g) {
  write_section(w, g.section);
  w.u8(static_cast<std::uint8_t>(g.permission)).u64(g.expires_at_ms);
}
GrantSpec read_grant(crypto::ByteReader& r) {
  GrantSpec g;
  g.section = read_section(r);
  std::uint8_t p = r.u8();
  if (p < 1 || p > 4) invalid("a grant names an unknown permission");
  g.permission = static_cast<Permission>(p);
  g.expires_at_ms = r.u64();
  return g;
}
template <class T>
void copy_to(ByteView from, T& to) {
  std::copy(from.begin(), from.end(), to.begin());
}

std::string who(const AccountId& a) { return "account " + a.short_hex(); }

}  // namespace

std::string_view permission_name(Permission p) noexcept {
  switch (p) {
    case Permission::kNone:
      return "none";
    case Permission::kRead:
      return "read";
    case Permission::kAppend:
      return "append";
    case Permission::kWrite:
      return "write";
    case Permission::kManage:
      return "manage";
  }
  return "none";
}

std::optional<Permission> parse_permission(std::string_view text) noexcept {
  for (auto p : {Permission::kRead, Permission::kAppend, Permission::kWrite, Permission::kManage}) {
    if (permission_name(p) == text) return p;
  }
  return std::nullopt;
}

Bytes MembershipEntry::body() const {
  crypto::ByteWriter w(256);
  w.u8(kEntryVersion).raw(plan.bytes()).u64(index).raw(prev).raw(author.bytes()).u64(at_ms);
  w.u8(static_cast<std::uint8_t>(kind));
  auto cert = [&] {
    if (!certificate) invalid("this membership entry needs a device certificate");
    w.prefixed(certificate->serialize());
  };
  auto cuts = [&] {
    w.u32(static_cast<std::uint32_t>(cutoffs.size()));
    for (const Cutoff& c : cutoffs) {
      w.raw(c.device.bytes());
      write_section(w, c.section);
      w.u64(c.seq);
    }
  };
  switch (kind) {
    case Kind::kPlanCreated:
    case Kind::kDeviceAdded:
      cert();
      break;
    case Kind::kInviteCreated:
      w.raw(invite_id.bytes()).prefixed(invite_key).u64(invite_expires_at_ms);
      w.u32(static_cast<std::uint32_t>(grants.size()));
      for (const auto& g : grants) write_grant(w, g);
      break;
    case Kind::kInviteAccepted:
      w.raw(invite_id.bytes());
      cert();
      w.raw(invite_signature);
      break;
    case Kind::kGrant:
      if (grants.size() != 1) invalid("a grant entry carries exactly one grant");
      w.raw(member.bytes());
      write_grant(w, grants[0]);
      cuts();
      break;
    case Kind::kRevoke:
      w.raw(member.bytes()).u8(section ? 1 : 0);
      if (section) write_section(w, *section);
      cuts();
      break;
    case Kind::kKeyRotation:
      if (!section) invalid("a key rotation names its section");
      write_section(w, *section);
      w.u64(epoch);
      cuts();
      break;
  }
  return std::move(w).take();
}

Bytes MembershipEntry::serialize() const {
  Bytes out = body();
  out.insert(out.end(), signature.begin(), signature.end());
  return out;
}

MembershipEntry MembershipEntry::parse(ByteView bytes) {
  crypto::ByteReader r(bytes, "membership entry");
  try {
    MembershipEntry e;
    if (r.u8() != kEntryVersion)
      invalid("membership entry version is not supported; update the app");
    e.plan = PlanId::from_bytes(r.raw(PlanId::kSize));
    e.index = r.u64();
    copy_to(r.raw(e.prev.size()), e.prev);
    e.author = DeviceId::from_bytes(r.raw(DeviceId::kSize));
    e.at_ms = r.u64();
    std::uint8_t kind = r.u8();
    if (kind < 1 || kind > 7) invalid("membership entry of unknown kind " + std::to_string(kind));
    e.kind = static_cast<Kind>(kind);
    auto cert = [&] {
      e.certificate = crypto::DeviceCertificate::parse(r.prefixed(kMaxCertificate));
    };
    auto cuts = [&] {
      std::uint32_t n = r.u32();
      if (n > kMaxCutoffs) {
        throw SyncError(SyncErrorCode::kTooLarge, "membership entry lists too many cut-offs");
      }
      for (std::uint32_t i = 0; i < n; ++i) {
        Cutoff c;
        c.device = DeviceId::from_bytes(r.raw(DeviceId::kSize));
        c.section = read_section(r);
        c.seq = r.u64();
        e.cutoffs.push_back(c);
      }
    };
    switch (e.kind) {
      case Kind::kPlanCreated:
      case Kind::kDeviceAdded:
        cert();
        break;
      case Kind::kInviteCreated: {
        e.invite_id = OpId::from_bytes(r.raw(OpId::kSize));
        ByteView key = r.prefixed(32);
        e.invite_key.assign(key.begin(), key.end());
        e.invite_expires_at_ms = r.u64();
        std::uint32_t n = r.u32();
        if (n > kMaxGrants) throw SyncError(SyncErrorCode::kTooLarge, "an invite grants too much");
        for (std::uint32_t i = 0; i < n; ++i) e.grants.push_back(read_grant(r));
        break;
      }
      case Kind::kInviteAccepted:
        e.invite_id = OpId::from_bytes(r.raw(OpId::kSize));
        cert();
        copy_to(r.raw(e.invite_signature.size()), e.invite_signature);
        break;
      case Kind::kGrant:
        e.member = AccountId::from_bytes(r.raw(AccountId::kSize));
        e.grants.push_back(read_grant(r));
        cuts();
        break;
      case Kind::kRevoke:
        e.member = AccountId::from_bytes(r.raw(AccountId::kSize));
        if (r.u8()) e.section = read_section(r);
        cuts();
        break;
      case Kind::kKeyRotation:
        e.section = read_section(r);
        e.epoch = r.u64();
        cuts();
        break;
    }
    copy_to(r.raw(e.signature.size()), e.signature);
    r.expect_end();
    return e;
  } catch (const crypto::KeyFormatError& ex) {
    throw SyncError(SyncErrorCode::kMalformed, ex.what());
  }
}

crypto::Hash MembershipEntry::hash() const { return crypto::blake2b(serialize()); }

void MembershipEntry::sign(const crypto::SigningKey& device) {
  author = DeviceId::from_bytes(device.public_key().bytes());
  signature = device.sign(crypto::labels::kMembershipEntry, body());
}

Bytes MembershipEntry::invite_join_message() const {
  crypto::ByteWriter w;
  w.raw(plan.bytes()).raw(invite_id.bytes());
  if (certificate) w.raw(certificate->serialize());
  return std::move(w).take();
}

crypto::SigningKey invite_key_from_secret(ByteView secret) {
  Bytes seed = crypto::blake2b_keyed(secret, crypto::as_bytes(kInviteKeyLabel), 32);
  crypto::SigningKey key = crypto::SigningKey::parse(seed);
  crypto::secure_wipe(seed.data(), seed.size());
  return key;
}

const InviteInfo* MembershipLog::invite(const OpId& id) const {
  auto it = invites_.find(id);
  return it == invites_.end() ? nullptr : &it->second;
}

MembershipEntry MembershipLog::next(Kind kind, const DeviceId& author, std::uint64_t at_ms) const {
  MembershipEntry e;
  e.plan = plan_;
  e.index = size_;
  e.prev = head_;
  e.author = author;
  e.at_ms = at_ms;
  e.kind = kind;
  return e;
}

std::optional<AccountId> MembershipLog::account_of(const DeviceId& device,
                                                   std::optional<std::uint64_t> at) const {
  auto it = devices_.find(device);
  if (it == devices_.end() || it->second.added >= at_or_size(at)) return std::nullopt;
  return it->second.account;
}

const crypto::DeviceCertificate* MembershipLog::certificate(const DeviceId& device) const {
  auto it = devices_.find(device);
  return it == devices_.end() ? nullptr : &it->second.certificate;
}

const MembershipLog::Change* MembershipLog::grant_in_force(const AccountId& account,
                                                           const Section& section,
                                                           std::uint64_t limit) const {
  auto it = grants_.find(GrantKey{account, section});
  if (it == grants_.end()) return nullptr;
  const Change* in_force = nullptr;
  for (const Change& c : it->second) {
    if (c.index < limit) in_force = &c;
  }
  return in_force;
}

Permission MembershipLog::permission(const AccountId& account, const Section& section,
                                     std::optional<std::uint64_t> at,
                                     std::optional<std::uint64_t> now_ms) const {
  std::uint64_t limit = at_or_size(at);
  if (owner_ && account == *owner_ && limit > 0) return Permission::kManage;
  const Change* in_force = grant_in_force(account, section, limit);
  if (!in_force) return Permission::kNone;
  if (now_ms && in_force->grant.expires_at_ms != 0 && *now_ms >= in_force->grant.expires_at_ms) {
    return Permission::kNone;
  }
  return in_force->grant.permission;
}

std::uint64_t MembershipLog::epoch(const Section& section, std::optional<std::uint64_t> at) const {
  std::uint64_t limit = at_or_size(at), epoch = 1;
  auto it = epochs_.find(section);
  if (it == epochs_.end()) return epoch;
  for (const auto& [index, e] : it->second) {
    if (index < limit) epoch = e;
  }
  return epoch;
}

std::vector<MemberView> MembershipLog::members() const {
  std::vector<MemberView> out;
  for (const auto& [account, devices] : accounts_) {
    MemberView m{account, owner_ && *owner_ == account, devices, {}};
    for (const auto& [key, changes] : grants_) {
      if (key.first == account && !changes.empty() &&
          changes.back().grant.permission != Permission::kNone) {
        m.grants.emplace(key.second, changes.back().grant);
      }
    }
    out.push_back(std::move(m));
  }
  return out;
}

void MembershipLog::check_manages(const AccountId& author, const Section& section,
                                  const char* what) const {
  if (permission(author, section) < Permission::kManage) {
    forbidden(who(author) + " may not " + what + " in " + section.name() +
              ": that needs the manage permission on it");
  }
}

void MembershipLog::check(const MembershipEntry& e) const {
  if (e.plan != plan_) invalid("a membership entry of another plan");
  if (e.index != size_) {
    invalid("membership entry " + std::to_string(e.index) + " arrived where entry " +
            std::to_string(size_) + " was expected");
  }
  if (e.prev != head_)
    invalid("membership entry " + std::to_string(e.index) + " does not link to the one before it");
  auto author_key = crypto::VerifyKey::parse(e.author.bytes());
  if (!author_key.verify(crypto::labels::kMembershipEntry, e.body(), e.signature)) {
    throw SyncError(SyncErrorCode::kBadSignature,
                    "membership entry " + std::to_string(e.index) + " is not signed by its author");
  }
  auto cert_ok = [&] {
    if (!e.certificate || !e.certificate->verify()) {
      invalid("membership entry " + std::to_string(e.index) +
              " carries a device certificate its identity key did not sign");
    }
  };

  if (size_ == 0) {
    if (e.kind != Kind::kPlanCreated) invalid("a plan's membership log starts with its creation");
    cert_ok();
    if (DeviceId::from_bytes(e.certificate->device_signing().bytes()) != e.author) {
      invalid("the plan was created by a device other than the one certified");
    }
    return;
  }
  if (e.kind == Kind::kPlanCreated) invalid("a plan is created once");

  if (e.kind == Kind::kInviteAccepted) {
    cert_ok();
    if (DeviceId::from_bytes(e.certificate->device_signing().bytes()) != e.author) {
      invalid("an invite was accepted by a device other than the one certified");
    }
    auto it = invites_.find(e.invite_id);
    if (it == invites_.end()) {
      throw SyncError(SyncErrorCode::kInviteUnknown,
                      "the invite being accepted does not exist in this plan");
    }
    if (it->second.used) {
      throw SyncError(SyncErrorCode::kInviteUsed,
                      "this invite has already been used; ask for a new one");
    }
    if (e.at_ms >= it->second.expires_at_ms) {
      throw SyncError(SyncErrorCode::kInviteExpired, "this invite has expired; ask for a new one");
    }
    auto invite_key = crypto::VerifyKey::parse(it->second.key);
    if (!invite_key.verify(crypto::labels::kInviteJoin, e.invite_join_message(),
                           e.invite_signature)) {
      throw SyncError(SyncErrorCode::kBadSignature,
                      "the join does not prove knowledge of the invite code");
    }
    return;
  }

  // A new device of a member may add itself: its certificate, signed by the member's identity
  // key, is the proof (a phone restored from the recovery key has no other device to vouch).
  if (e.kind == Kind::kDeviceAdded && !account_of(e.author)) {
    cert_ok();
    if (DeviceId::from_bytes(e.certificate->device_signing().bytes()) != e.author) {
      throw SyncError(SyncErrorCode::kNotMember,
                      "the author of a membership entry is not a device of this plan");
    }
    const AccountId account = AccountId::from_bytes(e.certificate->identity().bytes());
    bool holds_access = owner_ && *owner_ == account;
    for (const auto& [key, changes] : grants_) {
      if (key.first == account && !changes.empty() &&
          changes.back().grant.permission != Permission::kNone) {
        holds_access = true;
      }
    }
    if (!accounts_.count(account) || !holds_access) {
      throw SyncError(SyncErrorCode::kNotMember,
                      "a device can add itself only to an account that is a member of the plan");
    }
    return;
  }
  auto author = account_of(e.author);
  if (!author)
    throw SyncError(SyncErrorCode::kNotMember,
                    "the author of a membership entry is not a device of this plan");
  switch (e.kind) {
    case Kind::kPlanCreated:
    case Kind::kInviteAccepted:
      break;
    case Kind::kDeviceAdded:
      cert_ok();
      if (AccountId::from_bytes(e.certificate->identity().bytes()) != *author) {
        forbidden("a device may only add devices of its own account");
      }
      break;
    case Kind::kInviteCreated:
      if (e.grants.empty()) invalid("an invite must grant something");
      if (e.invite_key.size() != 32) invalid("an invite key must be 32 bytes");
      if (invites_.count(e.invite_id)) invalid("an invite with this id exists already");
      for (const auto& g : e.grants) check_manages(*author, g.section, "invite people");
      break;
    case Kind::kGrant:
      if (owner_ && e.member == *owner_) forbidden("the owner's access cannot be changed");
      if (!accounts_.count(e.member)) invalid("the grant is for someone who is not a member");
      check_manages(*author, e.grants[0].section, "grant access");
      break;
    case Kind::kRevoke: {
      if (owner_ && e.member == *owner_) forbidden("the owner cannot be removed from their plan");
      if (!accounts_.count(e.member)) invalid("the revocation is for someone who is not a member");
      if (e.section) {
        check_manages(*author, *e.section, "revoke access");
      } else {
        for (const auto& [key, changes] : grants_) {
          if (key.first == e.member) check_manages(*author, key.second, "revoke access");
        }
      }
      break;
    }
    case Kind::kKeyRotation:
      check_manages(*author, *e.section, "rotate the key");
      if (e.epoch != epoch(*e.section) + 1) {
        invalid("a key rotation must move " + e.section->name() + " to epoch " +
                std::to_string(epoch(*e.section) + 1));
      }
      break;
  }
}

void MembershipLog::reduce(const MembershipEntry& e, const AccountId& member,
                           const Section& section) {
  Barrier b{e.index, member, {}};
  for (const Cutoff& c : e.cutoffs) {
    if (c.section == section) b.cutoffs[c.device] = c.seq;
  }
  barriers_[section].push_back(std::move(b));
}

void MembershipLog::apply(const MembershipEntry& e) {
  auto add_device = [&](const AccountId& account) {
    DeviceId d = DeviceId::from_bytes(e.certificate->device_signing().bytes());
    if (devices_.emplace(d, Device{account, e.index, *e.certificate}).second) {
      accounts_[account].push_back(d);
    }
  };
  auto set_grant = [&](const AccountId& account, const GrantSpec& g) {
    auto& changes = grants_[{account, g.section}];
    Permission before = changes.empty() ? Permission::kNone : changes.back().grant.permission;
    if (g.permission < before) reduce(e, account, g.section);
    changes.push_back({e.index, g});
  };
  switch (e.kind) {
    case Kind::kPlanCreated:
      owner_ = AccountId::from_bytes(e.certificate->identity().bytes());
      add_device(*owner_);
      break;
    case Kind::kDeviceAdded:
      add_device(AccountId::from_bytes(e.certificate->identity().bytes()));
      break;
    case Kind::kInviteCreated:
      invites_[e.invite_id] = InviteInfo{e.index, e.author, e.invite_key, e.invite_expires_at_ms,
                                         e.grants, *account_of(e.author), false, std::nullopt};
      break;
    case Kind::kInviteAccepted: {
      InviteInfo& inv = invites_.at(e.invite_id);
      inv.used = true;
      AccountId member = AccountId::from_bytes(e.certificate->identity().bytes());
      inv.accepted_by = member;
      add_device(member);
      for (const auto& g : inv.grants) set_grant(member, g);
      break;
    }
    case Kind::kGrant:
      set_grant(e.member, e.grants[0]);
      break;
    case Kind::kRevoke: {
      std::vector<Section> sections;
      if (e.section) {
        sections.push_back(*e.section);
      } else {
        for (const auto& [key, changes] : grants_) {
          if (key.first == e.member) sections.push_back(key.second);
        }
      }
      for (const Section& s : sections) set_grant(e.member, GrantSpec{s, Permission::kNone, 0});
      break;
    }
    case Kind::kKeyRotation: {
      epochs_[*e.section].emplace_back(e.index, e.epoch);
      Barrier b{e.index, std::nullopt, {}};
      for (const Cutoff& c : e.cutoffs) {
        if (c.section == *e.section) b.cutoffs[c.device] = c.seq;
      }
      barriers_[*e.section].push_back(std::move(b));
      break;
    }
  }
}

void MembershipLog::append(const MembershipEntry& entry) {
  check(entry);
  apply(entry);
  ++size_;
  head_ = entry.hash();
}

AuthorRights MembershipLog::check_op(const OpHeader& h) const {
  const std::uint64_t m = h.membership_index;
  if (m > size_) {
    throw SyncError(SyncErrorCode::kMembershipInvalid,
                    "an op refers to membership changes this device has not received yet");
  }
  auto account = account_of(h.author, m);
  if (!account) {
    throw SyncError(SyncErrorCode::kNotMember,
                    "an op's author was not a device of this plan when it wrote it");
  }
  // As permission(), with the grant looked up once for both the right and its expiry.
  const bool owner = owner_ && *account == *owner_ && m > 0;
  const Change* in_force = owner ? nullptr : grant_in_force(*account, h.section, m);
  Permission p =
      owner ? Permission::kManage : (in_force ? in_force->grant.permission : Permission::kNone);
  if (p < Permission::kAppend) {
    forbidden(who(*account) + " may not change " + h.section.name());
  }
  if (in_force && in_force->grant.expires_at_ms != 0 &&
      h.clock.wall_ms >= in_force->grant.expires_at_ms) {
    throw SyncError(SyncErrorCode::kGrantExpired, who(*account) + "'s access to " +
                                                      h.section.name() +
                                                      " had expired when this op was written");
  }
  std::uint64_t e = epoch(h.section, m);
  if (h.epoch < e) {
    throw SyncError(SyncErrorCode::kRetiredEpoch,
                    "an op was encrypted under a retired key of " + h.section.name());
  }
  if (h.epoch > e) {
    throw SyncError(SyncErrorCode::kUnknownEpoch, "an op was encrypted under a key of " +
                                                      h.section.name() +
                                                      " that did not exist at the point it claims");
  }
  // Entries after the author's view that reduced their rights or rotated the key: the op must
  // be one the entry's author had already seen.
  if (auto b = barriers_.find(h.section); b != barriers_.end()) {
    for (const Barrier& barrier : b->second) {
      if (barrier.index < m) continue;
      if (barrier.account && *barrier.account != *account) continue;
      auto cut = barrier.cutoffs.find(h.author);
      std::uint64_t allowed = cut == barrier.cutoffs.end() ? 0 : cut->second;
      if (h.author_seq > allowed) {
        forbidden("an op of " + who(*account) + " in " + h.section.name() +
                  " was written after their access changed; it was not accepted");
      }
    }
  }
  return AuthorRights{*account, p >= Permission::kWrite};
}

}  // namespace kith::sync
