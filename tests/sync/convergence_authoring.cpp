// What the people of the convergence simulation do to the plan (convergence.hpp): create, edit,
// append, delete and resolve records, and the owner takes someone's write access away.
#include <iostream>

#include "convergence.hpp"

namespace kith::sync::convergence {

std::string Simulation::value_for(const RecordType& type, const std::string& field) {
  for (const FieldSpec& spec : type.fields) {
    if (spec.name != field) continue;
    unsigned a = static_cast<unsigned>(pick(12)) + 1, b = static_cast<unsigned>(pick(28)) + 1;
    switch (spec.kind) {
      case FieldKind::kText:
      case FieldKind::kName:
        break;
      case FieldKind::kDate:
        return "2026-" + two(a) + "-" + two(b);
      case FieldKind::kDateTime:
        return "2026-" + two(a) + "-" + two(b) + "T" + two(a + 7) + ":" + two(b * 2);
      case FieldKind::kTime:
        return two(a + 6) + ":" + two(b * 2);
      case FieldKind::kAmount:
        return std::to_string(pick(200)) + "." + two(b);
      case FieldKind::kChoice:
        return std::string(spec.choices[pick(spec.choices.size())]);
    }
  }
  return "v" + std::to_string(pick(100000));
}

std::string Simulation::random_field(const RecordType& type) {
  return std::string(type.fields[pick(type.fields.size())].name);
}

void Simulation::author(Replica& r, const Section& section, std::vector<Mutation> mutations,
                        const std::string& what) {
  OpHeader h;
  h.plan = plan_;
  h.op_id = make_id<OpId>();
  h.section = section;
  h.epoch = r.log.epoch(section);
  h.membership_index = r.log.size();  // the log as this replica has seen it
  h.clock = r.clock.tick(
      static_cast<std::uint64_t>(static_cast<std::int64_t>(now_ms_) + r.skew_ms + 1'000'000));
  r.writer.stamp(h);
  AuthorRights rights;
  try {
    rights = r.log.check_op(h);
  } catch (const SyncError& e) {
    problems_.push_back(r.name + " could not author: " + e.what());
    return;
  }
  OpBody body{std::move(mutations)};
  Op op = seal_op(h, body, keys_.at(section));
  r.writer.append(h, op);
  r.verifier.restore(h, op.hash());  // its own ops come back from the server as duplicates
  r.state.apply(h, body, rights);
  r.history.push_back({h, op, op.hash()});
  r.outbox.push_back({false, std::move(op), {}, {h.author, section}, h.author_seq, h.op_id});
  r.unpushed.insert(section);
  ++stats_["ops authored"];
  trace(r, what + " (op " + short_id(h.op_id.bytes()) + ", " + section.name() + " #" +
               std::to_string(h.author_seq) + (rights.may_edit_any ? ", write" : ", append") + ")");
}

void Simulation::create(Replica& r) {
  const RecordType& type = *find_record_type(kEditableTypes[pick(3)]);
  RecordId id = make_id<RecordId>();
  std::vector<Mutation> m{create_of(id, type.name), set_of(id, "text", value_for(type, "text"))};
  for (std::size_t extra = pick(3); extra > 0; --extra) {
    std::string field = random_field(type);
    if (field != "text") m.push_back(set_of(id, field, value_for(type, field)));
  }
  author(r, Section::parse(type.section), std::move(m),
         "creates " + std::string(type.name) + " " + short_id(id.bytes()));
}

void Simulation::append(Replica& r) {
  const RecordType& type = *find_record_type(kAppendOnlyTypes[pick(2)]);
  RecordId id = make_id<RecordId>();
  std::vector<Mutation> m{create_of(id, type.name), set_of(id, "text", value_for(type, "text")),
                          set_of(id, "at", value_for(type, "at"))};
  if (type.name == "activity") m.push_back(set_of(id, "kind", value_for(type, "kind")));
  author(r, Section::parse(type.section), std::move(m),
         "appends " + std::string(type.name) + " " + short_id(id.bytes()));
}

std::optional<RecordView> Simulation::some_record(const Replica& r) {
  std::vector<RecordView> all = r.state.records();
  if (all.empty()) return std::nullopt;
  std::vector<RecordView> editable;
  for (auto& v : all) {
    if (!find_record_type(v.type)->append_only) editable.push_back(v);
  }
  if (!editable.empty() && chance(85)) return editable[pick(editable.size())];
  return all[pick(all.size())];
}

void Simulation::count_forbidden(const Replica& r, const RecordView& v) {
  const Account& a = accounts_[r.account];
  if (find_record_type(v.type)->append_only || (!a.may_edit_any && v.created_by != a.id)) {
    ++stats_["edits every replica must ignore"];  // authored anyway: every replica must ignore it
                                                  // alike
  }
}

void Simulation::edit(Replica& r) {
  auto v = some_record(r);
  if (!v) return create(r);
  const RecordType& type = *find_record_type(v->type);
  std::vector<Mutation> m;
  std::set<std::string> fields{random_field(type)};
  if (chance(25)) fields.insert(random_field(type));
  std::string what = "edits " + short_id(v->id.bytes());
  for (const std::string& field : fields) {
    auto seen = r.state.current_versions(v->id, field);
    what += " " + field + " (seen " + std::to_string(seen.size()) + ")";
    m.push_back(set_of(v->id, field, value_for(type, field), seen));
  }
  count_forbidden(r, *v);
  // Now and then an edit sent in the wrong section, which every replica must ignore.
  Section section = Section::parse(chance(3) ? kSections[pick(5)] : std::string(type.section));
  author(r, section, std::move(m), what);
}

void Simulation::remove(Replica& r) {
  auto v = some_record(r);
  if (!v) return create(r);
  count_forbidden(r, *v);
  ++stats_["deletes"];
  author(r, v->section,
         {set_of(v->id, kDeletedField, "1", r.state.current_versions(v->id, kDeletedField))},
         "deletes " + short_id(v->id.bytes()));
}

void Simulation::resolve(Replica& r) {
  auto conflicts = r.state.conflicts();
  stats_["conflicts on offer when resolving"] += conflicts.size();
  if (conflicts.empty()) return edit(r);
  const Conflict& c = conflicts[pick(conflicts.size())];
  auto v = r.state.record(c.record);
  std::string value = c.candidates[pick(c.candidates.size())].value;
  auto seen = r.state.current_versions(c.record, c.field);
  ++stats_["resolves"];
  author(r, v->section, {set_of(c.record, c.field, value, seen)},
         "resolves " + short_id(c.record.bytes()) + "." + c.field + " over " +
             std::to_string(seen.size()) + " versions");
}

void Simulation::revoke() {
  std::vector<std::size_t> writers;
  for (std::size_t a = 1; a < accounts_.size(); ++a) {
    if (accounts_[a].may_edit_any) writers.push_back(a);
  }
  if (writers.empty()) return;
  std::size_t member = writers[pick(writers.size())];
  Account& a = accounts_[member];
  a.may_edit_any = false;
  // The owner's first device writes the reduction, one grant entry per section, each with
  // the cut-off of every device of the member: the last op of theirs it has accepted.
  Replica& owner = *replicas_[0];
  sync_membership(owner);
  for (const char* name : kSections) {
    Section section = Section::parse(name);
    auto e = owner.log.next(MembershipEntry::Kind::kGrant, owner.device, now_ms_);
    e.member = a.id;
    e.grants = {{section, Permission::kAppend, 0}};
    for (const auto& r : replicas_) {
      if (r->account != member) continue;
      std::uint64_t seq = owner.verifier.accepted_seq({r->device, section});
      if (seq > 0) e.cutoffs.push_back({r->device, section, seq});
    }
    write_entry(owner, std::move(e));
  }
  ++stats_["rights drops"];
  if (options_.trace) std::cout << "  t=" << now_ms_ << " " << a.role << " loses write\n";
}

}  // namespace kith::sync::convergence
