#!/usr/bin/env bash
# Prints the path of a Vault server binary on stdout; everything else goes to stderr.
#
# Order: $VAULT_BIN if set, else `vault` on PATH, else the pinned version built from
# scripts/vault (go.mod + go.sum) into a cache outside the repository, so a fresh
# machine needs nothing but Go. The build is written to a temporary file and renamed
# into place, so an interrupted build never leaves a half-written binary in the cache.
set -euo pipefail

VAULT_VERSION=1.21.0
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [[ -n "${VAULT_BIN:-}" ]]; then
	if [[ ! -x "$VAULT_BIN" ]]; then
		echo "vault.sh: VAULT_BIN=$VAULT_BIN is not an executable file" >&2
		exit 1
	fi
	echo "$VAULT_BIN"
	exit 0
fi

if path="$(command -v vault 2>/dev/null)"; then
	echo "vault.sh: using $path from PATH ($("$path" version 2>/dev/null | head -n1)); set VAULT_BIN to choose another" >&2
	echo "$path"
	exit 0
fi

cache="${XDG_CACHE_HOME:-$HOME/.cache}/vault-plugin-openai/vault-$VAULT_VERSION"
bin="$cache/vault"
if [[ -x "$bin" ]]; then
	echo "$bin"
	exit 0
fi

command -v go >/dev/null || {
	echo "vault.sh: no Vault found and no Go toolchain to build one; install Go or set VAULT_BIN" >&2
	exit 1
}
mkdir -p "$cache"
# Leftovers of builds killed with SIGKILL (a normal interrupt removes its own).
find "$cache" -maxdepth 1 -name 'vault.tmp.*' -mmin +120 -delete 2>/dev/null || true
tmp="$(mktemp "$cache/vault.tmp.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
echo "vault.sh: building Vault $VAULT_VERSION from source into $cache" >&2
echo "vault.sh: the first build takes about ten minutes on 2 cores, longer on a busy machine;" >&2
echo "vault.sh: later runs reuse the cached binary (set VAULT_BIN to use one you have)" >&2
start=$SECONDS
(
	cd "$here/vault"
	# -mod=mod: the pinned module graph is in scripts/vault/go.sum; vendoring or a
	# read-only module setting in the caller's environment must not interfere.
	GOFLAGS= go build -mod=mod -trimpath -ldflags "-s -w" -o "$tmp" github.com/hashicorp/vault
)
chmod 0755 "$tmp"
mv -f "$tmp" "$bin"
trap - EXIT
echo "vault.sh: built $bin in $((SECONDS - start))s" >&2
echo "$bin"
