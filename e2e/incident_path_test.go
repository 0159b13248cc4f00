//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// cliWithStdin runs the vault CLI against v with stdin, as a person at a
// terminal piping a value in (`key=-`), so the value is never an argument.
func cliWithStdin(t *testing.T, v *Vault, stdin string, args ...string) (stdout string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, suite.vaultBin, args...)
	cmd.Env = append(cleanEnv(), "VAULT_ADDR="+v.Addr, "VAULT_TOKEN="+v.Client.Token())
	cmd.Stdin = strings.NewReader(stdin)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("vault %s: exit %d: %s", strings.Join(args, " "), ee.ExitCode(), v.redact(e.String()))
		}
		t.Fatalf("vault %s: %v", strings.Join(args, " "), err)
	}
	return o.String()
}

// incidentAuditEntry is what the responder reads of a file audit line.
type incidentAuditEntry struct {
	Time string `json:"time"`
	Type string `json:"type"`
	Auth struct {
		Accessor    string `json:"accessor"`
		DisplayName string `json:"display_name"`
		EntityID    string `json:"entity_id"`
	} `json:"auth"`
	Request struct {
		ID            string `json:"id"`
		Operation     string `json:"operation"`
		Path          string `json:"path"`
		RemoteAddress string `json:"remote_address"`
	} `json:"request"`
	Response struct {
		Secret struct {
			LeaseID string `json:"lease_id"`
		} `json:"secret"`
		Data map[string]any `json:"data"`
	} `json:"response"`
}

