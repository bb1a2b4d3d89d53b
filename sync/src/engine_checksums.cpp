// SyncEngine: section checksums (docs/PROTOCOL.md, "Section checksums"). Per section, a digest
// of the ops this device holds from the server, in server-sequence order, kept with the cursor;
// compared at the end of each catch-up with the server's, which covers every op of the section
// up to CatchUpComplete.server_seq. A difference means the server dropped, reordered or withheld
// an op (or the device missed one): the plan is fetched again from the start, once.
#include <string>
#include <utility>

#include "engine_plan.hpp"
#include "kith/sync/error.hpp"

namespace kith::sync {

namespace {

// Why a section's checksums differ, for the person reading the event.
std::string difference(const Section& section, const SectionDigest& mine,
                       const kith::v1::SectionChecksum* theirs, bool repeated) {
  const std::string name = section.name();
  if (!theirs) {
    return "the server sent no checksum for section " + name + ", which this device may read";
  }
  if (repeated) return "the server sent two checksums for section " + name;
  if (theirs->digest().size() != crypto::kHashSize) {
    return "the server's checksum for section " + name + " is malformed";
  }
  if (theirs->op_count() != mine.op_count) {
    return "the server holds " + std::to_string(theirs->op_count()) + " changes in section " +
           name + " and this device received " + std::to_string(mine.op_count);
  }
  return "the server's copy of section " + name +
         " differs from what this device received (changes in another order or with other "
         "content)";
}

}  // namespace

void SyncEngine::Plan::hold_for_digest(std::uint64_t server_seq, const Section& section,
                                       const OpHash& hash) {
  // A sequence at or below digest_seq is in the digests already (or the server sent an op
  // again below the cursor it was given, which changes nothing here).
  if (server_seq > digest_seq) unfolded.insert_or_assign(server_seq, std::pair{section, hash});
}

void SyncEngine::Plan::fold_digests(std::uint64_t up_to) {
  if (up_to <= digest_seq) return;
  auto end = unfolded.upper_bound(up_to);
  for (auto it = unfolded.begin(); it != end; ++it) {
    digests[it->second.first].add(it->second.second);
    digests_changed.insert(it->second.first);
  }
  unfolded.erase(unfolded.begin(), end);
  digest_seq = up_to;
}

// Inside the transaction that sets the cursor.
void SyncEngine::save_digests(Plan& p) {
  std::vector<StoredSectionDigest> changed;
  changed.reserve(p.digests_changed.size());
  for (const Section& s : p.digests_changed) changed.push_back({s.name(), p.digests[s]});
  store_.put_section_digests(p.id, p.digest_seq, changed);
  p.digests_changed.clear();
}

// Computes the digests again from every stored op with a server sequence: for an op of this
// device whose acknowledgement came after the cursor had passed it. Rare; reads the whole plan.
void SyncEngine::refold_digests(Plan& p) {
  p.digests.clear();
  p.unfolded.clear();
  p.digests_changed.clear();
  p.digest_seq = 0;
  std::uint64_t after = 0;
  for (;;) {
    auto batch = store_.ops(p.id, after, 1000);
    if (batch.empty()) break;
    for (const StoredOp& s : batch) {
      after = s.local_index;
      p.hold_for_digest(s.server_seq, Section::parse(s.section), op_hash(s.header, s.body));
    }
  }
  auto tx = store_.begin();
  p.fold_digests(store_.cursor(p.id));
  store_.clear_section_digests(p.id);
  save_digests(p);
  tx.commit();
}

std::set<Section> SyncEngine::readable_sections(const Plan& p) const {
  std::set<Section> all;
  for (std::string_view name : kKnownSections) all.insert(Section::parse(name));
  for (const auto& [section, digest] : p.digests) all.insert(section);
  for (const MemberView& m : p.log.members()) {
    if (m.account != me_.account()) continue;
    for (const auto& [section, grant] : m.grants) all.insert(section);
  }
  std::set<Section> out;
  const std::uint64_t now = now_ms_();
  for (const Section& s : all) {
    if (p.log.permission(me_.account(), s, {}, now) >= Permission::kRead) out.insert(s);
  }
  return out;
}

std::vector<kith::v1::ClientMessage> SyncEngine::check_checksums(
    Plan& p, const kith::v1::CatchUpComplete& done) {
  const std::set<Section> newly_readable = std::exchange(p.newly_readable, {});
  // This device's digests at the catch-up's server_seq: what the cursor reached, and what it
  // holds past the cursor up to there (ops behind one that waits for its head, its own ops).
  std::map<Section, SectionDigest> mine = p.digests;
  for (auto it = p.unfolded.begin(); it != p.unfolded.end() && it->first <= done.server_seq();
       ++it) {
    mine[it->second.first].add(it->second.second);
  }
  std::map<Section, const kith::v1::SectionChecksum*> theirs;
  std::set<Section> repeated;
  for (const auto& c : done.checksums()) {
    try {
      Section s = Section::parse(c.section());
      if (!theirs.emplace(s, &c).second) repeated.insert(s);
    } catch (const SyncError&) {
      // A section name that is not valid names no section this device may read.
    }
  }
  // Every section this device may read, whether either side has ops in it (a section of
  // another name than the known ones may be named by the server alone). A section without ops
  // has no checksum (the server sends none).
  std::set<Section> sections = readable_sections(p);
  const std::uint64_t now = now_ms_();
  for (const auto& [s, c] : theirs) {
    if (p.log.permission(me_.account(), s, {}, now) >= Permission::kRead) sections.insert(s);
  }
  std::vector<std::pair<Section, std::string>> differing;
  for (const Section& s : sections) {
    const SectionDigest& d = mine[s];
    auto it = theirs.find(s);
    const kith::v1::SectionChecksum* c = it == theirs.end() ? nullptr : it->second;
    const bool same =
        c ? !repeated.count(s) && d.matches(c->op_count(), crypto::as_bytes(c->digest()))
          : d.op_count == 0;
    if (!same) differing.emplace_back(s, difference(s, d, c, repeated.count(s) > 0));
  }
  if (differing.empty()) {
    p.refetching = false;
    p.checksums_failed = false;
    return {};
  }
  if (p.refetching || p.checksums_failed) {
    // The plan was fetched from the start and the server still disagrees: fetching it again
    // would change nothing. What this device holds stays; the next catch-up compares again.
    p.refetching = false;
    p.checksums_failed = true;
    for (const auto& [section, why] : differing) {
      problem(p.id, SyncErrorCode::kServerDiverged,
              why +
                  ", even after fetching the whole plan again: the server may have lost or "
                  "altered changes. What this device holds is kept; tell the plan's owner, or "
                  "whoever runs the server");
    }
    return {};
  }
  // A section that became readable since the last catch-up differs as expected: the server
  // never sent its ops from before the cursor. The full fetch below brings them.
  bool expected = true;
  for (const auto& [section, why] : differing) expected &= newly_readable.count(section) > 0;
  if (!expected) {
    for (const auto& [section, why] : differing) {
      problem(p.id, SyncErrorCode::kChecksumMismatch,
              why + "; fetching the whole plan again from the server");
    }
  }
  // From the start: the cursor and the digests go back to 0 together. Ops already held arrive
  // again and count at the sequence the server gives them now; merging them again changes
  // nothing.
  auto tx = store_.begin();
  store_.set_cursor(p.id, 0);
  store_.clear_section_digests(p.id);
  tx.commit();
  p.digests.clear();
  p.unfolded.clear();
  p.digests_changed.clear();
  p.digest_seq = 0;
  p.refetching = true;
  return subscribe(p.id);
}

}  // namespace kith::sync
