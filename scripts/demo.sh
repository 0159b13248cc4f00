#!/usr/bin/env bash
# make demo: the whole lifecycle of a leased OpenAI key against a real Vault server.
#
# Starts the fake Admin API and a dev Vault on free loopback ports, registers and mounts
# the plugin, then issues, renews, revokes and lets Vault expire keys, checking the
# Admin API side after each step. Everything it started is stopped on exit or Ctrl-C.
# With OPENAI_ADMIN_KEY and OPENAI_PROJECT_ID set it uses the real OpenAI instead
# (optional: OPENAI_ADMIN_KEY_ID, OPENAI_ORG_ID, OPENAI_BASE_URL). KEEP_DEMO_DIR=1
# keeps the working directory (logs, audit log) for inspection.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/vault-plugin-openai-demo.XXXXXX")"
VAULT_PID=
FAKE_PID=
unset VAULT_NAMESPACE VAULT_FORMAT

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	if [[ -n "$VAULT_PID" ]] && kill -0 "$VAULT_PID" 2>/dev/null; then
		# Against the real OpenAI a key left behind is a live credential: revoke
		# whatever is still leased before Vault goes away (dev storage is in memory).
		timeout 30 "$VAULT" lease revoke -prefix -sync "$MOUNT/" >/dev/null 2>&1
		kill -TERM "$VAULT_PID" 2>/dev/null
	fi
	[[ -n "$FAKE_PID" ]] && kill -TERM "$FAKE_PID" 2>/dev/null
	for pid in $VAULT_PID $FAKE_PID; do
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null
	done
	if ((rc == 130 || rc == 143)); then
		echo "interrupted: leases revoked, Vault and the fake stopped" >&2
	elif ((rc != 0)); then
		echo >&2
		echo "demo failed (exit $rc). Last lines of the Vault log:" >&2
		[[ -f "$WORK/vault.log" ]] && tail -n 30 "$WORK/vault.log" | sed 's/^/  | /' >&2
		KEEP_DEMO_DIR=1
	fi
	if [[ "${KEEP_DEMO_DIR:-}" == 1 ]]; then
		echo "working directory kept: $WORK" >&2
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start=$SECONDS
step "Build the plugin and the fake Admin API; get Vault"
build_all

if use_real_openai; then
	step "Target: the real OpenAI Admin API (project $OPENAI_PROJECT_ID)"
	OPENAI_BASE=
else
	step "Start the fake OpenAI Admin API"
	start_fake
	info "listening at $OPENAI_BASE (pid $FAKE_PID)"
fi

step "Start Vault in dev mode"
start_vault
info "listening at $VAULT_ADDR (pid $VAULT_PID, log $WORK/vault.log)"

step "Register the plugin by SHA-256 and version, enable it"
register_and_mount

step "Write config, a role and enable a file audit device"
configure 2m 10m

lifecycle=()

step "Issue a key: vault read $MOUNT/creds/$ROLE"
out="$("$VAULT" read -format=json "$MOUNT/creds/$ROLE")"
lease_id="$(jfield lease_id <<<"$out")"
api_key="$(jfield api_key <<<"$out")"
sa_id="$(jfield service_account_id <<<"$out")"
info "api_key              $(mask "$api_key")"
info "api_key_id           $(jfield api_key_id <<<"$out")"
info "service_account_id   $sa_id"
info "service_account_name $(jfield service_account_name <<<"$out")"
info "project_id           $(jfield project_id <<<"$out")"
info "lease_id             $lease_id"
info "lease_duration       $(jfield lease_duration <<<"$out")s, renewable $(jfield renewable <<<"$out")"
[[ -n "$api_key" && -n "$sa_id" && -n "$lease_id" ]] || die "the response lacks api_key, service_account_id or lease_id"
unset out
lifecycle+=(issued)

step "Look up the lease"
"$VAULT" lease lookup "$lease_id" | sed 's/^/      /'

