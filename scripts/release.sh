#!/usr/bin/env bash
# Builds the release binaries of the plugin into dist/ with their SHA-256 sums:
#
#   dist/vault-plugin-openai_<version>_<os>_<arch>   (linux/amd64, linux/arm64, darwin/arm64, darwin/amd64)
#   dist/SHA256SUMS                                  (sha256sum format: "<hex>  <file>")
#
# Static (CGO_ENABLED=0), -trimpath, the version stamped into backend.Version as
# `make build` does (the plugin reports it as its running version). Settings:
#   VERSION    the version to stamp, default v0.1.0; Vault's plugin catalog wants
#              semantic versions, so anything not vX.Y.Z[-pre][+build] is refused
#   DIST       output directory, default dist/ in the repository; emptied first
#   PLATFORMS  space-separated os/arch list, default the four above
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${VERSION:-v0.1.0}"
DIST="${DIST:-$root/dist}"
PLATFORMS="${PLATFORMS:-linux/amd64 linux/arm64 darwin/arm64 darwin/amd64}"
GO="${GO:-go}"
MODULE=github.com/vault-plugin-openai/vault-plugin-openai
NAME=vault-plugin-openai

semver='^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$'
if [[ ! "$VERSION" =~ $semver ]]; then
	echo "release.sh: VERSION=$VERSION is not a semantic version like v0.1.0" >&2
	exit 2
fi

mkdir -p "$DIST"
DIST="$(cd "$DIST" && pwd)"
rm -f "$DIST/$NAME"_* "$DIST/SHA256SUMS"

cd "$root"
files=()
for p in $PLATFORMS; do
	os="${p%/*}" arch="${p#*/}"
	out="${NAME}_${VERSION}_${os}_${arch}"
	echo "release.sh: building $out" >&2
	CGO_ENABLED=0 GOOS="$os" GOARCH="$arch" "$GO" build -trimpath \
		-ldflags "-X $MODULE/backend.Version=$VERSION" \
		-o "$DIST/$out" ./cmd/vault-plugin-openai
	files+=("$out")
done

cd "$DIST"
if command -v sha256sum >/dev/null; then
	sha256sum "${files[@]}" >SHA256SUMS
else
	shasum -a 256 "${files[@]}" >SHA256SUMS # macOS
fi
cat SHA256SUMS
echo "release.sh: wrote ${#files[@]} binaries and SHA256SUMS to $DIST" >&2
