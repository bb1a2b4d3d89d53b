/* libkith: Kith's C ABI, for the iOS (Swift) and Android (Kotlin via JNI) apps.
 *
 * One `kith_home` is one person's device: a directory holding the key store (sealed under the
 * passphrase), the encrypted local store and a lock. Everything offline (plans, records,
 * conflicts, invitations, revocation) works without a server; `kith_sync_once` and
 * `kith_invite_join` talk to kithd over TLS, verified against the CA file given to
 * `kith_home_set_server` (or the system's trust store).
 *
 *   kith_home* home = NULL;
 *   if (kith_home_open("/data/kith", "correct horse", &home) != KITH_OK) {
 *     fprintf(stderr, "%s\n", kith_last_error());
 *   }
 *   char* plan = NULL;
 *   kith_plan_create(home, "Ada's plan", &plan);
 *   ...
 *   kith_string_free(plan);
 *   kith_home_close(home);
 *
 * Conventions
 * - Every function returns a kith_status. On failure, kith_last_error() holds one sentence a
 *   person can act on and kith_last_error_code() a stable lower_snake_case code (the same codes
 *   as the kith CLI's --json output, e.g. "unknown_plan"); out-parameters are left untouched.
 *   The sentence is the CLI's without its advice in CLI terms: where kith says "no plan 'x' on
 *   this device; `kith plan list` shows them", libkith says "no plan 'x' on this device".
 * - Strings in are UTF-8 and NUL-terminated; NULL where a string is required is
 *   KITH_ERR_INVALID_ARGUMENT. Strings out (`char**`) are allocated by the library and freed by
 *   the caller with kith_string_free(). JSON out is one UTF-8 JSON value.
 * - Ids (plans, records, accounts, devices) are lower-case hex. Where a function takes a PLAN,
 *   it accepts the id, an unambiguous start of it, or the plan's title; a RECORD, the id or an
 *   unambiguous start of it.
 *
 * Thread safety
 * - A kith_home is not thread-safe: use each handle from one thread at a time (it may move
 *   between threads). Different handles may be used on different threads at once.
 * - A home directory may be open in one handle at a time, across processes too (the handle
 *   holds the home's lock until kith_home_close; a second open waits up to 5 s, then fails with
 *   KITH_ERR_BUSY).
 * - kith_last_error() and kith_last_error_code() are per thread.
 * - Callbacks run synchronously on the thread that called kith_sync_once or kith_invite_join,
 *   before it returns. A callback must not call any kith function with the same handle (copy
 *   the ids it is given and act after the call returns); the strings it is given live only for
 *   the duration of the callback.
 *
 * No function throws or aborts on bad input; every one catches everything.
 */
#ifndef KITH_H
#define KITH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define KITH_API __attribute__((visibility("default")))
#else
#define KITH_API
#endif

/* Every function is noexcept to C++ callers: failures are status codes, never exceptions. */
#ifdef __cplusplus
#define KITH_NOEXCEPT noexcept
#else
#define KITH_NOEXCEPT
#endif

/* Status codes. The numbers are stable: new codes are added at the end, none is renumbered. */
typedef enum kith_status {
  KITH_OK = 0,                   /* success */
  KITH_ERR_INVALID_ARGUMENT = 1, /* a NULL or empty argument, a bad server URL, a bad role */
  KITH_ERR_NOT_INITIALISED = 2,  /* no identity in that home: kith_home_create first */
  KITH_ERR_ALREADY_INITIALISED = 3, /* kith_home_create on a home that has an identity */
  KITH_ERR_WRONG_PASSPHRASE = 4, /* the passphrase does not open this home's keys */
  KITH_ERR_KEYS = 5,             /* the key file or device description is damaged or too new */
  KITH_ERR_BUSY = 6,             /* another handle or process has this home open */
  KITH_ERR_NOT_FOUND = 7,        /* no such plan, record, member or conflict (or ambiguous) */
  KITH_ERR_FORBIDDEN = 8,        /* this person's grants do not allow the change */
  KITH_ERR_INVALID_FIELD = 9,    /* a field name or value, record type or section refused */
  KITH_ERR_BAD_INVITE_CODE = 10, /* an invite code that is mistyped, cut short or altered */
  KITH_ERR_INVITE_REFUSED = 11,  /* the invitation is unknown, used, expired or not as coded */
  KITH_ERR_NO_SERVER = 12,       /* network call with no server set (kith_home_set_server) */
  KITH_ERR_NETWORK = 13,         /* the server is unreachable, timed out or hung up */
  KITH_ERR_TLS = 14,             /* the server's certificate is not trusted, or TLS failed */
  KITH_ERR_SERVER = 15,          /* the server refused a request (see the message) */
  KITH_ERR_IO = 16,              /* the home directory or local store failed */
  KITH_ERR_FAILED = 17,          /* anything else (an internal error; see the message) */
  KITH_ERR_BAD_BUNDLE = 18       /* an import that is not a FHIR R4 document bundle Kith can read:
                                    too large, not JSON, not a document, a broken reference */
} kith_status;

