// Checks a FHIR bundle two ways, for kith_fhir_tests and the CLI's end-to-end test:
//
//   validate_with_schema(file)  the official FHIR R4 JSON schema, through validate_fhir.py and
//                               python3-jsonschema (paths from the kith_fhir_validator target);
//   expect_document_rules(b)    the rules of a FHIR document the schema cannot express, checked
//                               here independently of kith_fhir's own check_document().
//
// A missing schema, python3 or jsonschema makes validate_with_schema fail (status 1 with the
// reason), never pass or skip.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace kith::test {

struct SchemaRun {
  int status = -1;  // validate_fhir.py's exit status; -1 when it did not run
  std::string output;
};

inline std::string shell_quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

inline SchemaRun validate_with_schema(const std::filesystem::path& file) {
  SchemaRun run;
  if (!std::filesystem::exists(KITH_FHIR_SCHEMA)) {
    run.output = std::string("the FHIR R4 schema is missing: ") + KITH_FHIR_SCHEMA +
                 " (deploy/fetch-fhir-schema.sh, run when CMake configures)";
    run.status = 1;
    return run;
  }
  const std::string cmd = shell_quoted(KITH_PYTHON3) + " " + shell_quoted(KITH_FHIR_VALIDATOR) +
                          " " + shell_quoted(KITH_FHIR_SCHEMA) + " " + shell_quoted(file.string()) +
                          " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) {
    run.output = "cannot run " + cmd;
    return run;
  }
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) run.output.append(buf, n);
  const int ws = ::pclose(p);
  run.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
  return run;
}

// Bundle.type document; entry[0] the Composition; fullUrls unique; Composition.subject a Patient
// in the bundle; every Composition.section.entry and every other reference in the bundle resolves
// to an entry's fullUrl; every entry but the Composition is listed in a section.
inline void expect_document_rules(const nlohmann::json& bundle) {
  ASSERT_EQ(bundle.value("resourceType", ""), "Bundle");
  EXPECT_EQ(bundle.value("type", ""), "document");
  EXPECT_TRUE(bundle.contains("identifier") && bundle.contains("timestamp"));
  const auto& entries = bundle.at("entry");
  ASSERT_FALSE(entries.empty());
  ASSERT_EQ(entries[0]["resource"]["resourceType"], "Composition");
  std::map<std::string, std::string> type_of;
  for (const auto& e : entries) {
    const std::string url = e.at("fullUrl");
    EXPECT_TRUE(url.starts_with("urn:uuid:")) << url;
    EXPECT_TRUE(type_of.emplace(url, e["resource"]["resourceType"]).second) << "twice: " << url;
  }
  const auto& comp = entries[0]["resource"];
  const std::string subject = comp["subject"]["reference"];
  EXPECT_EQ(type_of[subject], "Patient") << subject;
  std::map<std::string, int> listed;
  for (const auto& s : comp.at("section")) {
    for (const auto& ref : s.at("entry")) {
      const std::string r = ref.at("reference");
      EXPECT_TRUE(type_of.count(r)) << "section " << s["title"] << " lists " << r;
      ++listed[r];
    }
  }
  for (const auto& [url, type] : type_of) {
    if (type != "Composition" && url != subject) {
      EXPECT_EQ(listed[url], 1) << type << " " << url << " is not listed in exactly one section";
    }
  }
  // Every other reference, anywhere.
  std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& j) {
    if (j.is_object()) {
      for (const auto& [k, v] : j.items()) {
        if (k == "reference" && v.is_string()) {
          EXPECT_TRUE(type_of.count(v.get<std::string>())) << "unresolved " << v;
        } else {
          walk(v);
        }
      }
    } else if (j.is_array()) {
      for (const auto& v : j) walk(v);
    }
  };
  walk(bundle);
}

}  // namespace kith::test
