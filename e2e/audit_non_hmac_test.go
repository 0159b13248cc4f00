//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// The README's audit tuning, run as written (`vault secrets tune
// -audit-non-hmac-response-keys=... openai/`), puts the ids that link a lease
// to its OpenAI account in the audit log in clear, while the key itself stays
// an HMAC. Without the tuning every one of those ids is HMACed (TestAudit).
func TestAuditNonHMACResponseKeys(t *testing.T) {
	t.Parallel()
	v := startVault(t, VaultOptions{})
	f := newFake(t)
	auditPath := enableFileAudit(t, v)
	registerPlugin(t, v)
	mountPlugin(t, v, "openai")

	tune := readmeCommand(t, "audit", "vault secrets tune ")
	args := strings.Fields(tune)[1:]
	if out, errOut, code := v.CLI(args...); code != 0 {
		t.Fatalf("%s: exit %d: %s%s", tune, code, out, errOut)
	}
	writeConfig(t, v, "openai", f, nil)
	writeRole(t, v, "openai", "r", nil)
	c := issue(t, v, "openai", "r", nil)

	raw, err := os.ReadFile(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), c.APIKey) {
		t.Fatal("the issued key appears in clear in the audit log")
	}
	hmac := regexp.MustCompile(`^hmac-sha256:[0-9a-f]{64}$`)
	var resp map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var e auditEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit line is not JSON: %v", err)
		}
		if e.Type == "response" && e.Request.Path == "openai/creds/r" {
			resp = e.Response.Data
		}
	}
	if resp == nil {
		t.Fatal("no audited response for openai/creds/r")
	}
	if got, _ := resp["api_key"].(string); !hmac.MatchString(got) {
		t.Errorf("api_key audited as %q, want an HMAC", got)
	}
	for field, want := range map[string]string{
		"api_key_id":           c.APIKeyID,
		"service_account_id":   c.ServiceAccountID,
		"service_account_name": c.ServiceAccountName,
		"project_id":           c.ProjectID,
	} {
		if want == "" {
			t.Errorf("the issue response lacks %s", field)
			continue
		}
		if got := resp[field]; got != want {
			t.Errorf("%s audited as %v, want %q in clear", field, got, want)
		}
	}
}