/* A home: one person's device, opened with its passphrase. Opaque. */
typedef struct kith_home kith_home;

/* --- Errors, strings, version ----------------------------------------------------------- */

/* The message of the last failure on this thread ("" when none). Valid until the next kith call
 * on this thread; never NULL. */
KITH_API const char* kith_last_error(void) KITH_NOEXCEPT;
/* The stable code of the last failure on this thread ("" when none); same lifetime. */
KITH_API const char* kith_last_error_code(void) KITH_NOEXCEPT;
/* "KITH_ERR_NOT_FOUND", ...; a static string. */
KITH_API const char* kith_status_name(kith_status status) KITH_NOEXCEPT;
/* Frees a string the library returned. NULL is fine. */
KITH_API void kith_string_free(char* s) KITH_NOEXCEPT;
/* "0.1.0"; a static string. */
KITH_API const char* kith_version(void) KITH_NOEXCEPT;

/* --- Home -------------------------------------------------------------------------------- */

/* Creates an identity (from a fresh recovery key) and this device's keys in `dir` (created, mode
 * 0700), sealed under `passphrase`, and opens it. `name` is how the person calls themself.
 * `recovery_key` (may be NULL) receives the recovery key to show the person once; wipe it
 * before freeing. Fails with KITH_ERR_ALREADY_INITIALISED if `dir` has an identity. */
KITH_API kith_status kith_home_create(const char* dir, const char* name, const char* passphrase,
                                      kith_home** home, char** recovery_key) KITH_NOEXCEPT;
/* Restores this person's identity from their written-down `recovery_key` (any case, spaces or
 * hyphens) on a new device: new device keys in `dir`, sealed under `passphrase`, and opens it.
 * It holds no plans: kith_plan_link adds it to each. KITH_ERR_INVALID_ARGUMENT for a mistyped key
 * (the message names the group to check), KITH_ERR_ALREADY_INITIALISED if `dir` has an identity. */
KITH_API kith_status kith_home_restore(const char* dir, const char* name, const char* passphrase,
                                       const char* recovery_key, kith_home** home) KITH_NOEXCEPT;
/* Opens an existing home. KITH_ERR_NOT_INITIALISED, KITH_ERR_WRONG_PASSPHRASE, KITH_ERR_BUSY. */
KITH_API kith_status kith_home_open(const char* dir, const char* passphrase, kith_home** home) KITH_NOEXCEPT;
/* Saves and closes; releases the home's lock. NULL is fine. */
KITH_API void kith_home_close(kith_home* home) KITH_NOEXCEPT;
/* The server for kith_sync_once and kith_invite_join: `url` is wss://HOST:PORT; `ca_file` a PEM
 * file of the CA to trust, or NULL for the system's trust store. `timeout_ms` bounds connecting
 * and any silence from the server (0: 15 s). Nothing is contacted here. */
KITH_API kith_status kith_home_set_server(kith_home* home, const char* url, const char* ca_file,
                                          uint32_t timeout_ms) KITH_NOEXCEPT;

/* --- Identity ---------------------------------------------------------------------------- */

