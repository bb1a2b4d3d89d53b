#!/usr/bin/env bash
# A walk through Kith for a newcomer: four people, one support plan, each seeing only what the
# owner granted them. Run it once the server is up (README command 1, `bash deploy/quickstart.sh`)
# from another terminal:
#
#   bash deploy/demo.sh
#
# Mary owns the plan; she invites her daughter Aisha (family), a district nurse (nurse) and a
# care-agency worker (provider). Each person is a separate `kith` home under a temporary folder,
# as if on four phones. Everything goes through the real server over TLS; the server stores only
# ciphertext. At the end Mary removes the nurse and reads the access log.
#
# Environment: KITH_SERVER (default wss://127.0.0.1:8443), KITH_CA (default var/kith/dev-cert.pem,
# or $KITH_DATA/dev-cert.pem), KITH_BIN (default build/clients/kith; built if missing),
# KITH_DEMO_DIR (where the four homes go; default a new temporary folder, removed at the end).
set -euo pipefail
cd "$(dirname "$0")/.."

export KITH_SERVER="${KITH_SERVER:-wss://127.0.0.1:8443}"
export KITH_CA="${KITH_CA:-${KITH_DATA:-var/kith}/dev-cert.pem}"
KITH_BIN="${KITH_BIN:-build/clients/kith}"
if [[ ! -x "$KITH_BIN" ]]; then
  cmake --preset default >/dev/null
  cmake --build --preset default -j "$(nproc)" --target kith
fi
if [[ ! -f "$KITH_CA" ]]; then
  echo "demo: no server certificate at $KITH_CA; start the server first (bash deploy/quickstart.sh)" >&2
  exit 1
fi

if [[ -n "${KITH_DEMO_DIR:-}" ]]; then
  homes="$KITH_DEMO_DIR"
  mkdir -p "$homes"
else
  homes="$(mktemp -d -t kith-demo-XXXXXX)"
  trap 'rm -rf "$homes"' EXIT
fi
# A demo passphrase for every home; a real person is asked for theirs on the terminal.
export KITH_PASSPHRASE="demo passphrase, not for real use"

as() {  # as PERSON kith-arguments...
  local who="$1"
  shift
  KITH_HOME="$homes/$who" "$KITH_BIN" "$@"
}
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
json_field() {  # json_field FIELD < one JSON object
  sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"
}

say "Four people set up Kith on their phones"
for who in mary aisha nurse agency; do
  as "$who" init --name "$who" >/dev/null
  echo "$who: $(as "$who" whoami | head -1)"
done

say "Mary writes her support plan"
plan="$(as mary plan create "Mary's support plan")"
as mary add "$plan" profile about_me="Retired teacher; loves her garden" \
  what_matters="Staying at home, seeing my grandchildren" >/dev/null
as mary add "$plan" outcome text="Walk to the corner shop each week" status=in-progress >/dev/null
as mary add "$plan" support text="Morning visit: breakfast and medicines" who="Care agency" >/dev/null
as mary add "$plan" risk text="Falls on the stairs at night" level=medium >/dev/null
as mary add "$plan" health text="Metformin 500 mg twice a day" >/dev/null
as mary add "$plan" note text="Prefers tea to coffee" >/dev/null
as mary sync "$plan"

say "Mary invites Aisha (family), the district nurse (nurse) and the care agency (provider)"
for pair in aisha:family nurse:nurse agency:provider; do
  who="${pair%%:*}"
  role="${pair##*:}"
  code="$(as mary --json invite "$plan" --role "$role" | json_field code)"
  echo "invitation for $who ($role): $code"
  as "$who" join "$code" --title "Mary's plan" | head -3
done

say "The agency worker records a visit"
as agency add "$plan" activity text="Visit: helped with lunch, Mary in good spirits" >/dev/null
as agency sync "$plan"

say "The nurse updates the medicines"
med="$(as nurse --json list "$plan" --section health | sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p' | head -1)"
as nurse set "$plan" "$med" text="Metformin 1 g twice a day" >/dev/null
as nurse sync "$plan"

for who in aisha nurse agency; do
  as "$who" sync "$plan" >/dev/null
  say "What $who sees"
  as "$who" show "$plan"
done

say "Mary removes the nurse; what the nurse synced before stays with her, nothing new reaches her"
nurse_id="$(as nurse --json whoami | json_field account)"
as mary sync "$plan" >/dev/null
as mary revoke "$plan" "$nurse_id" --yes
as mary add "$plan" health text="Insulin started" >/dev/null
as mary sync "$plan"
as nurse sync "$plan" || true
echo "the nurse's health records now:"
as nurse list "$plan" --section health

say "Mary's access log: who read which section, and who changed what"
as mary log "$plan"
