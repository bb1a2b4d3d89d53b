/* The C ABI as an app uses it, from C: an owner and a family member exchange a plan through a
 * real kithd over TLS, and bad input comes back as a status and a message.
 *
 *   capi_exchange URL CA_FILE WORK_DIR     (or KITH_TEST_SERVER, KITH_TEST_CA, KITH_TEST_DIR)
 *
 * WORK_DIR is an empty directory the homes are made in. Exit 0 when every check passes; each
 * failed check prints one line to stderr. Compiled as C11 (-pedantic): kith.h must be plain C.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kith.h"

static int g_failures = 0;

#define CHECK(cond)                                                                   \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      fprintf(stderr, "%s:%d: CHECK failed: %s (last error: %s [%s])\n", __FILE__,    \
              __LINE__, #cond, kith_last_error(), kith_last_error_code());            \
      ++g_failures;                                                                   \
    }                                                                                 \
  } while (0)

/* The call must succeed; the test cannot go on otherwise. */
#define MUST(call)                                                                    \
  do {                                                                                \
    kith_status must_st_ = (call);                                                    \
    if (must_st_ != KITH_OK) {                                                        \
      fprintf(stderr, "%s:%d: %s returned %s: %s\n", __FILE__, __LINE__, #call,       \
              kith_status_name(must_st_), kith_last_error());                         \
      exit(1);                                                                        \
    }                                                                                 \
  } while (0)