/* This person's account id (hex): what others name them by in a plan. */
KITH_API kith_status kith_identity_account(kith_home* home, char** account) KITH_NOEXCEPT;
/* This device's id (hex). */
KITH_API kith_status kith_identity_device(kith_home* home, char** device) KITH_NOEXCEPT;
/* This person's half of a safety number: 30 digits in 6 groups of 5, to compare in person. */
KITH_API kith_status kith_identity_safety_number(kith_home* home, char** digits) KITH_NOEXCEPT;

/* --- Plans ------------------------------------------------------------------------------- */

/* Creates a plan owned by this person; `plan_id` receives its id. */
KITH_API kith_status kith_plan_create(kith_home* home, const char* title, char** plan_id) KITH_NOEXCEPT;
/* [{"id","title","records","conflicts","waiting","cursor"}, ...]: the plans on this device. */
KITH_API kith_status kith_plan_list(kith_home* home, char** json) KITH_NOEXCEPT;
/* On a home made with kith_home_restore (network: needs kith_home_set_server): follows the plan
 * `plan_id` (32 hex digits) as `title` (NULL: "plan <id>"), brings its log and the keys the
 * account's recovery envelopes hold, and adds this device to it. `records` (may be NULL)
 * receives how many records are readable here now. Nothing is kept on failure:
 * KITH_ERR_INVALID_ARGUMENT for a malformed id, KITH_ERR_NOT_FOUND if the account is not in the
 * plan (or there is no such plan), KITH_ERR_FAILED if this device is in it already. */
KITH_API kith_status kith_plan_link(kith_home* home, const char* plan_id, const char* title,
                                    uint64_t* records) KITH_NOEXCEPT;
/* The plans the server says this person's account is in (network: needs kith_home_set_server),
 * for a home made with kith_home_restore to offer each to kith_plan_link. `json` receives
 * [{"id","owner","owner_account","created_at_ms","expires_at_ms","expired","on_this_device"
 *   [,"title"]}, ...] in plan-id order: `owner` true for the person's own plans, else
 * `owner_account` is the owner's account id; `created_at_ms` by the owner's device clock;
 * `expires_at_ms` 0 when access does not end, and `expired` true once it has (the plan stays
 * listed until a manager grants access again or revokes it; kith_plan_link then fails); `title`
 * only when `on_this_device`, since the server never sees titles. Changes nothing on the device.
 * KITH_ERR_NO_SERVER, KITH_ERR_NETWORK (unreachable, timed out), KITH_ERR_TLS (certificate not
 * trusted), KITH_ERR_SERVER (the server refused). */
KITH_API kith_status kith_plan_list_remote(kith_home* home, char** json) KITH_NOEXCEPT;

/* --- Export and import: HL7 FHIR R4 ------------------------------------------------------ */

/* The plan, as far as this person may read it, as an HL7 FHIR R4 `document` Bundle (indented
 * UTF-8 JSON): a Composition with a section per Kith section, a resource per record (with every
 * field), the circle of support (members by account id), one Consent per grant (the section as
 * meta.security, the expiry as the period) and a Provenance per record (who wrote it, when).
 * Never keys, envelopes or ciphertext. `json` receives it. It is plaintext health data: an app
 * that stores or shares it should keep it readable by the person alone (the kith CLI writes it
 * with mode 0600) and say so. Offline. */
KITH_API kith_status kith_plan_export_fhir(kith_home* home, const char* plan,
                                           char** json) KITH_NOEXCEPT;
/* Makes a new plan owned by this person from a bundle kith_plan_export_fhir made (`json`, at
 * most 16 MiB), titled `title` (NULL: the bundle's), holding its records with their types and
 * fields. Members, grants and consents are NOT recreated: the plan is this person's alone until
 * they invite people again (tell them so). The whole bundle is checked first, and on any failure
 * nothing is created: KITH_ERR_BAD_BUNDLE (codes file_too_large, not_json, not_fhir_bundle,
 * not_fhir_document, composition_not_first, bad_fhir_entry, unresolved_reference),
 * KITH_ERR_INVALID_FIELD (unknown_type, invalid_field). `plan_id` (may be NULL) receives the new
 * plan's id. Offline; the plan goes to the server with the next kith_sync_once. */