step "Renew the lease for 5m"
renewed="$("$VAULT" lease renew -format=json -increment=5m "$lease_id")"
ttl="$(jfield lease_duration <<<"$renewed")"
info "lease_duration now ${ttl}s"
((ttl > 120)) || die "renewal did not extend the lease (lease_duration ${ttl}s)"
lifecycle+=(renewed)

if use_real_openai; then
	step "OpenAI now holds service account $sa_id (see the project's service accounts)"
else
	step "The fake Admin API holds service account $sa_id"
	show_fake_accounts
	fake_has "$sa_id" || die "the fake does not hold $sa_id"
fi

# Each "gone" below is checked against an explicit "present" just before it, with the
# exact id; lease_state and fake_has stop the demo on their own errors, so a failed
# lookup can never pass for a revocation.
step "Revoke the lease"
state="$(lease_state "$lease_id")"
[[ $state == live ]] || die "the lease is $state before revocation"
"$VAULT" lease revoke -sync "$lease_id" >/dev/null
state="$(lease_state "$lease_id")"
[[ $state == gone ]] || die "the lease still exists after revocation"
info "lease gone from Vault"
if ! use_real_openai; then
	if fake_has "$sa_id"; then
		die "the fake still holds $sa_id after revocation"
	fi
	info "service account $sa_id gone from the fake Admin API"
fi
lifecycle+=(revoked)

step "Issue a key with ttl=5s and let Vault expire it on its own"
out="$("$VAULT" write -format=json "$MOUNT/creds/$ROLE" ttl=5s)"
lease2="$(jfield lease_id <<<"$out")"
sa2="$(jfield service_account_id <<<"$out")"
api_key2="$(jfield api_key <<<"$out")"
unset out
[[ -n "$api_key2" && -n "$sa2" && -n "$lease2" ]] || die "the response lacks api_key, service_account_id or lease_id"
info "api_key $(mask "$api_key2"), service account $sa2, lease_duration 5s"
issued_at=$SECONDS
if ! use_real_openai; then
	fake_has "$sa2" || die "the fake does not hold $sa2 right after the issue"
fi
gone=
while ((SECONDS - issued_at < 60)); do
	state="$(lease_state "$lease2")"
	if [[ $state == gone ]]; then
		if use_real_openai || ! fake_has "$sa2"; then
			gone=1
			break
		fi
	fi
	sleep 1
done
[[ -n "$gone" ]] || die "Vault did not expire the lease and delete $sa2 within 60s"
if use_real_openai; then
	info "after $((SECONDS - issued_at))s Vault expired the lease and revoked the key"
else
	info "after $((SECONDS - issued_at))s Vault expired the lease; service account $sa2 gone from the fake"
	info "live accounts at the fake now:"
	show_fake_accounts
fi
lifecycle+=(expired)

step "Check the audit log"
entries="$(wc -l <"$WORK/audit.log")"
if use_real_openai; then admin_key=$OPENAI_ADMIN_KEY; else admin_key=$ADMIN_KEY; fi
for secret in "$api_key" "$api_key2" "$admin_key"; do
	[[ -n "$secret" ]] || die "internal: an empty secret to look for"
	if grep -qF -f <(printf '%s\n' "$secret") "$WORK/audit.log"; then
		die "a secret appears in plain text in the audit log"
	fi
done
audit="$(<"$WORK/audit.log")"
[[ $audit == *'"api_key":"hmac-sha256:'* ]] || die "no HMAC'd api_key in the audit log"
[[ $audit == *"\"service_account_id\":\"$sa_id\""* ]] ||
	die "service_account_id $sa_id is not in clear in the audit log (audit-non-hmac-response-keys)"
unset audit
info "$entries entries; issued keys and the admin key appear only as HMACs;"
info "service_account_id $sa_id in clear, so the log links the lease to the OpenAI account"
unset api_key api_key2 admin_key

printf '\n%sSummary: %s: OK%s (%ds)\n' "$BOLD" "$(
	IFS=,
	echo "${lifecycle[*]}" | sed 's/,/, /g'
)" "$PLAIN" "$((SECONDS - start))"