// The incident path with Vault's own tools, as the report's README snippet
// runs it: a leaked key value goes (on stdin) to keys/lookup, which names
// the holder and the issuing request id, and to sys/audit-hash/<device>,
// whose HMAC finds the audit log's response entry for that request: the
// same request id, the lease it created, the time, the token accessor
// (HMAC'd, matching the holder's accessor hashed the same way) and the
// remote address.
func TestIncidentPathFromLeakedKeyToAuditEntry(t *testing.T) {
	t.Parallel()
	v := startVault(t, VaultOptions{})
	f := newFake(t)
	auditPath := enableFileAudit(t, v) // device "file/"
	registerPlugin(t, v)
	mountPlugin(t, v, "openai")
	writeConfig(t, v, "openai", f, nil)
	writeRole(t, v, "openai", "app", map[string]any{"ttl": "30m"})
	users := enableUserpass(t, v, "openai", "carol", "dave")
	leaked := issueAs(t, v, users["carol"], "openai", "app")
	other := issueAs(t, v, users["dave"], "openai", "app") // a second issue the trail must not confuse with it

	// 1. The ledger: who received it (the key on stdin, never on a command line).
	var lookup struct {
		Data struct {
			Matches []map[string]any `json:"matches"`
		} `json:"data"`
	}
	out := cliWithStdin(t, v, leaked.APIKey, "write", "-format=json", "openai/keys/lookup", "api_key=-")
	if err := json.Unmarshal([]byte(out), &lookup); err != nil {
		t.Fatalf("keys/lookup output is not JSON: %v", err)
	}
	if len(lookup.Data.Matches) != 1 {
		t.Fatalf("keys/lookup: %d matches, want 1", len(lookup.Data.Matches))
	}
	entry := lookup.Data.Matches[0]
	requestID, _ := entry["request_id"].(string)
	if entry["display_name"] != "userpass-carol" || entry["entity_id"] != users["carol"].entityID || requestID == "" ||
		entry["api_key_id"] != leaked.APIKeyID {
		t.Fatalf("keys/lookup names display_name %v entity %v request_id %q key %v; want userpass-carol, %s, a request id, %s",
			entry["display_name"], entry["entity_id"], requestID, entry["api_key_id"], users["carol"].entityID, leaked.APIKeyID)
	}

	// 2. The audit log's HMAC of the leaked value.
	hash := strings.TrimSpace(cliWithStdin(t, v, leaked.APIKey, "write", "-field=hash", "sys/audit-hash/file", "input=-"))
	if !strings.HasPrefix(hash, "hmac-sha256:") {
		t.Fatalf("sys/audit-hash/file answered %q, want an hmac-sha256", hash)
	}
	accessorHash := strings.TrimSpace(cliWithStdin(t, v, users["carol"].accessor, "write", "-field=hash", "sys/audit-hash/file", "input=-"))

	// 3. The audit entries holding it (the README's `grep -F "$hash" audit.log`).
	raw, err := os.ReadFile(auditPath)
	if err != nil {
		t.Fatalf("reading the audit log: %v", err)
	}
	if strings.Contains(string(raw), leaked.APIKey) {
		t.Fatalf("the leaked key is in the audit log in clear")
	}
	var resp []incidentAuditEntry
	var reqs []incidentAuditEntry
	for _, line := range grepLines(string(raw), hash) {
		var e incidentAuditEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit line is not JSON: %v", err)
		}
		if e.Type == "response" && e.Request.Path == "openai/creds/app" {
			resp = append(resp, e)
		}
	}
	if len(resp) != 1 {
		t.Fatalf("%d audit response entries of openai/creds/app carry the leaked key's HMAC, want exactly 1", len(resp))
	}
	e := resp[0]
	// The request entry of the same request (it carries no key: found by id).
	for _, line := range grepLines(string(raw), `"id":"`+e.Request.ID+`"`) {
		var x incidentAuditEntry
		if json.Unmarshal([]byte(line), &x) == nil && x.Type == "request" {
			reqs = append(reqs, x)
		}
	}
	if e.Request.ID != requestID {
		t.Errorf("audit entry request id %s, ledger request_id %s: they must be the same request", e.Request.ID, requestID)
	}
	if e.Response.Secret.LeaseID != leaked.LeaseID {
		t.Errorf("audit response entry lease_id %q, want the leaked key's lease %s", e.Response.Secret.LeaseID, leaked.LeaseID)
	}
	if e.Response.Secret.LeaseID == other.LeaseID {
		t.Errorf("the trail leads to dave's lease")
	}
	if ts, err := time.Parse(time.RFC3339Nano, e.Time); err != nil || time.Since(ts) > 10*time.Minute || time.Since(ts) < 0 {
		t.Errorf("audit entry time %q is not a recent RFC 3339 time (%v)", e.Time, err)
	}
	if e.Auth.Accessor == "" || e.Auth.Accessor != accessorHash {
		t.Errorf("audit entry accessor %q, want carol's token accessor as sys/audit-hash gives it (%q)", e.Auth.Accessor, accessorHash)
	}
	if e.Auth.DisplayName != "userpass-carol" || e.Auth.EntityID != users["carol"].entityID {
		t.Errorf("audit entry auth names %q / %q, want userpass-carol / %s", e.Auth.DisplayName, e.Auth.EntityID, users["carol"].entityID)
	}
	if e.Request.RemoteAddress != "127.0.0.1" {
		t.Errorf("audit entry remote_address %q, want 127.0.0.1 (the test's client)", e.Request.RemoteAddress)
	}
	if len(reqs) != 1 || reqs[0].Request.RemoteAddress != "127.0.0.1" || reqs[0].Time == "" {
		t.Errorf("found %d audit request entries with id %s (want 1, with time and remote address)", len(reqs), e.Request.ID)
	}
	if got, _ := e.Response.Data["api_key_id"].(string); got == leaked.APIKeyID {
		t.Logf("api_key_id is in clear in the audit log (mount tuned)")
	}
	// 4. Contain it: revoke the lease the audit entry names.
	cliWithStdin(t, v, "", "lease", "revoke", e.Response.Secret.LeaseID)
	if f.Has(leaked.ServiceAccountID) || !f.Has(other.ServiceAccountID) {
		t.Errorf("after revoking the traced lease: leaked key's account live %t, the other key's live %t; want false, true",
			f.Has(leaked.ServiceAccountID), f.Has(other.ServiceAccountID))
	}
	if a := f.ListModels(t, leaked.APIKey); a.Status != http.StatusUnauthorized {
		t.Errorf("GET /v1/models with the revoked leaked key: HTTP %d, want 401", a.Status)
	}
	if m := ledgerRead(t, v, "openai", leaked.APIKeyID); m["state"] != "revoked" || m["revoked_by"] != "revoke" {
		t.Errorf("ledger after the revoke: state %v revoked_by %v", m["state"], m["revoked_by"])
	}
	figures(t, "incident-path", "request_id", e.Request.ID, "lease", e.Response.Secret.LeaseID != "", "remote", e.Request.RemoteAddress)
}
