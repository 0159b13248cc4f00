#!/usr/bin/env bash
# Prints the path of a Vault server binary on stdout; everything else goes to stderr.
#
# Order: $VAULT_BIN if set, else `vault` on PATH if it is the pinned version, else
# the pinned version built from scripts/vault (go.mod + go.sum) into a cache outside
# the repository, so a fresh machine needs nothing but Go. The build is written to a
# temporary file and renamed into place, so an interrupted build never leaves a
# half-written binary in the cache.
#
# The tests' claims hold for Vault $VAULT_VERSION only: a binary of another version
# (VAULT_BIN, or the cache) is refused. VAULT_ALLOW_OTHER_VERSION=1 accepts it with a
# loud warning, for trying a new Vault release; a `vault` on PATH of another version
# is passed over for the pinned build.
set -euo pipefail

VAULT_VERSION=1.21.0
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# is_pinned BIN: does `BIN version` report Vault v$VAULT_VERSION? Release builds
# print "Vault v1.21.0 (rev), built ...", source builds "Vault v1.21.0, built ...",
# Enterprise "Vault v1.21.0+ent ...".
is_pinned() {
	local out
	out="$("$1" version 2>/dev/null | head -n1)" || return 1
	[[ "$out" =~ ^Vault\ v${VAULT_VERSION//./\\.}($|[\ ,+]) ]]
}

# accept BIN WHERE: print BIN if pinned; else refuse, or warn under the override.
accept() {
	local bin="$1" where="$2" got
	if is_pinned "$bin"; then
		echo "$bin"
		return 0
	fi
	got="$("$bin" version 2>/dev/null | head -n1 || true)"
	if [[ "${VAULT_ALLOW_OTHER_VERSION:-}" == 1 ]]; then
		{
			echo "vault.sh: WARNING: ******************************************************"
			echo "vault.sh: WARNING: $where $bin is \"${got:-no version}\", not Vault v$VAULT_VERSION."
			echo "vault.sh: WARNING: VAULT_ALLOW_OTHER_VERSION=1: using it anyway; results do not"
			echo "vault.sh: WARNING: show that the plugin works with the pinned Vault."
			echo "vault.sh: WARNING: ******************************************************"
		} >&2
		echo "$bin"
		return 0
	fi
	echo "vault.sh: $where $bin is \"${got:-no version}\", not the pinned Vault v$VAULT_VERSION; unset it (the pinned version is built and cached) or set VAULT_ALLOW_OTHER_VERSION=1 to use it anyway" >&2
	return 1
}

if [[ -n "${VAULT_BIN:-}" ]]; then
	if [[ ! -x "$VAULT_BIN" ]]; then
		echo "vault.sh: VAULT_BIN=$VAULT_BIN is not an executable file" >&2
		exit 1
	fi
	accept "$VAULT_BIN" "the VAULT_BIN binary"
	exit
fi

if path="$(command -v vault 2>/dev/null)"; then
	if is_pinned "$path"; then
		echo "vault.sh: using $path from PATH (Vault v$VAULT_VERSION); set VAULT_BIN to choose another" >&2
		echo "$path"
		exit 0
	fi
	echo "vault.sh: passing over $path on PATH ($("$path" version 2>/dev/null | head -n1 || true)): not Vault v$VAULT_VERSION" >&2
fi

cache="${XDG_CACHE_HOME:-$HOME/.cache}/vault-plugin-openai/vault-$VAULT_VERSION"
bin="$cache/vault"
if [[ -x "$bin" ]]; then
	accept "$bin" "the cached binary"
	exit
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
accept "$bin" "the binary just built,"
