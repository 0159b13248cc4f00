#!/usr/bin/env bash
# scripts/demo-loop.sh [N]: runs the demo (scripts/demo.sh) N times in a row (default 50)
# and stops at the first failure, whose full output it keeps. Proves the demo does not
# flake; each run starts its own fake, Vault and ports, so runs are independent.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
n="${1:-50}"
[[ $n =~ ^[1-9][0-9]*$ ]] || {
	echo "usage: $0 [N]  (N a positive number of runs, default 50)" >&2
	exit 2
}
# The fake, not a real OpenAI: N runs against a real organization is not what this is for.
unset OPENAI_ADMIN_KEY OPENAI_PROJECT_ID
logdir="$(mktemp -d "${TMPDIR:-/tmp}/vault-plugin-openai-demo-loop.XXXXXX")"
start=$SECONDS
for ((i = 1; i <= n; i++)); do
	log="$logdir/run-$i.log"
	t0=$SECONDS
	if "$here/demo.sh" >"$log" 2>&1; then
		printf 'run %d/%d: ok (%ds)\n' "$i" "$n" "$((SECONDS - t0))"
		rm -f "$log"
	else
		rc=$?
		printf 'run %d/%d: FAILED (exit %d, %ds); its output follows and is kept in %s\n' \
			"$i" "$n" "$rc" "$((SECONDS - t0))" "$log" >&2
		sed 's/^/  | /' "$log" >&2
		printf '%d of %d runs passed before the failure\n' "$((i - 1))" "$n" >&2
		exit 1
	fi
done
rmdir "$logdir" 2>/dev/null || true
printf '%d of %d demo runs passed in a row (%ds)\n' "$n" "$n" "$((SECONDS - start))"
