#!/usr/bin/env bash
# make cluster / make cluster-stop: a Vault HA cluster on integrated (Raft) storage,
# N nodes of the same Vault binary on loopback, with the plugin registered, mounted
# at openai/, configured and a role "demo" written; the e2e/cluster tests start
# their clusters through it too.
#
#   scripts/cluster.sh start      start N nodes, init, unseal, wait for N voters,
#                                 register and mount the plugin; print the nodes
#   scripts/cluster.sh stop       revoke openai/ leases (30s at most), stop every
#                                 process it started; keeps data and logs
#   scripts/cluster.sh status     each node: pid, address, sealed, active/standby;
#                                 the Raft peers
#   scripts/cluster.sh env        print the export lines ($DIR/env), VAULT_ADDR
#                                 set to the node active now
#   scripts/cluster.sh leader     print the index (1..N) of the active node
#   scripts/cluster.sh kill N     SIGKILL node N and its plugin processes
#   scripts/cluster.sh restart N  start node N again on its data and unseal it; it
#                                 rejoins as a standby (waits until it forwards)
#
# Environment (read by start; later commands read the state file):
#   VAULT_PLUGIN_OPENAI_CLUSTER_DIR  state dir (default ${TMPDIR:-/tmp}/vault-plugin-openai-cluster-$UID)
#   CLUSTER_NODES      number of nodes (default 3; 1 is a single Raft node)
#   CLUSTER_BASE_PORT  node i listens on API port BASE+2(i-1), cluster port one above (default 8300)
#   VAULT_BIN          Vault binary (default: scripts/vault.sh's pinned build)
#   PLUGIN_BIN         plugin binary to register (default: build bin/vault-plugin-openai)
#   PLUGIN_VERSION     version it is registered and mounted at (default v0.1.0)
#   OPENAI_BASE_URL, OPENAI_ADMIN_KEY, OPENAI_PROJECT_ID
#                      an external Admin API (a fake, or OpenAI); without them the
#                      script starts bin/fake-openai, as make dev does
#   CLUSTER_CONFIG_ARGS  more key=value fields for openai/config, e.g.
#                      "retry_budget=8s request_timeout=5s"
#   CLUSTER_ROLE_TTL, CLUSTER_ROLE_MAX_TTL  the demo role's ttl and max_ttl (1h, 24h)
# The nodes inherit this environment (so plugin settings such as
# OPENAI_PLUGIN_WAL_ROLLBACK_MIN_AGE reach the plugin) minus VAULT_* client settings
# and OPENAI_ADMIN_KEY; VAULT_LOG_LEVEL is kept.
#
# Demo only: node 1 is initialised with ONE unseal key share, kept with the root
# token in the state dir (mode 700). Production uses several shares or auto-unseal
# and never stores them next to the data.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WORK="${VAULT_PLUGIN_OPENAI_CLUSTER_DIR:-${TMPDIR:-/tmp}/vault-plugin-openai-cluster-$UID}"
STATE="$WORK/state"
ENV_FILE="$WORK/env"
TEMPLATE="$ROOT/examples/cluster/node.hcl"
NODES="${CLUSTER_NODES:-3}"
BASE_PORT="${CLUSTER_BASE_PORT:-8300}"
ROLE_TTL="${CLUSTER_ROLE_TTL:-1h}"
ROLE_MAX_TTL="${CLUSTER_ROLE_MAX_TTL:-24h}"
unset VAULT_NAMESPACE VAULT_FORMAT

