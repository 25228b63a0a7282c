#!/usr/bin/env bash
# Release builds: static binaries (CGO_ENABLED=0, pure-Go SQLite, the time zone
# database inside) for linux/amd64, linux/arm64 and darwin/arm64, each in a
# tar.gz with LICENSE and README, and SHA256SUMS over the archives. The version
# is injected (etlhub version, the etlhub_build_info metric).
#   ./scripts/release.sh v1.2.3        # dist/etlhub_v1.2.3_linux_amd64.tar.gz ...
#   ./scripts/release.sh --snapshot    # an unreleased build (CI runs this)
# DIST (dist) is where they go; TARGETS overrides the list ("linux/amd64").
set -euo pipefail
cd "$(dirname "$0")/.."

commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
case "${1:-}" in
  --snapshot) version="v0.0.0-snapshot.$(date -u +%Y%m%d%H%M%S).${commit}" ;;
  v[0-9]*) version=$1 ;;
  *) echo "usage: scripts/release.sh vX.Y.Z | --snapshot" >&2; exit 2 ;;
esac
out=${DIST:-dist}
targets=${TARGETS:-"linux/amd64 linux/arm64 darwin/arm64"}
mkdir -p "$out"

for t in $targets; do
  os=${t%/*}; arch=${t#*/}
  name="etlhub_${version}_${os}_${arch}"
  rm -rf "${out:?}/$name"; mkdir -p "$out/$name"
  echo "building $name"
  SECONDS=0
  CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -tags timetzdata \
    -ldflags "-s -w -X main.version=${version} -X main.commit=${commit}" \
    -o "$out/$name/etlhub" ./cmd/etlhub
  cp LICENSE README.md CHANGELOG.md "$out/$name/"
  tar -czf "$out/$name.tar.gz" -C "$out" "$name"
  echo "built $name in ${SECONDS}s"
done
( cd "$out" && sha256sum etlhub_"${version}"_*.tar.gz > "etlhub_${version}_SHA256SUMS" )
echo "$version" > "$out/VERSION"
echo "wrote $out/etlhub_${version}_SHA256SUMS:"
cat "$out/etlhub_${version}_SHA256SUMS"
