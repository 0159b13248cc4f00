#!/bin/sh
# A stand-in for your application under `vault agent -config=agent-exec.hcl`:
# it takes its key from OPENAI_API_KEY (and OPENAI_BASE_URL), calls
# GET /v1/models every 2 seconds and prints the HTTP status. It never prints
# the key; the lease id says which key it holds.
set -eu
: "${OPENAI_API_KEY:?not set}" "${OPENAI_BASE_URL:?not set}"
echo "app: started (pid $$) with lease ${OPENAI_LEASE_ID:-?}"
trap 'echo "app: stopping (pid $$)"; exit 0' TERM INT
while :; do
	# The header goes through stdin (printf is a shell builtin), so the key is
	# never in a process's arguments.
	code="$(printf 'Authorization: Bearer %s\n' "$OPENAI_API_KEY" |
		curl -s -o /dev/null -w '%{http_code}' -H @- "$OPENAI_BASE_URL/models" || true)"
	echo "app: GET /v1/models -> $code (lease ${OPENAI_LEASE_ID:-?})"
	sleep 2 &
	wait $! || true
done
