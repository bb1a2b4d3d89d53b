// The materialised plan: the deterministic merge of every accepted op.
//
// Each field is a multi-value register. An update names the versions of that field its author
// had seen; those it names are superseded. Updates that do not see each other are concurrent:
// all stay current, the field is reported as a conflict for a person to resolve, and a
// deterministic default (latest clock, then device id, then version) is shown meanwhile. An
// update naming every current version resolves the conflict. Creation and deletion follow the
// same rules (deletion is the reserved field `_deleted` set to "1": a tombstone).
//
// The raw state is a set of versions keyed by id, so applying the same ops in any order, any
// number of times, yields the same state and the same `canonical()` bytes. Rules that depend on
// more than one op (who created a record, whether an append-only record is being edited, whether
// the editor may edit others' records) are applied when the state is read, never when an op
// arrives, so they cannot depend on arrival order.
//
// Not thread-safe; copyable.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kith/sync/id_map.hpp"
#include "kith/sync/ids.hpp"
#include "kith/sync/op.hpp"

namespace kith::sync {

// What the membership check decided about an op's author (membership.hpp).
struct AuthorRights {
  AccountId account;
  bool may_edit_any = false;  // write (or manage); otherwise append: own records only
};

struct FieldCandidate {
  VersionId version;
  std::string value;
  Hlc clock;
  DeviceId device;
  AccountId account;
};

struct FieldView {
  std::string value;  // the deterministic default
  VersionId version;
  std::vector<FieldCandidate> candidates;  // more than one: a conflict
  bool conflict() const noexcept { return candidates.size() > 1; }
};

struct RecordView {
  RecordId id;
  std::string type;
  Section section = Section::parse("profile");
  AccountId created_by;
  DeviceId created_on;
  Hlc created_at;
  bool deleted = false;
  std::map<std::string, FieldView> fields;  // without `_deleted`
};

struct Conflict {
  RecordId record;
  std::string field;
  std::vector<FieldCandidate> candidates;  // ordered, default first
};

class PlanState {
 public:
  // Applies one accepted, decrypted op. Throws SyncError(kInvalidField) for a body that cannot
  // be part of any plan (a create of a type outside the op's section, a reserved or invalid
  // field name); such an op changes nothing.
  void apply(const OpHeader& header, const OpBody& body, const AuthorRights& author);
  // The same, taking the body's strings instead of copying them.
  void apply(const OpHeader& header, OpBody&& body, const AuthorRights& author);

  std::optional<RecordView> record(const RecordId& id) const;
  // Visible records (created, not deleted unless asked), ordered by id.
  std::vector<RecordView> records(const std::optional<Section>& section = std::nullopt,
                                  bool include_deleted = false) const;
  std::vector<Conflict> conflicts() const;
  // The conflicts on one record's fields.
  std::vector<Conflict> conflicts(const RecordId& record) const;
  // Whether one field has concurrent versions waiting for a person (cheap: no copies).
  bool in_conflict(const RecordId& record, std::string_view field) const;
  // The versions of a field a new update should name (all current ones), so that it supersedes
  // them and, when there are several, resolves the conflict.
  std::vector<VersionId> current_versions(const RecordId& id, std::string_view field) const;

  // Every version of every field in a fixed order: equal for replicas that applied the same
  // ops. Also the form the local store keeps (parse() reads it back).
  Bytes canonical() const;
  static PlanState parse(ByteView bytes);
  std::size_t version_count() const noexcept { return versions_; }

 private:
  struct Update {
    std::string value;
    Hlc clock;
    DeviceId device;
    AccountId account;
    bool may_edit_any = false;
    Section section = Section::parse("profile");
    std::vector<VersionId> seen;
  };
  struct Create {
    VersionId version;
    std::string type;
    Section section = Section::parse("profile");
    AccountId account;
    DeviceId device;
    Hlc clock;
  };
  struct Field {
    std::map<VersionId, Update> versions;
    // Derived from `versions` under the rules for the create in force (`computed_for`), kept up
    // to date as versions arrive and rebuilt when the create changes; never part of the state's
    // bytes.
    mutable std::optional<VersionId> computed_for;
    mutable std::set<VersionId> superseded;  // named by a version that counts
    mutable std::set<VersionId> current;     // versions that count and nothing supersedes
  };
  struct Record {
    std::optional<Create> create;
    std::map<std::string, Field, std::less<>> fields;
  };

  static bool counts(const Create& c, const VersionId& v, const Update& u);
  void refresh(const Create& c, const Field& f) const;
  std::vector<FieldCandidate> current(const Create& c, const Field& f) const;
  RecordView view(const RecordId& id, const Record& r) const;

  std::vector<RecordId> sorted_ids() const;

  IdMap<RecordId, Record> records_;  // sorted when read out
  std::size_t versions_ = 0;
};

// Each member's name as they share it with the circle: the `name` of the latest `member` record
// each account created in the `names` section (by its clock), where check_member_name accepts
// it. A record's creator is the account that signed its creation, so no member can share a
// name for another, and only its creator or a writer of `names` (the owner) can change it; a
// name that would not print safely counts as none.
std::map<AccountId, std::string> shared_names(const PlanState& state);

}  // namespace kith::sync
