#!/usr/bin/env bash
# make dev / make dev-stop: the demo's set-up (fake Admin API, dev Vault, plugin
# registered and mounted at openai/, config, role "demo", file audit device), left
# running for hands-on use.
#
#   scripts/dev.sh start   start (or, if already running, show how to use it)
#   scripts/dev.sh env     print the export lines (the file $WORK/env holds them)
#   scripts/dev.sh stop    stop everything and remove the state directory
#
# Same environment variables as demo.sh (OPENAI_ADMIN_KEY + OPENAI_PROJECT_ID for the
# real OpenAI). State lives in $VAULT_PLUGIN_OPENAI_DEV_DIR (default
# ${TMPDIR:-/tmp}/vault-plugin-openai-dev-$UID).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WORK="${VAULT_PLUGIN_OPENAI_DEV_DIR:-${TMPDIR:-/tmp}/vault-plugin-openai-dev-$UID}"
STATE="$WORK/state"
ENV_FILE="$WORK/env"
unset VAULT_NAMESPACE VAULT_FORMAT

running() {
	[[ -f "$STATE" ]] || return 1
	# shellcheck disable=SC1090
	source "$STATE"
	kill -0 "$VAULT_PID" 2>/dev/null
}

print_env() {
	cat "$ENV_FILE"
}

stop() {
	if [[ ! -f "$STATE" ]]; then
		echo "nothing running (no $STATE)"
		rm -rf "$WORK"
		return 0
	fi
	# shellcheck disable=SC1090
	source "$STATE"
	export VAULT_ADDR VAULT_TOKEN
	if kill -0 "$VAULT_PID" 2>/dev/null; then
		timeout 30 "$VAULT" lease revoke -prefix -sync "$MOUNT/" >/dev/null 2>&1 || true
	fi
	local pid
	for pid in $VAULT_PID ${FAKE_PID:-}; do
		kill -TERM "$pid" 2>/dev/null || continue
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	done
	rm -rf "$WORK"
	echo "stopped Vault (pid $VAULT_PID)${FAKE_PID:+ and the fake Admin API (pid $FAKE_PID)}"
}

start() {
	if running; then
		echo "already running (state in $WORK):"
		print_env
		echo "stop with: make dev-stop"
		return 0
	fi
	rm -rf "$WORK"
	mkdir -p "$WORK"
	chmod 700 "$WORK"
	VAULT_PID=
	FAKE_PID=
	OPENAI_BASE=
	# A half-finished start must not leave servers behind.
	trap 'rc=$?; if ((rc != 0)); then [[ -n "$VAULT_PID" ]] && kill "$VAULT_PID"; [[ -n "$FAKE_PID" ]] && kill "$FAKE_PID"; fi 2>/dev/null; exit $rc' EXIT
	trap 'exit 130' INT

	step "Build the plugin and the fake Admin API; get Vault"
	build_all
	if use_real_openai; then
		step "Target: the real OpenAI Admin API (project $OPENAI_PROJECT_ID)"
	else
		step "Start the fake OpenAI Admin API"
		start_fake
		info "listening at $OPENAI_BASE (pid $FAKE_PID, log $WORK/fake.log)"
	fi
	step "Start Vault in dev mode"
	start_vault
	info "listening at $VAULT_ADDR (pid $VAULT_PID, log $WORK/vault.log)"
	step "Register the plugin by SHA-256 and version, enable it"
	register_and_mount
	step "Write config, a role and enable a file audit device"
	configure 1h 24h

	write_env_file "dev environment (make dev)" "$VAULT_ADDR"
	cat >"$STATE" <<EOF
VAULT=$VAULT
VAULT_PID=$VAULT_PID
FAKE_PID=$FAKE_PID
VAULT_ADDR=$VAULT_ADDR
VAULT_TOKEN=$VAULT_TOKEN
OPENAI_BASE=$OPENAI_BASE
EOF
	trap - EXIT INT
	echo
	echo "Vault and the plugin are running. Its environment is in $ENV_FILE:"
	echo
	print_env | sed 's/^/    /'
	echo
	echo "In your shell:   . $ENV_FILE"
	echo "Then the README's \"Using it\" commands work as written, for example:"
	echo "    vault write openai/roles/app project_id=\"\$OPENAI_PROJECT_ID\" ttl=30m max_ttl=24h"
	echo "    vault read openai/creds/app"
	echo "    vault lease revoke -prefix openai/creds/app"
	[[ -n "$OPENAI_BASE" ]] && echo "    fake-openai accounts -url \"\$OPENAI_FAKE_URL\"    # the fake's live accounts"
	echo
	echo "Logs and the audit log are in $WORK. Stop everything with: make dev-stop"
}

case "${1:-start}" in
start) start ;;
stop) stop ;;
env)
	running || {
		echo "not running; start with: make dev" >&2
		exit 1
	}
	print_env
	;;
*)
	echo "usage: $0 [start|stop|env]" >&2
	exit 2
	;;
esac