KITH_API kith_status kith_plan_import_fhir(kith_home* home, const char* json, const char* title,
                                           char** plan_id) KITH_NOEXCEPT;

/* --- Records ----------------------------------------------------------------------------- */

/* Adds a record of `type` (outcome, support, activity, note, risk, health, contact, profile,
 * assessment, budget; the type implies the section) with `count` fields, names[i] = values[i]
 * (names/values may be NULL when count is 0); `record_id` receives its id. */
KITH_API kith_status kith_record_add(kith_home* home, const char* plan, const char* type,
                                     const char* const* names, const char* const* values,
                                     size_t count, char** record_id) KITH_NOEXCEPT;
/* Sets fields of a record (count >= 1). Setting a field in conflict resolves the conflict. */
KITH_API kith_status kith_record_set(kith_home* home, const char* plan, const char* record,
                                     const char* const* names, const char* const* values,
                                     size_t count) KITH_NOEXCEPT;
/* {"plan": id, "records": [{"id","type","section","fields":{...},...}, ...]}: the records this
 * person may read. `section` and `type` filter (NULL: all). */
KITH_API kith_status kith_record_list(kith_home* home, const char* plan, const char* section,
                                      const char* type, char** json) KITH_NOEXCEPT;
/* {"plan": id, "record": {...}, "conflict_values": [...]}: one record in full. */
KITH_API kith_status kith_record_show(kith_home* home, const char* plan, const char* record,
                                      char** json) KITH_NOEXCEPT;

/* --- Conflicts --------------------------------------------------------------------------- */

/* {"plan": id, "conflicts": [{"record","field","values":[...]}, ...]}: concurrent edits of one
 * field waiting for a person to choose. */
KITH_API kith_status kith_conflict_list(kith_home* home, const char* plan, char** json) KITH_NOEXCEPT;
/* Settles the conflict on `field` of `record` with `value`. KITH_ERR_NOT_FOUND when that field
 * has no conflict. */
KITH_API kith_status kith_conflict_resolve(kith_home* home, const char* plan, const char* record,
                                           const char* field, const char* value) KITH_NOEXCEPT;

/* --- Circle of support --------------------------------------------------------------------- */

/* Invites someone into `plan` with the grants of `role` ("family", "nurse", "provider",
 * "social-worker"), valid for `valid_for_seconds` (0: 7 days). Offline: the invitation goes
 * to the server with the next kith_sync_once, which must happen before the code is used.
 * `code` receives the invite code ("KITH-..."): a secret, anyone holding it can join. */
KITH_API kith_status kith_invite_create(kith_home* home, const char* plan, const char* role,
                                        uint64_t valid_for_seconds, char** code) KITH_NOEXCEPT;
/* Joins the plan an invite code is for (network: needs kith_home_set_server), calling it
 * `title` (NULL: "Shared plan"), and syncs it once. `plan_id` (may be NULL) receives its id.
 * KITH_ERR_BAD_INVITE_CODE for a malformed code (nothing sent), KITH_ERR_INVITE_REFUSED for
 * one the plan does not accept. */
KITH_API kith_status kith_invite_join(kith_home* home, const char* code, const char* title,
                                      char** plan_id) KITH_NOEXCEPT;
/* {"plan": id, "members": [{"account","owner","you","devices":[...],
 *   "grants":[{"section","permission","expires_at_ms"}], "name" (when this device gave one)},
 *   ...]}: the circle as this device knows it (after its last sync). */
KITH_API kith_status kith_member_list(kith_home* home, const char* plan, char** json) KITH_NOEXCEPT;
/* Calls `member` (account id, an unambiguous start of it, or their current name) `name` on this
 * device only: sealed in the local store, never sent. The name then stands for them as `member`
 * here and in kith_member_list and record authors. KITH_ERR_INVALID_ARGUMENT for a bad name
 * (empty, over 64 bytes, control characters, all hex digits) or one another member has. */