api_port() { echo $((BASE_PORT + 2 * ($1 - 1))); }
cluster_port() { echo $((BASE_PORT + 2 * ($1 - 1) + 1)); }
node_addr() { echo "http://127.0.0.1:$(api_port "$1")"; }
node_dir() { echo "$WORK/node$1"; }
node_pid() {
	local var="NODE_PID_$1"
	echo "${!var:-}"
}
alive() { [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null; }

# vcli I ARGS... runs the vault CLI against node I.
vcli() {
	local i=$1
	shift
	VAULT_ADDR="$(node_addr "$i")" "$VAULT" "$@"
}

# load_state reads the state file written by start (ports, pids, the binary), so
# the other commands act on the cluster that is running, whatever the environment.
load_state() {
	[[ -f "$STATE" ]] || die "no cluster running (no $STATE); start one with: make cluster"
	# shellcheck disable=SC1090
	source "$STATE"
	export VAULT_TOKEN
}

write_state() {
	local i
	{
		echo "VAULT=$VAULT"
		echo "NODES=$NODES"
		echo "BASE_PORT=$BASE_PORT"
		echo "VAULT_TOKEN=$VAULT_TOKEN"
		echo "FAKE_PID=${FAKE_PID:-}"
		echo "OPENAI_BASE=${OPENAI_BASE:-}"
		for ((i = 1; i <= NODES; i++)); do
			echo "NODE_PID_$i=$(node_pid "$i")"
		done
	} >"$STATE.tmp"
	mv "$STATE.tmp" "$STATE"
}

# render_config I writes node I's config from the template: {{FIELD}}s filled in,
# the retry_join block repeated once per node.
render_config() {
	local i=$1 dir peers="" j
	dir="$(node_dir "$i")"
	for ((j = 1; j <= NODES; j++)); do peers+="$(api_port "$j") "; done
	awk -v node="$i" -v api="$(api_port "$i")" -v cport="$(cluster_port "$i")" \
		-v data="$dir/data" -v plugins="$dir/plugins" -v peers="$peers" '
		function repl(s, from, to,   out, k) {
			out = ""
			while ((k = index(s, from)) > 0) {
				out = out substr(s, 1, k - 1) to
				s = substr(s, k + length(from))
			}
			return out s
		}
		function fill(s) {
			s = repl(s, "{{NODE}}", node); s = repl(s, "{{API_PORT}}", api)
			s = repl(s, "{{CLUSTER_PORT}}", cport); s = repl(s, "{{DATA_DIR}}", data)
			return repl(s, "{{PLUGIN_DIR}}", plugins)
		}
		inblock {
			block = block "\n" $0
			if ($0 ~ /^[ \t]*}/) {
				n = split(peers, p, " ")
				for (j = 1; j <= n; j++) print fill(repl(block, "{{PEER_API_PORT}}", p[j]))
				inblock = 0
			}
			next
		}
		/^[ \t]*retry_join[ \t]*\{/ { inblock = 1; block = $0; next }
		{ print fill($0) }
	' "$TEMPLATE" >"$dir/node.hcl"
	! grep -q '{{' "$dir/node.hcl" || die "internal: unfilled field in $dir/node.hcl"
}

# start_node I launches node I's server in its own session (so kill N can take its
# plugin processes down with it) and records its pid.
start_node() {
	local i=$1 dir name pid
	dir="$(node_dir "$i")"
	local strip=(-u OPENAI_ADMIN_KEY)
	for name in $(compgen -e); do
		[[ $name == VAULT_* && $name != VAULT_LOG_LEVEL ]] && strip+=(-u "$name")
	done
	pid="$(spawn "$dir/pid" "$dir/vault.log" env "${strip[@]}" "$VAULT" server -config="$dir/node.hcl")"
	printf -v "NODE_PID_$i" '%s' "$pid"
	local t
	for t in $(seq 1 600); do
		alive "$pid" || {
			tail -n 20 "$dir/vault.log" >&2
			die "node $i exited during start-up (log: $dir/vault.log)"
		}
		# 0 unsealed, 2 sealed: either way the listener answers.
		local rc=0
		vcli "$i" status >/dev/null 2>&1 || rc=$?
		((rc == 0 || rc == 2)) && return 0
		sleep 0.1
	done
	die "node $i did not answer within 60s (log: $dir/vault.log)"
}

# unseal_node I sends the key (through stdin, never argv) until node I reports
# unsealed. A joining node needs the leader up first; its retry_join loop gets
# there within a few seconds, so the first tries may be refused.
unseal_node() {
	local i=$1 t
	for t in $(seq 1 120); do
		printf '%s' "$UNSEAL_KEY" | vcli "$i" write sys/unseal key=- >/dev/null 2>&1 || true
		vcli "$i" status >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	tail -n 20 "$(node_dir "$i")/vault.log" >&2
	die "node $i still sealed after 60s"
}

# is_active I: node I is unsealed and its own leader.
is_active() {
	[[ "$(vcli "$1" read -field=is_self sys/leader 2>/dev/null)" == true ]]
}

leader_index() {
	local i
	for ((i = 1; i <= NODES; i++)); do
		alive "$(node_pid "$i")" && is_active "$i" && {
			echo "$i"
			return 0
		}
	done
	return 1
}

# wait_leader prints the active node's index once there is one (after a kill, an
# election takes a few seconds).
wait_leader() {
	local t i
	for t in $(seq 1 600); do
		i="$(leader_index)" && {
			echo "$i"
			return 0
		}
		sleep 0.1
	done
	die "no active node after 60s"
}

# voters I prints how many voters autopilot counts, asked through node I. Nodes
# join as non-voters and autopilot promotes them once they have been healthy for
# its server stabilization time (10s by default).
voters() {
	local out
	out="$(vcli "$1" read -format=json sys/storage/raft/autopilot/state 2>/dev/null)" || {
		echo 0
		return 0
	}
	awk '/"voters": \[/ { inv = 1; next } inv && /\]/ { inv = 0 } inv { n++ } END { print n + 0 }' <<<"$out"
}

wait_voters() {
	local via=$1 t n=0
	for t in $(seq 1 240); do
		n="$(voters "$via")"
		((n == NODES)) && return 0
		sleep 0.5
	done
	die "autopilot counts $n voters of $NODES after 120s"
}

# wait_forwarding I: node I (a standby) serves an authenticated request, i.e. it
# has found the active node; until then it answers "active cluster node not found".
wait_forwarding() {
	local i=$1 t
	for t in $(seq 1 600); do
		vcli "$i" token lookup >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	die "node $i does not forward requests to the active node after 60s"
}

# set_active_addr rewrites VAULT_ADDR in the env file to the node active now.
set_active_addr() {
	local i
	i="$(leader_index)" || return 0
	[[ -f "$ENV_FILE" ]] || return 0
	sed -i "s|^export VAULT_ADDR=.*|export VAULT_ADDR=$(node_addr "$i")|" "$ENV_FILE"
}

# write_env ACTIVE writes $ENV_FILE (write_env_file, lib.sh): VAULT_ADDR is node
# ACTIVE's, and every node's address and the node count follow.
write_env() {
	local i active=$1 nodes=()
	for ((i = 1; i <= NODES; i++)); do
		nodes+=("export VAULT_ADDR_$i=$(node_addr "$i")")
	done
	write_env_file "cluster environment (make cluster)" "$(node_addr "$active")" \
		"${nodes[@]}" "export CLUSTER_NODES=$NODES"
}

# stop_pid PID [GROUP] sends SIGTERM, waits up to 30s, then SIGKILLs; with GROUP,
# the signals go to the process group PID leads (the node and its plugins).
stop_pid() {
	local pid=$1 target=$1 t
	alive "$pid" || return 0
	[[ "${2:-}" == group && "$(ps -o pgid= -p "$pid" | tr -d ' ')" == "$pid" ]] && target="-$pid"
	kill -TERM -- "$target" 2>/dev/null || true
	for t in $(seq 1 300); do
		alive "$pid" || break
		sleep 0.1
	done
	kill -KILL -- "$target" 2>/dev/null || true
}

cmd_stop() {
	if [[ ! -f "$STATE" ]]; then
		echo "nothing running (no $STATE)"
		return 0
	fi
	load_state
	local i active
	if active="$(leader_index)"; then
		timeout 30 env VAULT_ADDR="$(node_addr "$active")" "$VAULT" lease revoke -prefix -sync "$MOUNT/" >/dev/null 2>&1 || true
	fi
	for ((i = 1; i <= NODES; i++)); do
		stop_pid "$(node_pid "$i")" group
	done
	stop_pid "${FAKE_PID:-}"
	rm -f "$STATE" "$ENV_FILE"
	echo "stopped $NODES Vault nodes${FAKE_PID:+ and the fake Admin API}; data and logs stay in $WORK"
}

cmd_start() {
	if [[ -f "$STATE" ]]; then
		load_state
		if alive "$NODE_PID_1"; then
			echo "already running (state in $WORK):"
			set_active_addr
			cat "$ENV_FILE"
			echo "stop with: make cluster-stop"
			return 0
		fi
	fi
	[[ $NODES =~ ^[1-9][0-9]?$ ]] || die "CLUSTER_NODES must be a number from 1 to 99, not '$NODES'"
	[[ $BASE_PORT =~ ^[0-9]+$ ]] && ((BASE_PORT >= 1024 && BASE_PORT + 2 * NODES < 65536)) ||
		die "CLUSTER_BASE_PORT must be a port number from 1024, not '$BASE_PORT'"
	[[ -z "${CLUSTER_CONFIG_ARGS:-}" ]] || read -r -a CONFIG_EXTRA <<<"$CLUSTER_CONFIG_ARGS"
	local i p
	for ((i = 1; i <= NODES; i++)); do
		for p in "$(api_port "$i")" "$(cluster_port "$i")"; do
			! port_in_use "$p" || die "port $p (node $i) is in use; set CLUSTER_BASE_PORT"
		done
	done
	rm -rf "$WORK"
	mkdir -p "$WORK"
	chmod 700 "$WORK"
	FAKE_PID=
	OPENAI_BASE=
	VAULT_TOKEN=
	# A half-finished start must not leave servers behind.
	trap 'rc=$?; if ((rc != 0)); then for ((i = 1; i <= NODES; i++)); do stop_pid "$(node_pid "$i")" group; done; stop_pid "$FAKE_PID"; fi; exit $rc' EXIT
	trap 'exit 130' INT TERM

	step "Get Vault and the plugin"
	find_vault
	local plugin="${PLUGIN_BIN:-}"
	if [[ -z "$plugin" ]]; then
		build_plugin
		plugin="$ROOT/bin/$PLUGIN_NAME"
	else
		[[ -f "$plugin" ]] || die "PLUGIN_BIN=$plugin: no such file"
		info "plugin   $plugin ($PLUGIN_VERSION)"
	fi
	if use_real_openai; then
		step "Target: an external Admin API ${OPENAI_BASE_URL:-(OpenAI)}, project $OPENAI_PROJECT_ID"
	else
		step "Start the fake OpenAI Admin API"
		build_fake
		start_fake
		info "listening at $OPENAI_BASE (pid $FAKE_PID, log $WORK/fake.log)"
	fi

	step "Start $NODES Vault nodes on Raft storage"
	for ((i = 1; i <= NODES; i++)); do
		mkdir -p "$(node_dir "$i")/data" "$(node_dir "$i")/plugins"
		# Every node runs its own copy: the catalog entry is cluster-wide, the binary is not.
		cp "$plugin" "$(node_dir "$i")/plugins/$PLUGIN_NAME"
		render_config "$i"
		start_node "$i"
		info "node $i  $(node_addr "$i")  (cluster port $(cluster_port "$i"), pid $(node_pid "$i"), config $(node_dir "$i")/node.hcl)"
	done

	step "Initialise node 1 (demo: ONE unseal key share) and unseal every node"
	local out
	out="$(vcli 1 operator init -key-shares=1 -key-threshold=1)" || die "vault operator init failed"
	UNSEAL_KEY="$(sed -n 's/^Unseal Key 1: //p' <<<"$out")"
	VAULT_TOKEN="$(sed -n 's/^Initial Root Token: //p' <<<"$out")"
	[[ -n "$UNSEAL_KEY" && -n "$VAULT_TOKEN" ]] || die "could not read the unseal key and root token from vault operator init"
	(umask 077 && printf '%s\n' "$UNSEAL_KEY" >"$WORK/unseal-key")
	export VAULT_TOKEN
	write_state
	unseal_node 1
	wait_leader >/dev/null
	for ((i = 2; i <= NODES; i++)); do
		unseal_node "$i"
	done
	info "unseal key in $WORK/unseal-key (demo only: one share, next to the data)"

	step "Wait until autopilot counts $NODES voters (nodes join as non-voters)"
	wait_voters 1
	for ((i = 2; i <= NODES; i++)); do
		wait_forwarding "$i"
	done
	local active
	active="$(wait_leader)"
	info "$NODES voters; node $active is active"

	export VAULT_ADDR
	VAULT_ADDR="$(node_addr "$active")"
	step "Register the plugin by SHA-256 and version (cluster-wide), enable it"
	register_plugin "$(sha256sum "$plugin" | cut -d' ' -f1)"
	mount_plugin
	step "Write config, role demo and a file audit device"
	configure "$ROLE_TTL" "$ROLE_MAX_TTL"

	write_state
	write_env "$active"
	trap - EXIT INT TERM
	echo
	echo "A $NODES-node Vault cluster is running, node $active active:"
	cmd_status_nodes
	echo
	echo "Its environment is in $ENV_FILE (VAULT_ADDR is the active node):"
	sed 's/^/    /' "$ENV_FILE"
	echo
	echo "In your shell:   . $ENV_FILE"
	echo "    vault read openai/creds/demo                      # through the active node"
	echo "    VAULT_ADDR=\$VAULT_ADDR_2 vault read openai/creds/demo  # a standby forwards it"
	echo "    scripts/cluster.sh kill \$(scripts/cluster.sh leader)    # then: status, restart N"
	echo
	echo "Logs and data are in $WORK. Stop everything with: make cluster-stop"
}

cmd_status_nodes() {
	local i pid role
	for ((i = 1; i <= NODES; i++)); do
		pid="$(node_pid "$i")"
		if ! alive "$pid"; then
			role=down
		elif is_active "$i"; then
			role=active
		elif vcli "$i" status >/dev/null 2>&1; then
			role=standby
		else
			role=sealed
		fi
		printf '    node %d  %s  pid %-7s %s\n' "$i" "$(node_addr "$i")" "${pid:--}" "$role"
	done
}

cmd_status() {
	load_state
	cmd_status_nodes
	local active
	if active="$(leader_index)"; then
		echo "Raft peers (via node $active):"
		vcli "$active" operator raft list-peers | sed 's/^/    /'
	else
		echo "no active node"
		return 1
	fi
}

node_arg() {
	[[ "${1:-}" =~ ^[0-9]+$ ]] && (($1 >= 1 && $1 <= NODES)) || die "give a node number from 1 to $NODES"
}

cmd_kill() {
	load_state
	node_arg "${1:-}"
	local pid
	pid="$(node_pid "$1")"
	alive "$pid" || die "node $1 is not running"
	# Its own session (spawn): the group is the node and its plugin processes, as a
	# crash of the host would take them.
	kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"
	local t
	for t in $(seq 1 100); do
		alive "$pid" || break
		sleep 0.1
	done
	! alive "$pid" || die "node $1 (pid $pid) survived SIGKILL"
	echo "killed node $1 (pid $pid)"
}

cmd_restart() {
	load_state
	node_arg "${1:-}"
	local i=$1
	! alive "$(node_pid "$i")" || die "node $i is running (pid $(node_pid "$i")); kill it first"
	UNSEAL_KEY="$(cat "$WORK/unseal-key")"
	start_node "$i"
	write_state
	unseal_node "$i"
	local active
	active="$(wait_leader)"
	wait_voters "$active"
	# A restarted standby answers "active cluster node not found" for a few seconds.
	wait_forwarding "$i"
	set_active_addr
	echo "node $i restarted (pid $(node_pid "$i")); node $(leader_index || echo '?') is active"
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
env)
	load_state
	set_active_addr
	cat "$ENV_FILE"
	;;
leader)
	load_state
	leader_index || die "no active node"
	;;
kill) cmd_kill "${2:-}" ;;
restart) cmd_restart "${2:-}" ;;
*)
	echo "usage: $0 start|stop|status|env|leader|kill N|restart N" >&2
	exit 2
	;;
esac
