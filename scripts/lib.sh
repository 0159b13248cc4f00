# shellcheck shell=bash
# Shared set-up for demo.sh and dev.sh: build, start the fake Admin API and a dev Vault,
# register and mount the plugin, write config and a role, enable a file audit device.
# Only Go, the vault CLI, our fake binary and coreutils are needed (no curl, no jq).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PLUGIN_NAME=vault-plugin-openai
PLUGIN_VERSION="${PLUGIN_VERSION:-v0.1.0}"
MOUNT=openai
ROLE=demo
# Response fields the audit log shows in clear (README "Audit"): ids, never the key.
AUDIT_CLEAR_KEYS=api_key_id,service_account_id,service_account_name,project_id

# Bold step headers on a terminal only, so logs and CI output stay plain.
if [[ -t 1 ]]; then
	BOLD=$'\033[1m' PLAIN=$'\033[0m'
else
	BOLD='' PLAIN=''
fi
step_no=0
step() {
	step_no=$((step_no + 1))
	printf '\n%s[%d] %s%s\n' "$BOLD" "$step_no" "$*" "$PLAIN"
}
info() { printf '    %s\n' "$*"; }
die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

# rand_hex N prints N random bytes as hex.
rand_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

# mask shows enough of a secret to recognise it, never enough to use it.
mask() {
	local s=$1
	if ((${#s} <= 12)); then
		printf '****'
	else
		printf '%s…%s (%d chars)' "${s:0:6}" "${s: -4}" "${#s}"
	fi
}

# jfield KEY reads the pretty-printed JSON the vault CLI emits on stdin and prints the
# first value of KEY. Enough for the flat string/number fields used here.
jfield() {
	local key=$1 line
	local str="^[[:space:]]*\"$key\":[[:space:]]*\"(.*)\",?[[:space:]]*$"
	local scalar="^[[:space:]]*\"$key\":[[:space:]]*([^\",]*),?[[:space:]]*$"
	while IFS= read -r line; do
		if [[ $line =~ $str ]] || [[ $line =~ $scalar ]]; then
			printf '%s\n' "${BASH_REMATCH[1]}"
			return 0
		fi
	done
	return 1
}

# port_in_use uses bash's /dev/tcp: a refused connection means nobody listens there.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
	local p i
	for i in $(seq 1 50); do
		p=$((20000 + RANDOM % 40000))
		if ! port_in_use "$p"; then
			echo "$p"
			return 0
		fi
	done
	die "no free loopback port found"
}

# spawn PIDFILE LOG CMD... starts CMD in the background in its own session and prints
# its pid. Its own session: a Ctrl-C at the terminal reaches only this script (whose
# trap then shuts things down in order), and `make dev` servers outlive the terminal.
# The pid is written by the process itself just before exec, so it is CMD's own pid,
# whatever setsid or nohup do. Call it as $(spawn ...), the output is only the pid.
spawn() {
	local pidfile=$1 log=$2 i
	shift 2
	rm -f "$pidfile"
	local runner=(nohup)
	command -v setsid >/dev/null && runner=(setsid)
	"${runner[@]}" sh -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$pidfile" "$@" \
		>"$log" 2>&1 </dev/null &
	for i in $(seq 1 200); do
		[[ -s "$pidfile" ]] && break
		sleep 0.05
	done
	[[ -s "$pidfile" ]] || die "could not start $1"
	cat "$pidfile"
}

# Real OpenAI when both variables are set; the fake otherwise. Variables that came from
# a `make dev` environment file (VAULT_PLUGIN_OPENAI_FAKE_KEY=1) name a fake, never the
# real OpenAI, so they are ignored.
use_real_openai() {
	if [[ "${VAULT_PLUGIN_OPENAI_FAKE_KEY:-}" == 1 ]]; then
		return 1
	fi
	if [[ -n "${OPENAI_ADMIN_KEY:-}" || -n "${OPENAI_PROJECT_ID:-}" ]]; then
		[[ -n "${OPENAI_ADMIN_KEY:-}" && -n "${OPENAI_PROJECT_ID:-}" ]] ||
			die "set both OPENAI_ADMIN_KEY and OPENAI_PROJECT_ID to use the real OpenAI (or neither for the fake)"
		return 0
	fi
	return 1
}

# write_env_file TITLE ADDR [LINE...] writes $ENV_FILE, mode 600, replacing it whole:
# what a client of the servers this script started reads (the README's "Using it"
# commands). TITLE names it in the header, ADDR is VAULT_ADDR, and each LINE (more
# export lines of the script's own) follows VAULT_TOKEN. With the fake the file holds
# the fake's admin key (a random test value, not a secret of anyone's) and its active
# project; with the real OpenAI, only the project id (the real admin key stays in the
# caller's environment, never in a file).
write_env_file() {
	local title=$1 addr=$2 key= project
	shift 2
	if use_real_openai; then
		project=$OPENAI_PROJECT_ID
	else
		key=$ADMIN_KEY
		project=$PROJECT_ID
	fi
	(
		umask 077
		{
			echo "# vault-plugin-openai $title; source it: . $ENV_FILE"
			echo "export VAULT_ADDR=$addr"
			echo "export VAULT_TOKEN=$VAULT_TOKEN"
			if (($#)); then
				printf '%s\n' "$@"
			fi
			echo "export OPENAI_PROJECT_ID=$project"
			if [[ -n "$key" ]]; then
				echo "export OPENAI_ADMIN_KEY=$key"
				echo "export OPENAI_FAKE_URL=$OPENAI_BASE"
				# Marks OPENAI_ADMIN_KEY as the fake's, so a later make demo / make dev in
				# this shell uses a fresh fake instead of taking it for the real OpenAI.
				echo "export VAULT_PLUGIN_OPENAI_FAKE_KEY=1"
			fi
			echo "export PATH=\"$(dirname "$VAULT"):$ROOT/bin:\$PATH\""
		} >"$ENV_FILE.tmp"
		mv "$ENV_FILE.tmp" "$ENV_FILE"
	)
}

build_all() {
	build_plugin
	build_fake
	find_vault
}

build_plugin() {
	command -v go >/dev/null || die "Go is required (https://go.dev/dl/)"
	mkdir -p "$ROOT/bin"
	(cd "$ROOT" && go build -trimpath \
		-ldflags "-X github.com/vault-plugin-openai/vault-plugin-openai/backend.Version=$PLUGIN_VERSION" \
		-o bin/$PLUGIN_NAME ./cmd/vault-plugin-openai)
	info "plugin   $ROOT/bin/$PLUGIN_NAME ($PLUGIN_VERSION)"
}

build_fake() {
	command -v go >/dev/null || die "Go is required (https://go.dev/dl/)"
	mkdir -p "$ROOT/bin"
	(cd "$ROOT" && go build -trimpath -o bin/fake-openai ./cmd/fake-openai)
}

# find_vault sets VAULT: $VAULT_BIN or the pinned build, through scripts/vault.sh.
find_vault() {
	VAULT="$("$ROOT/scripts/vault.sh")"
	local version
	version="$("$VAULT" version)" || die "$VAULT does not run"
	info "vault    $VAULT (${version%%$'\n'*})"
}

# start_fake sets FAKE_PID, OPENAI_BASE, ADMIN_KEY, PROJECT_ID.
start_fake() {
	ADMIN_KEY="sk-admin-demo$(rand_hex 24)"
	PROJECT_ID=proj_fake_active
	rm -f "$WORK/fake.url"
	# The key reaches the fake through its environment, never its argv.
	FAKE_PID="$(
		export FAKE_OPENAI_ADMIN_KEY="$ADMIN_KEY"
		spawn "$WORK/fake.pid" "$WORK/fake.log" "$ROOT/bin/fake-openai" -addr 127.0.0.1:0 -addr-file "$WORK/fake.url"
	)"
	local i
	for i in $(seq 1 100); do
		[[ -s "$WORK/fake.url" ]] && break
		kill -0 "$FAKE_PID" 2>/dev/null || { cat "$WORK/fake.log" >&2; die "fake Admin API exited"; }
		sleep 0.1
	done
	[[ -s "$WORK/fake.url" ]] || die "fake Admin API did not start (log: $WORK/fake.log)"
	OPENAI_BASE="$(cat "$WORK/fake.url")"
}

# start_vault sets VAULT_PID, VAULT_ADDR, VAULT_TOKEN. The plugin directory starts empty
# so that dev mode registers nothing by itself; the explicit registration is the point.
start_vault() {
	local attempt port i
	mkdir -p "$WORK/plugins"
	VAULT_TOKEN="root-$(rand_hex 8)"
	for attempt in 1 2 3; do
		port="$(free_port)"
		VAULT_PID="$(spawn "$WORK/vault.pid" "$WORK/vault.log" "$VAULT" server -dev \
			-dev-root-token-id="$VAULT_TOKEN" -dev-listen-address="127.0.0.1:$port" \
			-dev-plugin-dir="$WORK/plugins" -dev-no-store-token)"
		export VAULT_ADDR="http://127.0.0.1:$port" VAULT_TOKEN
		for i in $(seq 1 300); do
			kill -0 "$VAULT_PID" 2>/dev/null || break
			if "$VAULT" status >/dev/null 2>&1; then
				return 0
			fi
			sleep 0.1
		done
		if kill -0 "$VAULT_PID" 2>/dev/null; then
			tail -n 20 "$WORK/vault.log" >&2
			die "Vault did not become ready within 30s (log: $WORK/vault.log)"
		fi
		# Most likely the port was taken between the check and the bind; try another.
		VAULT_PID=
	done
	tail -n 20 "$WORK/vault.log" >&2
	die "Vault failed to start (log: $WORK/vault.log)"
}

register_and_mount() {
	cp "$ROOT/bin/$PLUGIN_NAME" "$WORK/plugins/$PLUGIN_NAME"
	register_plugin "$(sha256sum "$WORK/plugins/$PLUGIN_NAME" | cut -d' ' -f1)"
	mount_plugin
}

# register_plugin SHA256 adds the plugin binary already in the plugin directory to
# the catalog by SHA-256 and version.
register_plugin() {
	local sum=$1
	"$VAULT" plugin register -sha256="$sum" -version="$PLUGIN_VERSION" \
		-command="$PLUGIN_NAME" secret "$PLUGIN_NAME" >/dev/null
	info "registered $PLUGIN_NAME $PLUGIN_VERSION (sha256 ${sum:0:16}…)"
}

mount_plugin() {
	"$VAULT" secrets enable -path="$MOUNT" -plugin-version="$PLUGIN_VERSION" "$PLUGIN_NAME" >/dev/null
	# The ids that link an audit entry to an OpenAI account go to the audit log in
	# clear; the key itself (api_key) stays HMACed.
	# One flag per key: the CLI takes "a,b" as a single key named "a,b".
	local k tune=()
	for k in ${AUDIT_CLEAR_KEYS//,/ }; do
		tune+=("-audit-non-hmac-response-keys=$k")
	done
	"$VAULT" secrets tune "${tune[@]}" "$MOUNT/" >/dev/null
	local running
	running="$("$VAULT" read -field=running_plugin_version "sys/mounts/$MOUNT" 2>/dev/null || true)"
	info "enabled at $MOUNT/ (running version ${running:-unknown}); audit shows $AUDIT_CLEAR_KEYS in clear"
}

# configure writes the engine config (admin key via stdin, never argv), a role and a
# file audit device. CONFIG_EXTRA, an array the caller may set, holds more key=value
# fields for the config (e.g. retry_budget=8s).
configure() {
	local role_ttl=$1 role_max_ttl=$2 key base project
	if use_real_openai; then
		key=$OPENAI_ADMIN_KEY
		project=$OPENAI_PROJECT_ID
		base=${OPENAI_BASE_URL:-}
	else
		key=$ADMIN_KEY
		project=$PROJECT_ID
		base=$OPENAI_BASE
	fi
	local args=()
	[[ -n "$base" ]] && args+=("base_url=$base")
	[[ -n "${OPENAI_ADMIN_KEY_ID:-}" ]] && use_real_openai && args+=("admin_api_key_id=$OPENAI_ADMIN_KEY_ID")
	[[ -n "${OPENAI_ORG_ID:-}" ]] && use_real_openai && args+=("organization_id=$OPENAI_ORG_ID")
	args+=(${CONFIG_EXTRA[@]+"${CONFIG_EXTRA[@]}"})
	"$VAULT" audit enable file file_path="$WORK/audit.log" >/dev/null
	info "file audit device -> $WORK/audit.log"
	printf '%s' "$key" | "$VAULT" write "$MOUNT/config" admin_api_key=- "${args[@]}" >/dev/null
	info "config written: admin key $(mask "$key") (id $("$VAULT" read -field=admin_api_key_id "$MOUNT/config"))"
	info "base_url $("$VAULT" read -field=base_url "$MOUNT/config")"
	"$VAULT" write "$MOUNT/roles/$ROLE" project_id="$project" ttl="$role_ttl" max_ttl="$role_max_ttl" >/dev/null
	info "role $ROLE: project $project, ttl $role_ttl, max_ttl $role_max_ttl"
}

# fake_accounts prints the fake's live-account table, or dies: a listing that failed
# must never read as "no such account".
fake_accounts() {
	local out
	out="$("$ROOT/bin/fake-openai" accounts -url "$OPENAI_BASE" 2>&1)" ||
		die "could not list the fake's accounts: $out"
	[[ $out == PROJECT* ]] || die "unexpected output from fake-openai accounts: ${out:0:200}"
	printf '%s\n' "$out"
}

# fake_has ACCOUNT_ID succeeds when the fake holds that live service account and fails
# when it does not; it exits the script if the listing itself fails. It reads the whole
# listing before looking (no `| grep -q`, which under pipefail turns the writer's
# SIGPIPE into a false "not found") and compares the SERVICE ACCOUNT column exactly,
# so one id can never match inside another.
fake_has() {
	local id=$1 listing line
	local -a cols
	[[ $id =~ ^[A-Za-z0-9_-]+$ ]] || die "internal: fake_has given a malformed account id '$id'"
	listing="$(fake_accounts)" || exit 1
	while IFS= read -r line; do
		read -r -a cols <<<"$line"
		[[ "${cols[1]:-}" == "$id" ]] && return 0
	done <<<"$listing"
	return 1
}

show_fake_accounts() {
	local listing
	listing="$(fake_accounts)" || exit 1
	printf '%s\n' "$listing" | sed 's/^/      /'
}

# lease_state LEASE_ID prints "live" or "gone", and exits the script when Vault gives
# any other answer (down, permission denied): an error must not read as "revoked".
lease_state() {
	local out
	if out="$("$VAULT" lease lookup "$1" 2>&1)"; then
		echo live
	elif [[ $out == *"invalid lease"* ]]; then
		echo gone
	else
		die "vault lease lookup $1 failed: $out"
	fi
}
