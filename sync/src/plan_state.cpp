#include "kith/sync/plan_state.hpp"

#include <algorithm>
#include <set>

#include "kith/crypto/error.hpp"
#include "kith/sync/error.hpp"
#include "kith/sync/record_types.hpp"

namespace kith::sync {

namespace {

[[noreturn]] void invalid(const std::string& why) {
  throw SyncError(SyncErrorCode::kInvalidField, why);
}

// Default order: the latest clock wins, then the higher device id, then the higher version.
bool shown_before(const FieldCandidate& a, const FieldCandidate& b) {
  if (a.clock != b.clock) return a.clock > b.clock;
  if (a.device != b.device) return a.device > b.device;
  return a.version > b.version;
}

constexpr std::uint8_t kStateVersion = 1;

}  // namespace

void PlanState::apply(const OpHeader& header, const OpBody& body, const AuthorRights& author) {
  apply(header, OpBody(body), author);
}

void PlanState::apply(const OpHeader& header, OpBody&& body, const AuthorRights& author) {
  // Validate the whole op before changing anything.
  for (const Mutation& m : body.mutations) {
    if (m.kind == Mutation::Kind::kCreate) {
      const RecordType* type = find_record_type(m.type);
      if (type != nullptr && type->section != header.section.name()) {
        invalid("a " + m.type + " record belongs in " + std::string(type->section) + ", not " +
                header.section.name());
      }
      if (type == nullptr && (m.type.empty() || check_field_name(m.type))) {
        invalid("'" + m.type + "' is not a record type");
      }
    } else if (m.field != kDeletedField) {
      if (auto bad = check_field_name(m.field)) invalid(*bad);
    }
  }
  for (std::size_t i = 0; i < body.mutations.size(); ++i) {
    Mutation& m = body.mutations[i];
    VersionId version{header.op_id, static_cast<std::uint16_t>(i)};
    Record& record = records_[m.record];
    if (m.kind == Mutation::Kind::kCreate) {
      Create c{version,        std::move(m.type), header.section,
               author.account, header.author,     header.clock};
      // Two creates of one id: the lowest version wins, whatever the arrival order.
      if (!record.create || version < record.create->version) record.create = std::move(c);
      continue;
    }
    Field& field = record.fields[m.field];
    // The Update is made in the map's node, not moved there.
    auto [it, inserted] = field.versions.try_emplace(
        version, std::move(m.value), header.clock, header.author, author.account,
        author.may_edit_any, header.section, std::move(m.seen));
    if (!inserted) continue;  // a version is written once: the same op again changes nothing
    ++versions_;
    // Keep the derived sets current without rescanning the field.
    if (record.create && field.computed_for == record.create->version &&
        counts(*record.create, version, it->second)) {
      for (const VersionId& s : it->second.seen) {
        field.superseded.insert(s);
        field.current.erase(s);
      }
      if (!field.superseded.count(version)) field.current.insert(version);
    }
  }
}

bool PlanState::counts(const Create& c, const VersionId& v, const Update& u) {
  if (u.section != c.section) return false;
  if (v.op == c.version.op) return true;  // written together with the create
  const RecordType* type = find_record_type(c.type);
  if (type != nullptr && type->append_only) return false;  // never edited after creation
  return u.may_edit_any || u.account == c.account;
}

void PlanState::refresh(const Create& c, const Field& f) const {
  if (f.computed_for == c.version) return;
  f.superseded.clear();
  f.current.clear();
  for (const auto& [v, u] : f.versions) {
    if (counts(c, v, u)) f.superseded.insert(u.seen.begin(), u.seen.end());
  }
  for (const auto& [v, u] : f.versions) {
    if (counts(c, v, u) && !f.superseded.count(v)) f.current.insert(v);
  }
  f.computed_for = c.version;
}

std::vector<FieldCandidate> PlanState::current(const Create& c, const Field& f) const {
  refresh(c, f);
  std::vector<FieldCandidate> out;
  out.reserve(f.current.size());
  for (const VersionId& v : f.current) {
    const Update& u = f.versions.at(v);
    out.push_back({v, u.value, u.clock, u.device, u.account});
  }
  std::sort(out.begin(), out.end(), shown_before);
  return out;
}

RecordView PlanState::view(const RecordId& id, const Record& r) const {
  const Create& c = *r.create;
  RecordView rv{id, c.type, c.section, c.account, c.device, c.clock, false, {}};
  for (const auto& [name, field] : r.fields) {
    auto cands = current(c, field);
    if (cands.empty()) continue;
    if (name == kDeletedField) {
      rv.deleted = cands.front().value == "1";
      continue;
    }
    FieldView f{cands.front().value, cands.front().version, std::move(cands)};
    rv.fields.emplace(name, std::move(f));
  }
  return rv;
}

std::optional<RecordView> PlanState::record(const RecordId& id) const {
  const Record* r = records_.find(id);
  if (!r || !r->create) return std::nullopt;
  return view(id, *r);
}

std::vector<RecordId> PlanState::sorted_ids() const {
  std::vector<RecordId> ids;
  ids.reserve(records_.size());
  for (const auto& [id, r] : records_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::vector<RecordView> PlanState::records(const std::optional<Section>& section,
                                           bool include_deleted) const {
  std::vector<RecordView> out;
  for (const RecordId& id : sorted_ids()) {
    const Record& r = *records_.find(id);
    if (!r.create || (section && r.create->section != *section)) continue;
    RecordView v = view(id, r);
    if (v.deleted && !include_deleted) continue;
    out.push_back(std::move(v));
  }
  return out;
}

std::vector<Conflict> PlanState::conflicts() const {
  std::vector<Conflict> out;
  for (const RecordId& id : sorted_ids()) {
    auto more = conflicts(id);
    out.insert(out.end(), std::make_move_iterator(more.begin()),
               std::make_move_iterator(more.end()));
  }
  return out;
}

std::vector<Conflict> PlanState::conflicts(const RecordId& id) const {
  std::vector<Conflict> out;
  const Record* found = records_.find(id);
  if (!found || !found->create) return out;
  const Record& r = *found;
  for (const auto& [name, field] : r.fields) {
    auto cands = current(*r.create, field);
    if (cands.size() > 1) out.push_back({id, name, std::move(cands)});
  }
  return out;
}

bool PlanState::in_conflict(const RecordId& id, std::string_view field) const {
  const Record* r = records_.find(id);
  if (!r || !r->create) return false;
  auto f = r->fields.find(field);
  if (f == r->fields.end()) return false;
  refresh(*r->create, f->second);
  return f->second.current.size() > 1;
}

std::vector<VersionId> PlanState::current_versions(const RecordId& id,
                                                   std::string_view field) const {
  const Record* r = records_.find(id);
  if (!r || !r->create) return {};
  auto f = r->fields.find(field);
  if (f == r->fields.end()) return {};
  std::vector<VersionId> out;
  for (const auto& c : current(*r->create, f->second)) out.push_back(c.version);
  std::sort(out.begin(), out.end());
  return out;
}

Bytes PlanState::canonical() const {
  crypto::ByteWriter w(64 + versions_ * 96);
  auto clock = [&](const Hlc& h) { w.u64(h.wall_ms).u32(h.counter); };
  auto version = [&](const VersionId& v) { w.raw(v.op.bytes()).u16(v.index); };
  w.u8(kStateVersion).u32(static_cast<std::uint32_t>(records_.size()));
  for (const RecordId& id : sorted_ids()) {
    const Record& r = *records_.find(id);
    w.raw(id.bytes()).u8(r.create ? 1 : 0);
    if (r.create) {
      const Create& c = *r.create;
      version(c.version);
      w.prefixed(c.type).prefixed(c.section.name()).raw(c.account.bytes()).raw(c.device.bytes());
      clock(c.clock);
    }
    w.u32(static_cast<std::uint32_t>(r.fields.size()));
    for (const auto& [name, field] : r.fields) {
      w.prefixed(name).u32(static_cast<std::uint32_t>(field.versions.size()));
      for (const auto& [v, u] : field.versions) {
        version(v);
        w.prefixed(u.value);
        clock(u.clock);
        w.raw(u.device.bytes()).raw(u.account.bytes()).u8(u.may_edit_any ? 1 : 0);
        w.prefixed(u.section.name()).u32(static_cast<std::uint32_t>(u.seen.size()));
        for (const auto& s : u.seen) version(s);
      }
    }
  }
  return std::move(w).take();
}

PlanState PlanState::parse(ByteView bytes) {
  crypto::ByteReader r(bytes, "plan state");
  auto text = [&](std::size_t max) {
    ByteView v = r.prefixed(max);
    return std::string(v.begin(), v.end());
  };
  auto clock = [&] {
    Hlc h;
    h.wall_ms = r.u64();
    h.counter = r.u32();
    return h;
  };
  auto version = [&] {
    VersionId v;
    v.op = OpId::from_bytes(r.raw(OpId::kSize));
    v.index = r.u16();
    return v;
  };
  try {
    PlanState s;
    if (r.u8() != kStateVersion) {
      throw SyncError(SyncErrorCode::kMalformed, "plan state version is not supported");
    }
    std::uint32_t n_records = r.u32();
    for (std::uint32_t i = 0; i < n_records; ++i) {
      RecordId id = RecordId::from_bytes(r.raw(RecordId::kSize));
      Record rec;
      if (r.u8()) {
        Create c;
        c.version = version();
        c.type = text(kMaxTypeName);
        c.section = Section::parse(text(32));
        c.account = AccountId::from_bytes(r.raw(AccountId::kSize));
        c.device = DeviceId::from_bytes(r.raw(DeviceId::kSize));
        c.clock = clock();
        rec.create = std::move(c);
      }
      std::uint32_t n_fields = r.u32();
      for (std::uint32_t f = 0; f < n_fields; ++f) {
        std::string name = text(64);
        auto& versions = rec.fields[name].versions;
        std::uint32_t n_versions = r.u32();
        for (std::uint32_t k = 0; k < n_versions; ++k) {
          VersionId v = version();
          Update u;
          u.value = text(kMaxFieldValue);
          u.clock = clock();
          u.device = DeviceId::from_bytes(r.raw(DeviceId::kSize));
          u.account = AccountId::from_bytes(r.raw(AccountId::kSize));
          u.may_edit_any = r.u8() != 0;
          u.section = Section::parse(text(32));
          std::uint32_t n_seen = r.u32();
          if (n_seen > kMaxSeenVersions) {
            throw SyncError(SyncErrorCode::kMalformed, "plan state names too many versions");
          }
          for (std::uint32_t q = 0; q < n_seen; ++q) u.seen.push_back(version());
          versions.emplace(v, std::move(u));
          ++s.versions_;
        }
      }
      s.records_.try_emplace(id, std::move(rec));
    }
    r.expect_end();
    return s;
  } catch (const crypto::KeyFormatError& e) {
    throw SyncError(SyncErrorCode::kMalformed, e.what());
  }
}

std::map<AccountId, std::string> shared_names(const PlanState& state) {
  std::map<AccountId, std::pair<Hlc, std::string>> latest;
  for (const RecordView& r : state.records(Section::parse(kNamesSection))) {
    if (r.type != kMemberNameType) continue;
    auto f = r.fields.find("name");
    // A name that could not print safely is as good as none (another member wrote it).
    if (f == r.fields.end() || check_member_name(f->second.value)) continue;
    auto [it, fresh] = latest.try_emplace(r.created_by, r.created_at, f->second.value);
    if (!fresh && it->second.first < r.created_at) it->second = {r.created_at, f->second.value};
  }
  std::map<AccountId, std::string> out;
  for (auto& [account, named] : latest) out.emplace(account, std::move(named.second));
  return out;
}

}  // namespace kith::sync