/* The call must fail with `want` and leave a message behind. */
#define EXPECT_FAIL(call, want)                                                       \
  do {                                                                                \
    kith_status st_ = (call);                                                         \
    if (st_ != (want)) {                                                              \
      fprintf(stderr, "%s:%d: %s returned %s, expected %s (%s)\n", __FILE__, __LINE__, \
              #call, kith_status_name(st_), kith_status_name(want), kith_last_error()); \
      ++g_failures;                                                                   \
    } else if (kith_last_error()[0] == '\0' || kith_last_error_code()[0] == '\0') {   \
      fprintf(stderr, "%s:%d: %s failed without a message\n", __FILE__, __LINE__,     \
              #call);                                                                 \
      ++g_failures;                                                                   \
    } else if (strstr(kith_last_error(), "`kith") != NULL) {                          \
      /* an app's person has no kith command to run */                                \
      fprintf(stderr, "%s:%d: %s: a CLI hint in the message: %s\n", __FILE__,         \
              __LINE__, #call, kith_last_error());                                    \
      ++g_failures;                                                                   \
    } else {                                                                          \
      printf("  expected failure %s: %s [%s]\n", kith_status_name(st_),               \
             kith_last_error(), kith_last_error_code());                              \
    }                                                                                 \
  } while (0)

struct counts {
  int record_changed;
  int conflicts;
  int idle;
  int offline;
};

static void on_record_changed(void* user, const char* plan, const char* record,
                              const char* field) {
  struct counts* c = (struct counts*)user;
  (void)field;
  if (plan && plan[0] && record && record[0]) c->record_changed++;
}

static void on_conflict(void* user, const char* plan, const char* record, const char* field) {
  (void)plan;
  (void)record;
  (void)field;
  ((struct counts*)user)->conflicts++;
}

static void on_sync_state(void* user, kith_sync_state state, const char* plan,
                          uint64_t server_seq, uint64_t waiting) {
  struct counts* c = (struct counts*)user;
  (void)plan;
  (void)server_seq;
  (void)waiting;
  if (state == KITH_SYNC_IDLE) c->idle++;
  if (state == KITH_SYNC_OFFLINE) c->offline++;
}

static const char* arg_or_env(int argc, char** argv, int i, const char* env) {
  if (argc > i) return argv[i];
  return getenv(env);
}

static void path_join(char* out, size_t size, const char* dir, const char* name) {
  snprintf(out, size, "%s/%s", dir, name);
}

/* Copies the value of "key":"VALUE" after `from` in `json` into out (ids need no unescaping). */
static int json_string_after(const char* json, const char* from, const char* key, char* out,
                             size_t size) {
  char pattern[64];
  const char* p = from ? strstr(json, from) : json;
  const char* end;
  if (!p) return 0;
  snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
  p = strstr(p, pattern);
  if (!p) return 0;
  p += strlen(pattern);
  end = strchr(p, '"');
  if (!end || (size_t)(end - p) >= size) return 0;
  memcpy(out, p, (size_t)(end - p));
  out[end - p] = '\0';
  return 1;
}

/* A malloc'd copy of `s` with the first `from` replaced by `to` (a copy of `s` if none). */
static char* replaced(const char* s, const char* from, const char* to) {
  const char* at = strstr(s, from);
  size_t n = strlen(s) + strlen(to) + 1;
  char* out = (char*)malloc(n);
  if (!out) exit(1);
  if (!at) {
    memcpy(out, s, strlen(s) + 1);
    return out;
  }
  memcpy(out, s, (size_t)(at - s));
  strcpy(out + (at - s), to);
  strcat(out, at + strlen(from));
  return out;
}

/* How many times `needle` occurs in `s`. */
static int occurrences(const char* s, const char* needle) {
  int n = 0;
  for (s = strstr(s, needle); s; s = strstr(s + 1, needle)) ++n;
  return n;
}

int main(int argc, char** argv) {
  const char* url = arg_or_env(argc, argv, 1, "KITH_TEST_SERVER");
  const char* ca = arg_or_env(argc, argv, 2, "KITH_TEST_CA");
  const char* work = arg_or_env(argc, argv, 3, "KITH_TEST_DIR");
  char owner_dir[1024], member_dir[1024], late_dir[1024], nowhere[1024], restored_dir[1024];
  kith_home* owner = NULL;
  kith_home* member = NULL;
  kith_home* late = NULL;
  kith_home* restored = NULL;
  uint64_t readable = 0;
  char* recovery = NULL;
  char* owner_account = NULL;
  char* member_account = NULL;
  char* device = NULL;
  char* safety = NULL;
  char* plan = NULL;
  char* outcome = NULL;
  char* health = NULL;
  char* code = NULL;
  char* joined = NULL;
  char* json = NULL;
  char* after = NULL;
  char* bundle = NULL;
  char* member_bundle = NULL;
  char* copy = NULL;
  char* broken = NULL;
  struct counts owner_counts = {0, 0, 0, 0};
  struct counts member_counts = {0, 0, 0, 0};
  const char* outcome_names[] = {"text", "status"};
  const char* outcome_values[] = {"Walk to the shop on my own", "in-progress"};
  const char* health_names[] = {"text"};
  const char* health_values[] = {"Takes 5mg of something private"};
  const char* set_names[] = {"text"};
  const char* set_values[] = {"Walk to the shop and back on my own"};
  const char* late_names[] = {"text"};
  const char* late_values[] = {"Written after the revocation"};
  kith_status st;

  if (!url || !ca || !work) {
    fprintf(stderr, "usage: capi_exchange URL CA_FILE WORK_DIR\n");
    return 2;
  }
  path_join(owner_dir, sizeof owner_dir, work, "owner");
  path_join(member_dir, sizeof member_dir, work, "member");
  path_join(late_dir, sizeof late_dir, work, "late");
  path_join(nowhere, sizeof nowhere, work, "nowhere");
  path_join(restored_dir, sizeof restored_dir, work, "restored");
  printf("libkith %s against %s\n", kith_version(), url);

  /* --- Bad input before anything exists --- */
  EXPECT_FAIL(kith_home_open(nowhere, "pass", &owner), KITH_ERR_NOT_INITIALISED);
  EXPECT_FAIL(kith_home_open(NULL, "pass", &owner), KITH_ERR_INVALID_ARGUMENT);
  CHECK(owner == NULL);
  CHECK(strcmp(kith_status_name(KITH_ERR_NOT_FOUND), "KITH_ERR_NOT_FOUND") == 0);

  /* --- The owner: a home, a plan, records --- */
  MUST(kith_home_create(owner_dir, "Ada", "owner passphrase", &owner, &recovery));
  CHECK(recovery != NULL && strlen(recovery) > 20); /* kept for the lost phone, below */
  EXPECT_FAIL(kith_home_create(owner_dir, "Ada", "x", &late, NULL), KITH_ERR_ALREADY_INITIALISED);
  kith_home_close(owner);
  owner = NULL;
  EXPECT_FAIL(kith_home_open(owner_dir, "not the passphrase", &owner), KITH_ERR_WRONG_PASSPHRASE);
  CHECK(owner == NULL);
  MUST(kith_home_open(owner_dir, "owner passphrase", &owner));
  CHECK(kith_last_error()[0] == '\0'); /* a success clears the last error */

  MUST(kith_identity_account(owner, &owner_account));
  MUST(kith_identity_device(owner, &device));
  MUST(kith_identity_safety_number(owner, &safety));
  CHECK(strlen(owner_account) == 64);
  CHECK(strlen(device) == 64);
  CHECK(strlen(safety) == 35); /* 30 digits in 6 groups */
  printf("  owner %s, safety number %s\n", owner_account, safety);
  kith_string_free(device);
  kith_string_free(safety);

  MUST(kith_home_set_server(owner, url, ca, 10000));
  MUST(kith_home_on_record_changed(owner, on_record_changed, &owner_counts));
  MUST(kith_home_on_conflict(owner, on_conflict, &owner_counts));
  MUST(kith_home_on_sync_state(owner, on_sync_state, &owner_counts));
  EXPECT_FAIL(kith_home_set_server(owner, "http://nope", NULL, 0), KITH_ERR_INVALID_ARGUMENT);

  MUST(kith_plan_create(owner, "Ada's plan", &plan));
  CHECK(strlen(plan) == 32);
  MUST(kith_record_add(owner, plan, "outcome", outcome_names, outcome_values, 2, &outcome));
  MUST(kith_record_add(owner, "Ada's plan", "health", health_names, health_values, 1, &health));
  MUST(kith_record_set(owner, plan, outcome, set_names, set_values, 1));
  MUST(kith_record_show(owner, plan, outcome, &json));
  CHECK(strstr(json, "Walk to the shop and back on my own") != NULL);
  kith_string_free(json);
  MUST(kith_plan_list(owner, &json));
  CHECK(strstr(json, "Ada's plan") != NULL);
  kith_string_free(json);
  MUST(kith_conflict_list(owner, plan, &json));
  CHECK(strstr(json, "\"conflicts\":[]") != NULL);
  kith_string_free(json);

  /* Bad input on an open home. */
  EXPECT_FAIL(kith_record_list(owner, "no such plan", NULL, NULL, &json), KITH_ERR_NOT_FOUND);
  EXPECT_FAIL(kith_record_show(owner, plan, "abcdef", &json), KITH_ERR_NOT_FOUND);
  EXPECT_FAIL(kith_record_add(owner, plan, "spaceship", NULL, NULL, 0, &after),
              KITH_ERR_INVALID_FIELD);
  EXPECT_FAIL(kith_conflict_resolve(owner, plan, outcome, "text", "x"), KITH_ERR_NOT_FOUND);
  EXPECT_FAIL(kith_invite_create(owner, plan, "astronaut", 0, &code), KITH_ERR_INVALID_ARGUMENT);
  EXPECT_FAIL(kith_plan_list(NULL, &json), KITH_ERR_INVALID_ARGUMENT);

  /* --- Invite a family member; the invitation goes up with the sync --- */
  MUST(kith_invite_create(owner, plan, "family", 3600, &code));
  CHECK(strncmp(code, "KITH-", 5) == 0);
  MUST(kith_sync_once(owner, NULL));
  CHECK(owner_counts.idle == 1);
  CHECK(owner_counts.offline == 0);

  /* --- The member joins with the code --- */
  MUST(kith_home_create(member_dir, "Nia", "member passphrase", &member, NULL));
  EXPECT_FAIL(kith_invite_join(member, code, "Mum's plan", &joined), KITH_ERR_NO_SERVER);
  MUST(kith_home_set_server(member, url, ca, 10000));
  MUST(kith_home_on_record_changed(member, on_record_changed, &member_counts));
  MUST(kith_home_on_sync_state(member, on_sync_state, &member_counts));
  EXPECT_FAIL(kith_invite_join(member, "KITH-NOT-A-REAL-CODE", NULL, &joined),
              KITH_ERR_BAD_INVITE_CODE);
  MUST(kith_invite_join(member, code, "Mum's plan", &joined));
  CHECK(strcmp(joined, plan) == 0);
  CHECK(member_counts.record_changed >= 1);
  MUST(kith_identity_account(member, &member_account));

  /* What the member sees: the outcome (family reads outcomes), not the health record. */
  MUST(kith_record_list(member, "Mum's plan", NULL, NULL, &json));
  printf("  member sees: %s\n", json);
  CHECK(strstr(json, "Walk to the shop and back on my own") != NULL);
  CHECK(strstr(json, "something private") == NULL);
  CHECK(strstr(json, outcome) != NULL);
  kith_string_free(json);
  EXPECT_FAIL(kith_record_show(member, plan, health, &json), KITH_ERR_NOT_FOUND);
  MUST(kith_member_list(member, plan, &json));
  CHECK(strstr(json, owner_account) != NULL);
  CHECK(strstr(json, member_account) != NULL);
  kith_string_free(json);

  /* The code was single-use. */
  MUST(kith_home_create(late_dir, "Late", "late passphrase", &late, NULL));
  MUST(kith_home_set_server(late, url, ca, 10000));
  EXPECT_FAIL(kith_invite_join(late, code, NULL, &joined), KITH_ERR_INVITE_REFUSED);
  kith_home_close(late);

  /* --- The owner learns of the join, then revokes the member --- */
  MUST(kith_sync_once(owner, plan));
  MUST(kith_member_list(owner, plan, &json));
  CHECK(strstr(json, member_account) != NULL);
  CHECK(strstr(json, "\"name\":\"Nia\"") != NULL); /* the name the member shares */
  kith_string_free(json);
  /* The owner calls the member Ana, on the owner's device only. */
  EXPECT_FAIL(kith_member_name_set(owner, plan, member_account, "Ana\x1b[2J"),
              KITH_ERR_INVALID_ARGUMENT);
  EXPECT_FAIL(kith_member_name_set(owner, plan, member_account, ""), KITH_ERR_INVALID_ARGUMENT);
  MUST(kith_member_name_set(owner, plan, member_account, "Ana"));
  MUST(kith_member_list(owner, plan, &json));
  CHECK(strstr(json, "\"name\":\"Ana\"") != NULL);
  kith_string_free(json);
  MUST(kith_member_list(member, plan, &json));
  CHECK(strstr(json, "Ana") == NULL);
  CHECK(strstr(json, "\"name\":\"Ada\"") != NULL); /* the owner's shared name */
  kith_string_free(json);

  /* --- Export as an HL7 FHIR R4 document; import into another person's home --- */
  MUST(kith_plan_export_fhir(owner, plan, &bundle));
  CHECK(strstr(bundle, "\"resourceType\": \"Bundle\"") != NULL);
  CHECK(strstr(bundle, "\"type\": \"document\"") != NULL);
  CHECK(occurrences(bundle, "\"resourceType\": \"Consent\"") == 6); /* the family's grants */
  CHECK(strstr(bundle, "something private") != NULL); /* the owner reads health */
  MUST(kith_plan_export_fhir(member, "Mum's plan", &member_bundle));
  CHECK(strstr(member_bundle, "Walk to the shop and back on my own") != NULL);
  CHECK(strstr(member_bundle, "something private") == NULL); /* the family does not */
  EXPECT_FAIL(kith_plan_export_fhir(owner, "no such plan", &json), KITH_ERR_NOT_FOUND);
  EXPECT_FAIL(kith_plan_export_fhir(owner, plan, NULL), KITH_ERR_INVALID_ARGUMENT);

  MUST(kith_home_open(late_dir, "late passphrase", &late));
  EXPECT_FAIL(kith_plan_import_fhir(late, "not json", NULL, &copy), KITH_ERR_BAD_BUNDLE);
  CHECK(strcmp(kith_last_error_code(), "not_json") == 0);
  EXPECT_FAIL(kith_plan_import_fhir(late, "{\"resourceType\":\"Bundle\",\"type\":\"batch\"}",
                                    NULL, &copy),
              KITH_ERR_BAD_BUNDLE);
  CHECK(strcmp(kith_last_error_code(), "not_fhir_document") == 0);
  broken = replaced(bundle, "\"valueCode\": \"outcome\"", "\"valueCode\": \"wish\"");
  EXPECT_FAIL(kith_plan_import_fhir(late, broken, NULL, &copy), KITH_ERR_INVALID_FIELD);
  CHECK(strcmp(kith_last_error_code(), "unknown_type") == 0);
  free(broken);
  broken = replaced(bundle, "\"reference\": \"urn:uuid:", "\"reference\": \"urn:uuid:0");
  EXPECT_FAIL(kith_plan_import_fhir(late, broken, NULL, &copy), KITH_ERR_BAD_BUNDLE);
  CHECK(strcmp(kith_last_error_code(), "unresolved_reference") == 0);
  free(broken);
  EXPECT_FAIL(kith_plan_import_fhir(late, NULL, NULL, &copy), KITH_ERR_INVALID_ARGUMENT);
  MUST(kith_plan_list(late, &json));
  CHECK(strcmp(json, "[]") == 0); /* nothing was created by the refused imports */
  kith_string_free(json);
  MUST(kith_plan_import_fhir(late, bundle, NULL, &copy));
  MUST(kith_record_list(late, copy, NULL, NULL, &json));
  CHECK(strstr(json, "Walk to the shop and back on my own") != NULL);
  CHECK(strstr(json, "something private") != NULL);
  CHECK(occurrences(json, "\"type\":\"outcome\"") == 1);
  CHECK(occurrences(json, "\"type\":\"health\"") == 1);
  kith_string_free(json);
  MUST(kith_plan_list(late, &json));
  CHECK(strstr(json, "Ada's plan") != NULL);
  kith_string_free(json);
  MUST(kith_member_list(late, copy, &json)); /* the circle is not recreated: Late alone */
  CHECK(strstr(json, member_account) == NULL && strstr(json, owner_account) == NULL);
  kith_string_free(json);
  kith_home_close(late);
  kith_string_free(copy);
  kith_string_free(bundle);
  kith_string_free(member_bundle);
  EXPECT_FAIL(kith_member_revoke(owner, plan, "ffffffffffff", NULL), KITH_ERR_NOT_FOUND);
  EXPECT_FAIL(kith_member_revoke(member, plan, owner_account, NULL), KITH_ERR_FORBIDDEN);
  /* --- Grants: the owner lets Ana read health too --- */
  EXPECT_FAIL(kith_member_grant(owner, plan, "ana", "health:fly", 0), KITH_ERR_INVALID_FIELD);
  EXPECT_FAIL(kith_member_grant(owner, plan, "ana", "health:read", 1), KITH_ERR_INVALID_ARGUMENT);
  EXPECT_FAIL(kith_member_grant(owner, plan, "nobody", "health:read", 0), KITH_ERR_NOT_FOUND);
  EXPECT_FAIL(kith_member_grant(member, plan, owner_account, "health:read", 0), KITH_ERR_FORBIDDEN);
  MUST(kith_member_grant(owner, plan, "ana", "health:read", 0));
  MUST(kith_sync_once(owner, plan));
  MUST(kith_sync_once(member, plan));
  MUST(kith_record_list(member, plan, "health", NULL, &json));
  CHECK(strstr(json, "something private") != NULL);
  kith_string_free(json);

  /* The server lists the plan for the member, as a member's of the owner's. */
  MUST(kith_plan_list_remote(member, &json));
  CHECK(strstr(json, plan) != NULL && strstr(json, "\"owner\":false") != NULL);
  CHECK(strstr(json, owner_account) != NULL && strstr(json, "\"on_this_device\":true") != NULL);
  kith_string_free(json);

  MUST(kith_member_revoke(owner, plan, "ana", NULL)); /* by the name, any case */
  MUST(kith_record_add(owner, plan, "outcome", late_names, late_values, 1, &after));
  MUST(kith_sync_once(owner, plan));
  /* Revoked from every section: the server no longer lists the plan for the member. */
  MUST(kith_plan_list_remote(member, &json));
  CHECK(strcmp(json, "[]") == 0);
  kith_string_free(json);

  /* The member keeps what it had, and gets nothing new. */
  st = kith_sync_once(member, plan);
  printf("  member's sync after the revocation: %s %s\n", kith_status_name(st), kith_last_error());
  CHECK(st == KITH_OK || (st == KITH_ERR_SERVER && kith_last_error()[0] != '\0'));
  MUST(kith_record_list(member, plan, NULL, NULL, &json));
  CHECK(strstr(json, "Walk to the shop and back on my own") != NULL);
  CHECK(strstr(json, "after the revocation") == NULL);
  kith_string_free(json);

  /* --- The owner's access log --- */
  MUST(kith_access_log_fetch(owner, plan));
  MUST(kith_access_log_list(owner, plan, &json));
  CHECK(json[0] == '[' && strstr(json, "\"kind\":\"membership\"") != NULL);
  CHECK(strstr(json, member_account) != NULL);
  {
    char first_kind[32];
    CHECK(json_string_after(json, NULL, "kind", first_kind, sizeof first_kind));
  }
  kith_string_free(json);
  EXPECT_FAIL(kith_access_log_fetch(member, plan), KITH_ERR_SERVER);

  /* --- The owner's phone is lost: a new one from the recovery key reads the plan at once --- */
  EXPECT_FAIL(kith_home_restore(restored_dir, "Ada", "new passphrase", "ABCDE-12345", &restored),
              KITH_ERR_INVALID_ARGUMENT);
  CHECK(restored == NULL);
  MUST(kith_home_restore(restored_dir, "Ada", "new passphrase", recovery, &restored));
  MUST(kith_identity_account(restored, &device));
  CHECK(strcmp(device, owner_account) == 0); /* the same person, a new device */
  kith_string_free(device);
  device = NULL;
  EXPECT_FAIL(kith_plan_link(restored, plan, NULL, NULL), KITH_ERR_NO_SERVER);
  EXPECT_FAIL(kith_plan_list_remote(restored, &json), KITH_ERR_NO_SERVER);
  /* The system's trust store does not know kithd's development certificate. */
  MUST(kith_home_set_server(restored, url, NULL, 0));
  EXPECT_FAIL(kith_plan_list_remote(restored, &json), KITH_ERR_TLS);
  MUST(kith_home_set_server(restored, url, ca, 0));
  EXPECT_FAIL(kith_plan_list_remote(restored, NULL), KITH_ERR_INVALID_ARGUMENT);
  /* The new phone learns the plan's id from the server: the owner never wrote it down. */
  MUST(kith_plan_list_remote(restored, &json));
  CHECK(json[0] == '[' && occurrences(json, "\"id\"") == 1 && strstr(json, plan) != NULL);
  CHECK(strstr(json, "\"owner\":true") != NULL);
  CHECK(strstr(json, "\"on_this_device\":false") != NULL);
  CHECK(strstr(json, "\"title\"") == NULL); /* the server never sees titles */
  kith_string_free(json);
  EXPECT_FAIL(kith_plan_link(restored, "not a plan id", NULL, NULL), KITH_ERR_INVALID_ARGUMENT);
  MUST(kith_plan_link(restored, plan, "Ada's plan", &readable));
  CHECK(readable > 0);
  MUST(kith_record_list(restored, plan, "health", NULL, &json));
  CHECK(strstr(json, "something private") != NULL); /* only the owner's keys open health */
  kith_string_free(json);
  MUST(kith_plan_list_remote(restored, &json));
  CHECK(strstr(json, "\"on_this_device\":true") != NULL);
  CHECK(strstr(json, "\"title\":\"Ada's plan\"") != NULL);
  kith_string_free(json);
  EXPECT_FAIL(kith_plan_link(restored, plan, NULL, NULL), KITH_ERR_FAILED); /* linked already */
  kith_home_close(restored);
  if (recovery) memset(recovery, 0, strlen(recovery));
  kith_string_free(recovery);

  kith_string_free(owner_account);
  kith_string_free(member_account);

  kith_string_free(plan);
  kith_string_free(outcome);
  kith_string_free(health);
  kith_string_free(code);
  kith_string_free(joined);
  kith_string_free(after);
  kith_home_close(member);
  kith_home_close(owner);
  kith_home_close(NULL);

  if (g_failures) {
    fprintf(stderr, "%d check(s) failed\n", g_failures);
    return 1;
  }
  printf("all checks passed\n");
  return 0;
}
