#!/usr/bin/env bash
# Installs what the tests need and is missing (Debian packages: PostgreSQL,
# OpenSSH, Redis, Chromium, gcc, Prometheus, Alertmanager, systemd, buildah,
# runc, Node.js; mailpit; the OpenAPI linters and client generator and
# axe-core from npm), then runs
# go vet and every test with the race detector. Used by .ci/run and by people:
#   ./scripts/test.sh            # everything
#   ./scripts/test.sh ./store/   # some packages
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
have_pg() { command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
have_pg || need+=(postgresql)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v amtool >/dev/null 2>&1 || need+=(prometheus-alertmanager)
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
# The image test (deploy/image_test.go): buildah builds the image, runc runs it.
command -v buildah >/dev/null 2>&1 || need+=(buildah)
command -v runc >/dev/null 2>&1 || need+=(runc)
# The README install test (deploy/install_test.go) makes tokens with openssl.
command -v openssl >/dev/null 2>&1 || need+=(openssl)

if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The Debian packages start servers of their own; the tests start theirs.
  $SUDO service postgresql stop >/dev/null 2>&1 || true
  $SUDO service ssh stop >/dev/null 2>&1 || true
  $SUDO service redis-server stop >/dev/null 2>&1 || true
  $SUDO service prometheus stop >/dev/null 2>&1 || true
  $SUDO service prometheus-alertmanager stop >/dev/null 2>&1 || true
  $SUDO service prometheus-node-exporter stop >/dev/null 2>&1 || true
fi

# mailpit (a real SMTP server for the email receiver's tests), from the Go
# module proxy; keep the version in step with internal/testsrv/mailpit.go.
if ! command -v mailpit >/dev/null 2>&1 && [ ! -x "$(go env GOPATH)/bin/mailpit" ]; then
  echo "installing mailpit"
  CGO_ENABLED=0 go install github.com/axllent/mailpit@v1.27.11
fi

# The OpenAPI linters (@redocly/cli, @stoplight/spectral-cli) and client
# generator (openapi-typescript, typescript) that
# api/openapi_lint_test.go runs, pinned by tools/lint/package-lock.json;
# npm ci runs again only when the lockfile changed since the last install.
if ! cmp -s tools/lint/package-lock.json tools/lint/node_modules/.etlhub-installed-lock; then
  echo "installing the OpenAPI linters (npm ci in tools/lint)"
  (cd tools/lint && npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json node_modules/.etlhub-installed-lock)
fi

# axe-core, the accessibility engine the dashboard's Chromium tests run on
# each view, pinned by tools/axe/package-lock.json.
if ! cmp -s tools/axe/package-lock.json tools/axe/node_modules/.etlhub-installed-lock; then
  echo "installing axe-core (npm ci in tools/axe)"
  (cd tools/axe && npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json node_modules/.etlhub-installed-lock)
fi

pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)

export CGO_ENABLED=1
echo "go vet ${pkgs[*]}"
go vet "${pkgs[@]}"
if [ $# -eq 0 ]; then
  # The deploy tests cross-compile the release (from a cold build cache,
  # minutes of CPU per target) and build an image: run after the rest, not
  # beside them, so the importer's end-to-end tests never share two cores
  # with three compilers and time out for it.
  mapfile -t first < <(go list ./... | grep -v '/deploy$')
  echo "go test -race (every package but deploy)"
  go test -race -timeout 30m "${first[@]}"
  echo "go test -race ./deploy/"
  go test -race -timeout 30m ./deploy/
else
  echo "go test -race ${pkgs[*]}"
  go test -race -timeout 30m "${pkgs[@]}"
fi

# Fuzz targets, each for a short budget (ETLHUB_FUZZTIME), when the whole suite runs.
if [ $# -eq 0 ]; then
  for target in FuzzValidate FuzzCSVReader; do
    echo "go test -fuzz $target ./importer/oneroster/"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "${ETLHUB_FUZZTIME:-20s}" ./importer/oneroster/
  done
fi
