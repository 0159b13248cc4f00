#!/usr/bin/env python3
"""An application that gets its OpenAI key from Vault, with the standard library only.

It logs in with AppRole, reads openai/creds/<role> (a key on a Vault lease), calls
GET /v1/models with the key, and on exit (also on SIGTERM or Ctrl-C) revokes its own
Vault token. Revoking the token revokes the lease read with it, which deletes the key's
service account at OpenAI: the key dies now instead of at its TTL. (Revoking the lease
by id, sys/leases/revoke, would need a policy that may revoke any lease; revoke-self is
in Vault's default policy.)

Environment: VAULT_ADDR, APPROLE_ROLE_ID, APPROLE_SECRET_ID, OPENAI_BASE_URL (default
https://api.openai.com/v1); OPENAI_VAULT_MOUNT (default openai) and OPENAI_VAULT_ROLE
(default app).

    python3 examples/python/openai_key.py
"""

import json
import os
import signal
import sys
import urllib.error
import urllib.request

VAULT_ADDR = os.environ.get("VAULT_ADDR", "https://127.0.0.1:8200").rstrip("/")
BASE_URL = os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1").rstrip("/")
MOUNT = os.environ.get("OPENAI_VAULT_MOUNT", "openai")
ROLE = os.environ.get("OPENAI_VAULT_ROLE", "app")


def vault(method, path, token=None, body=None):
    """One Vault API call; returns the decoded JSON answer (or {} for 204)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{VAULT_ADDR}/v1/{path}", data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Vault-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return json.loads(raw) if raw else {}
    except urllib.error.HTTPError as e:
        errors = json.loads(e.read() or b"{}").get("errors", [])
        raise SystemExit(f"vault {method} {path}: HTTP {e.code}: {'; '.join(errors)}") from None


def list_models(key):
    """GET /v1/models with the issued key; returns (status, model ids)."""
    req = urllib.request.Request(f"{BASE_URL}/models")
    req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, [m["id"] for m in json.load(resp)["data"]]
    except urllib.error.HTTPError as e:
        return e.code, []


def main():
    login = vault("POST", "auth/approle/login", body={
        "role_id": os.environ["APPROLE_ROLE_ID"],
        "secret_id": os.environ["APPROLE_SECRET_ID"],
    })
    token = login["auth"]["client_token"]

    def revoke():
        vault("POST", "auth/token/revoke-self", token=token)
        print("revoked the Vault token and with it the lease", flush=True)

    # SIGTERM ends the program through the finally below, like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        creds = vault("GET", f"{MOUNT}/creds/{ROLE}", token=token)
        key = creds["data"]["api_key"]
        print(f"lease {creds['lease_id']} ({creds['lease_duration']}s), "
              f"service account {creds['data']['service_account_id']}", flush=True)
        status, models = list_models(key)
        print(f"GET /v1/models -> {status}: {', '.join(models)}", flush=True)
        if status != 200:
            return 1
        return 0
    finally:
        revoke()


if __name__ == "__main__":
    sys.exit(main())