KITH_API kith_status kith_member_name_set(kith_home* home, const char* plan, const char* member,
                                          const char* name) KITH_NOEXCEPT;
/* Sets `member`'s permission on one section: `grant` is "SECTION:PERM" (PERM read, append,
 * write or manage), until `expires_at_ms` (Unix ms; 0: no expiry). Raising access hands over
 * the section's keys; lowering it to none is kith_member_revoke. Offline; goes out with the next
 * sync. KITH_ERR_INVALID_FIELD for a malformed grant, KITH_ERR_INVALID_ARGUMENT for an expiry
 * already past, KITH_ERR_NOT_FOUND for an unknown member, KITH_ERR_FORBIDDEN unless this account
 * manages the section. */
KITH_API kith_status kith_member_grant(kith_home* home, const char* plan, const char* member,
                                       const char* grant, uint64_t expires_at_ms) KITH_NOEXCEPT;
/* Removes `member`'s (account id, an unambiguous start of it, or the name this device gave
 * them) access to `section` (NULL: all sections) and rotates the keys they held. Offline; goes
 * out with the next sync. */
KITH_API kith_status kith_member_revoke(kith_home* home, const char* plan, const char* member,
                                        const char* section) KITH_NOEXCEPT;

/* --- Access log -------------------------------------------------------------------------- */

/* [{"at_ms","kind":"read"|"change"|"membership","account","device","section","text"}, ...] in
 * time order: who read which section up to where (as of the last kith_access_log_fetch), who
 * changed what and who changed the circle. */
KITH_API kith_status kith_access_log_list(kith_home* home, const char* plan, char** json) KITH_NOEXCEPT;
/* Fetches the server's read log for `plan` (network; only the owner may: others get
 * KITH_ERR_SERVER). */
KITH_API kith_status kith_access_log_fetch(kith_home* home, const char* plan) KITH_NOEXCEPT;

/* --- Sync and callbacks ------------------------------------------------------------------ */

/* Where a sync is. */
typedef enum kith_sync_state {
  KITH_SYNC_CONNECTING = 0, /* opening the connection (plan_id NULL) */
  KITH_SYNC_PLAN = 1,       /* starting to sync plan_id */
  KITH_SYNC_PROGRESS = 2,   /* applied plan_id up to server_seq; more batches may follow */
  KITH_SYNC_PLAN_DONE = 3,  /* plan_id synced: server_seq reached, `waiting` ops not uploaded */
  KITH_SYNC_IDLE = 4,       /* finished; the connection is closed (plan_id NULL) */
  KITH_SYNC_OFFLINE = 5     /* failed to connect or lost the connection (plan_id may be NULL) */
} kith_sync_state;

/* A record arrived or changed (field "" for the record as a whole: created or deleted). */
typedef void (*kith_record_changed_fn)(void* user, const char* plan_id, const char* record_id,
                                       const char* field);
/* Concurrent edits of `field` of `record_id` now wait for a person (kith_conflict_list). */
typedef void (*kith_conflict_fn)(void* user, const char* plan_id, const char* record_id,
                                 const char* field);
typedef void (*kith_sync_state_fn)(void* user, kith_sync_state state, const char* plan_id,
                                   uint64_t server_seq, uint64_t waiting);

/* Registers (or, with fn NULL, removes) a callback on the home; `user` is passed back as is. */
KITH_API kith_status kith_home_on_record_changed(kith_home* home, kith_record_changed_fn fn,
                                                 void* user) KITH_NOEXCEPT;
KITH_API kith_status kith_home_on_conflict(kith_home* home, kith_conflict_fn fn, void* user) KITH_NOEXCEPT;
KITH_API kith_status kith_home_on_sync_state(kith_home* home, kith_sync_state_fn fn, void* user) KITH_NOEXCEPT;

/* Pushes and pulls `plan` (NULL: every plan on this device) once: connects (registering this
 * device on first contact), catches up, uploads what is waiting, waits for the acks. Network:
 * needs kith_home_set_server. KITH_ERR_SERVER when the server refused part of it. */
KITH_API kith_status kith_sync_once(kith_home* home, const char* plan) KITH_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif /* KITH_H */
