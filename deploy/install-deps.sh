#!/usr/bin/env bash
# Installs every Debian 12 package Kith needs to build and test. Idempotent: when everything
# is already installed it prints nothing and changes nothing.
set -euo pipefail

packages=(
  g++ cmake make pkg-config ccache
  libsodium-dev        # kith_crypto
  libsqlite3-dev       # kith_sync local store
  libgtest-dev libgmock-dev  # tests
  libbenchmark-dev     # bench/
  nlohmann-json3-dev   # test vectors (JSON)
  libprotobuf-dev protobuf-compiler  # sync wire schema (kith/v1/sync.proto)
  libboost1.81-dev libssl-dev  # kithd and the client transport (Beast/Asio over OpenSSL TLS)
  libcli11-dev         # command-line, environment and config-file options (kithd, kith)
  libqrencode-dev      # kith invite: the code as a QR code in the terminal
  python3-jsonschema   # tests/fhir/validate_fhir.py: the FHIR export against the FHIR R4 schema
)
# npm fetches the FHIR R4 schema for the tests (deploy/fetch-fhir-schema.sh); a Node.js that
# brings its own npm (not Debian's) counts.
command -v npm >/dev/null || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
