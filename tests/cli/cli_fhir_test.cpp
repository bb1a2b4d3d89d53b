// kith export PLAN --fhir FILE and kith import FILE through the real binary: the file (0600,
// never clobbered without --force), the end-to-end path (an owner and their circle through kithd,
// the export validated by the official FHIR R4 schema, imported into another home with the same
// records), and each malformed import refused with nothing created.
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "cli_fixture.hpp"
#include "fhir_validator.hpp"

namespace kith::test {
namespace {

using nlohmann::json;

// A plan's records as (type, non-empty fields), sorted: equal across homes when the records are.
using Content = std::vector<std::pair<std::string, std::map<std::string, std::string>>>;

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void spit(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

unsigned mode_of(const std::string& path) {
  struct stat st {};
  ::stat(path.c_str(), &st);
  return st.st_mode & 0777;
}

class Fhir : public KithCli {
 protected:
  // A record of every type, as the owner writes them.
  void add_records(const Env& env, const std::string& plan) {
    ok(env, {"add", plan, "profile", "about_me=Retired teacher", "date_of_birth=1941-03-02"});
    ok(env, {"add", plan, "outcome", "text=Walk to the shop", "status=in-progress",
             "review_date=2026-03-01"});
    ok(env, {"add", plan, "support", "text=Shopping", "who=Nia", "time=09:30", "cost=12.50"});
    ok(env, {"add", plan, "activity", "kind=visit", "at=2026-01-05T09:30", "text=Visit done"});
    ok(env, {"add", plan, "note", "text=Called the GP"});
    ok(env, {"add", plan, "risk", "text=Falls", "level=medium", "crisis_plan=Call Nia"});
    ok(env, {"add", plan, "health", "text=Diabetes", "medicine=Metformin", "time=08:00"});
    ok(env, {"add", plan, "contact", "name=Lunch club", "kind=community-asset"});
    ok(env, {"add", plan, "assessment", "domain=mobility", "status=approved", "date=2026-01-02"});
    ok(env, {"add", plan, "budget", "amount=120.50", "date=2026-01-10", "band=7"});
  }

  Content content(const Env& env, const std::string& plan) const {
    Content out;
    // Held in a variable: a range over a member of a temporary would dangle.
    const nlohmann::json list = ok(env, {"--json", "list", plan}).json();
    for (const auto& r : list["records"]) {
      std::map<std::string, std::string> fields;
      for (const auto& [k, v] : r["fields"].items()) {
        if (!v.get<std::string>().empty()) fields[k] = v;
      }
      out.emplace_back(r["type"], fields);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  std::string file(const std::string& name) const { return (root / name).string(); }
};

TEST_F(Fhir, ExportWritesAFileOnlyTheOwnerCanReadAndSaysItIsNotEncrypted) {
  const Env ada = offline("ada");
  const std::string plan = init_with_plan(ada, "Ada", "Ada's plan");
  add_records(ada, plan);
  const auto r = ok(ada, {"export", plan, "--fhir", file("ada.json")});
  EXPECT_NE(r.out.find("not encrypted"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("10 records"), std::string::npos) << r.out;
  EXPECT_EQ(mode_of(file("ada.json")), 0600u);
  const json b = json::parse(slurp(file("ada.json")));
  EXPECT_EQ(b["resourceType"], "Bundle");
  EXPECT_EQ(b["type"], "document");
  const auto j = ok(ada, {"--json", "export", "Ada's plan", "--fhir", file("again.json")}).json();
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["plan"], plan);
  EXPECT_EQ(j["records"], 10);
  EXPECT_EQ(j["resources"], b["entry"].size());
  // Nothing but the file: no temporary left beside it.
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(root.path())) {
    files += e.is_regular_file();
  }
  EXPECT_EQ(files, 2u);
}

TEST_F(Fhir, ExportNeverReplacesAFileWithoutForce) {
  const Env ada = offline("ada");
  const std::string plan = init_with_plan(ada, "Ada", "Ada's plan");
  spit(file("taken.json"), "keep me");
  expect_refusal(ada, {"export", plan, "--fhir", file("taken.json")}, 1, "file_exists",
                 "already exists; add --force to replace it");
  EXPECT_EQ(slurp(file("taken.json")), "keep me");
  ok(ada, {"export", plan, "--fhir", file("taken.json"), "--force"});
  EXPECT_EQ(json::parse(slurp(file("taken.json")))["type"], "document");
  EXPECT_EQ(mode_of(file("taken.json")), 0600u);
}

TEST_F(Fhir, HelpSaysTheExportIsPlaintextAndImportRecreatesNoMembers) {
  const Env ada = offline("ada");
  const auto ex = ok(ada, {"export", "--help"}).out;
  EXPECT_NE(ex.find("NOT encrypted"), std::string::npos) << ex;
  EXPECT_NE(ex.find("0600"), std::string::npos) << ex;
  EXPECT_NE(ex.find("--force"), std::string::npos) << ex;
  const auto im = ok(ada, {"import", "--help"}).out;
  EXPECT_NE(im.find("not recreated"), std::string::npos) << im;
  expect_refusal(ada, {"export", "Ada's plan"}, 2, "usage", "--fhir is required");
}

TEST_F(Fhir, ImportMakesANewPlanOfYoursWithTheSameRecords) {
  const Env ada = offline("ada");
  const std::string plan = init_with_plan(ada, "Ada", "Ada's plan");
  add_records(ada, plan);
  ok(ada, {"export", plan, "--fhir", file("ada.json")});
  const Env bo = offline("bo");
  ok(bo, {"init", "--name", "Bo"});
  const auto r = ok(bo, {"import", file("ada.json")});
  EXPECT_NE(r.out.find("Imported 10 records into a new plan \"Ada's plan\""), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("not recreated"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("kith invite"), std::string::npos) << r.out;
  EXPECT_EQ(content(bo, "Ada's plan"), content(ada, plan));
  // Bo owns it: they can edit the imported records.
  const auto j = ok(bo, {"--json", "import", file("ada.json"), "--title", "Copy"}).json();
  EXPECT_EQ(j["records"], 10);
  EXPECT_EQ(j["by_type"]["budget"], 1);
  EXPECT_EQ(j["members_not_recreated"], 1);
  const std::string copy = j["plan"];
  const std::string goal = ok(bo, {"--json", "list", copy, "--type", "outcome"})
                               .json()["records"][0]["id"]
                               .get<std::string>();
  ok(bo, {"set", copy, goal, "status=achieved"});
  // And exporting the imported plan gives the same records again.
  ok(bo, {"export", copy, "--fhir", file("bo.json")});
  ok(bo, {"import", file("bo.json"), "--title", "Copy of copy"});
  auto want = content(ada, plan);
  for (auto& [type, fields] : want) {
    if (type == "outcome") fields["status"] = "achieved";
  }
  std::sort(want.begin(), want.end());
  EXPECT_EQ(content(bo, "Copy of copy"), want);
}

// The whole path: an owner, family and a nurse through kithd; each exports what they may read;
// the owner's export is valid against the FHIR R4 schema, lists one Consent per grant, and
// imports into another person's home with the same records.
TEST_F(Fhir, EndToEndExportValidatesAndImportsIntoAnotherHome) {
  start_kithd();
  const Env owner = online("owner");
  const std::string plan = init_with_plan(owner, "Mary", "Mary's plan");
  add_records(owner, plan);
  ok(owner, {"sync"});
  auto join = [&](const std::string& who, const std::string& role) {
    const auto inv = ok(owner, {"--json", "invite", plan, "--role", role}).json();
    const Env env = online(who);
    ok(env, {"init", "--name", who});
    ok(env, {"join", inv["code"].get<std::string>(), "--title", "Mary"});
    return env;
  };
  const Env family = join("family", "family");
  const Env nurse = join("nurse", "nurse");
  ok(family, {"add", "Mary", "note", "text=Came round for tea"});
  ok(family, {"sync"});
  ok(nurse, {"add", "Mary", "health", "text=Blood pressure fine"});
  ok(nurse, {"sync"});
  ok(owner, {"sync"});

  ok(owner, {"export", plan, "--fhir", file("mary.json")});
  const auto run = validate_with_schema(file("mary.json"));
  EXPECT_EQ(run.status, 0) << run.output;
  const json b = json::parse(slurp(file("mary.json")));
  expect_document_rules(b);
  std::size_t consents = 0, provenance = 0;
  for (const auto& e : b["entry"]) {
    consents += e["resource"]["resourceType"] == "Consent";
    provenance += e["resource"]["resourceType"] == "Provenance";
  }
  EXPECT_EQ(consents, 12u);  // family: 6 grants, nurse: 6 grants
  EXPECT_EQ(provenance, 12u);

  const Env cy = offline("cy");
  ok(cy, {"init", "--name", "Cy"});
  const auto made = ok(cy, {"--json", "import", file("mary.json")}).json();
  EXPECT_EQ(made["members_not_recreated"], 3);
  EXPECT_EQ(made["consents_not_recreated"], 12);
  EXPECT_EQ(content(cy, made["plan"]), content(owner, plan));

  // The family's export holds only what the family may read: no health, risk or budget.
  ok(family, {"export", "Mary", "--fhir", file("family.json")});
  EXPECT_EQ(validate_with_schema(file("family.json")).status, 0);
  const std::string text = slurp(file("family.json"));
  for (const char* hidden : {"Metformin", "Blood pressure", "Falls", "120.5"}) {
    EXPECT_EQ(text.find(hidden), std::string::npos) << hidden;
  }
  EXPECT_NE(text.find("Came round for tea"), std::string::npos);
}

// Each malformed import: refused with its code, status 2 (3 for a missing file), one line, and
// no plan created.
class BadImport : public Fhir {
 protected:
  void SetUp() override {
    env = offline("ada");
    plan = init_with_plan(env, "Ada", "Ada's plan");
    add_records(env, plan);
    ok(env, {"export", plan, "--fhir", file("good.json")});
    good = json::parse(slurp(file("good.json")));
    before = snapshot(env);
  }
  void expect_import_refused(const json& bundle, const std::string& code,
                             const std::string& message) {
    spit(file("bad.json"), bundle.dump());
    expect_import_refused(file("bad.json"), 2, code, message);
  }
  void expect_import_refused(const std::string& path, int status, const std::string& code,
                             const std::string& message) {
    expect_refusal(env, {"import", path}, status, code, message);
    EXPECT_EQ(snapshot(env), before) << "something changed";
  }
  json& first(const std::string& resource_type) {
    for (auto& e : good["entry"]) {
      if (e["resource"]["resourceType"] == resource_type) return e["resource"];
    }
    ADD_FAILURE() << "no " << resource_type;
    return good;
  }

  Env env;
  std::string plan;
  json good, before;
};

TEST_F(BadImport, NotJson) {
  spit(file("bad.json"), "resourceType: Bundle\n");
  expect_import_refused(file("bad.json"), 2, "not_json", "the file is not JSON");
}

TEST_F(BadImport, NotABundle) {
  expect_import_refused(first("Goal"), "not_fhir_bundle", "not a FHIR Bundle");
}

TEST_F(BadImport, NotADocument) {
  good["type"] = "collection";
  expect_import_refused(good, "not_fhir_document", "is not a FHIR document");
}

TEST_F(BadImport, CompositionNotFirst) {
  std::swap(good["entry"][0], good["entry"][2]);
  expect_import_refused(good, "composition_not_first", "first entry must be its Composition");
}

TEST_F(BadImport, SectionEntryNotInTheBundle) {
  good["entry"][0]["resource"]["section"][2]["entry"][0]["reference"] = "urn:uuid:gone";
  expect_import_refused(good, "unresolved_reference", "refers to urn:uuid:gone");
}

TEST_F(BadImport, SectionEntryWithoutAReference) {
  good["entry"][0]["resource"]["section"][2]["entry"][0] = json{{"display", "a goal"}};
  expect_import_refused(good, "unresolved_reference", "has no reference");
}

TEST_F(BadImport, ReferenceToNothingInTheBundle) {
  first("Goal")["subject"]["reference"] = "Patient/123";
  expect_import_refused(good, "unresolved_reference", "refers to Patient/123");
}

TEST_F(BadImport, FieldFailingItsCheck) {
  first("Goal")["target"] = json::array({{{"dueDate", "2026-02-30"}}});
  expect_import_refused(good, "invalid_field", "'target_date' must be a date");
}

TEST_F(BadImport, UnknownRecordType) {
  first("Goal")["extension"][0]["valueCode"] = "wish";
  expect_import_refused(good, "unknown_type", "'wish' is not a Kith record type");
}

TEST_F(BadImport, FileTooLarge) {
  std::filesystem::resize_file(file("good.json"), 16 * 1024 * 1024 + 1);
  expect_import_refused(file("good.json"), 2, "file_too_large", "larger than 16 MiB");
}

TEST_F(BadImport, NoSuchFile) {
  expect_import_refused(file("nowhere.json"), 3, "no_such_file", "no file");
}

}  // namespace
}  // namespace kith::test
