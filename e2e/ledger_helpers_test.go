//go:build e2e

package e2e

// Helpers for the ledger, usage, budget and metrics tests (issue 15): users
// with Vault identities, issuing as them, reading the ledger and scraping a
// mount's metrics.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/vault-plugin-openai/vault-plugin-openai/e2e/harness"
)

// user is a userpass login: its own token, display name and identity entity.
type user struct {
	name        string
	client      *api.Client
	displayName string // as Vault sets it on requests: "userpass-<name>"
	entityID    string
	accessor    string
}

// enableUserpass enables the userpass auth method with a policy that may
// issue from every role of mount, and creates the named users.
func enableUserpass(t *testing.T, v *Vault, mount string, names ...string) map[string]*user {
	t.Helper()
	if err := v.Client.Sys().EnableAuthWithOptions("userpass", &api.EnableAuthOptions{Type: "userpass"}); err != nil {
		t.Fatalf("enabling userpass: %v", err)
	}
	policy := fmt.Sprintf("path %q {\n  capabilities = [\"read\", \"update\"]\n}\n", mount+"/creds/*")
	if err := v.Client.Sys().PutPolicy("issuer", policy); err != nil {
		t.Fatalf("writing the issuer policy: %v", err)
	}
	users := map[string]*user{}
	for _, n := range names {
		pw := "pw-" + harness.RandHex(8)
		v.AddSecret(pw)
		if _, err := v.Client.Logical().Write("auth/userpass/users/"+n, map[string]any{
			"password": pw, "token_policies": "issuer",
		}); err != nil {
			t.Fatalf("creating user %s: %v", n, err)
		}
		c, err := v.Client.Clone()
		if err != nil {
			t.Fatalf("cloning the client: %v", err)
		}
		c.ClearNamespace()
		s, err := c.Logical().Write("auth/userpass/login/"+n, map[string]any{"password": pw})
		if err != nil || s == nil || s.Auth == nil {
			t.Fatalf("logging in as %s: %v", n, err)
		}
		v.AddSecret(s.Auth.ClientToken)
		c.SetToken(s.Auth.ClientToken)
		if s.Auth.EntityID == "" {
			t.Fatalf("login as %s has no entity id", n)
		}
		users[n] = &user{name: n, client: c, displayName: "userpass-" + n, entityID: s.Auth.EntityID, accessor: s.Auth.Accessor}
	}
	return users
}

// issueAs reads mount/creds/role with the user's token.
func issueAs(t *testing.T, v *Vault, u *user, mount, role string) *Creds {
	t.Helper()
	s, err := u.client.Logical().Read(mount + "/creds/" + role)
	if err != nil || s == nil {
		t.Fatalf("%s issuing from %s/creds/%s: %v", u.name, mount, role, err)
	}
	str := func(k string) string { x, _ := s.Data[k].(string); return x }
	c := &Creds{
		APIKey: str("api_key"), APIKeyID: str("api_key_id"), ServiceAccountID: str("service_account_id"),
		ServiceAccountName: str("service_account_name"), ProjectID: str("project_id"),
		LeaseID: s.LeaseID, LeaseDuration: s.LeaseDuration, Renewable: s.Renewable, Warnings: s.Warnings,
	}
	v.AddSecret(c.APIKey)
	if c.APIKey == "" || c.APIKeyID == "" || c.LeaseID == "" {
		t.Fatalf("%s's issue from %s/creds/%s lacks api_key, api_key_id or lease", u.name, mount, role)
	}
	return c
}

// ledgerRead reads mount/keys/<id>; nil when the ledger has no such entry.
func ledgerRead(t *testing.T, v *Vault, mount, keyID string) map[string]any {
	t.Helper()
	s, err := v.Client.Logical().Read(mount + "/keys/" + keyID)
	if err != nil {
		t.Fatalf("reading %s/keys/%s: %v", mount, keyID, err)
	}
	if s == nil {
		return nil
	}
	return s.Data
}

// ledgerList lists mount/keys/ with optional role and state filters and
// returns the ids and each id's key_info.
func ledgerList(t *testing.T, v *Vault, mount string, filters map[string]string) ([]string, map[string]map[string]any) {
	t.Helper()
	return harness.LedgerList(t, v.Vault, mount, filters)
}

// lookupKey writes mount/keys/lookup with data (the key in the body, never
// in a URL or on a command line) and returns the matches.
func lookupKey(t *testing.T, v *Vault, mount string, data map[string]any) []map[string]any {
	t.Helper()
	s, err := v.Client.Logical().Write(mount+"/keys/lookup", data)
	if err != nil || s == nil {
		t.Fatalf("%s/keys/lookup: %v", mount, err)
	}
	raw, _ := s.Data["matches"].([]any)
	var out []map[string]any
	for _, m := range raw {
		mm, _ := m.(map[string]any)
		out = append(out, mm)
	}
	return out
}

// metricSample is one line of Prometheus text: a name, labels, a value.
type metricSample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrapeMetrics GETs /v1/<mount>/metrics with the token in X-Vault-Token, as
// a Prometheus scrape (or curl) would, and parses the text format.
func scrapeMetrics(t *testing.T, v *Vault, mount string) []metricSample {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, v.Addr+"/v1/"+mount+"/metrics", nil)
	if err != nil {
		t.Fatalf("building the metrics request: %v", err)
	}
	req.Header.Set("X-Vault-Token", v.Client.Token())
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		t.Fatalf("GET /v1/%s/metrics: %v", mount, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/%s/metrics: HTTP %d: %s", mount, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("GET /v1/%s/metrics: Content-Type %q, want Prometheus text (text/plain)", mount, ct)
	}
	var out []metricSample
	for _, line := range strings.Split(string(body), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			t.Fatalf("metrics line %q is not Prometheus text", line)
		}
		val, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: value: %v", line, err)
		}
		s := metricSample{name: line[:sp], labels: map[string]string{}, value: val}
		if i := strings.IndexByte(s.name, '{'); i >= 0 {
			for _, kv := range strings.Split(strings.TrimSuffix(s.name[i+1:], "}"), ",") {
				if k, q, ok := strings.Cut(kv, "="); ok {
					s.labels[k], _ = strconv.Unquote(q)
				}
			}
			s.name = s.name[:i]
		}
		out = append(out, s)
	}
	return out
}

// metricValue is the value of the sample with this name and exactly these
// labels; found is false when there is none.
func metricValue(samples []metricSample, name string, labels map[string]string) (value float64, found bool) {
	for _, s := range samples {
		if s.name != name || len(s.labels) != len(labels) {
			continue
		}
		match := true
		for k, val := range labels {
			if s.labels[k] != val {
				match = false
			}
		}
		if match {
			return s.value, true
		}
	}
	return 0, false
}

// jsonInt reads an integer field of a Vault response (json.Number).
func jsonInt(t *testing.T, m map[string]any, k string) int64 {
	t.Helper()
	switch x := m[k].(type) {
	case json.Number:
		n, err := x.Int64()
		if err != nil {
			t.Fatalf("field %s = %v is not an integer", k, x)
		}
		return n
	default:
		t.Fatalf("field %s = %#v (%T) is not a number", k, m[k], m[k])
		return 0
	}
}

// jsonFloat reads a number field of a Vault response (json.Number).
func jsonFloat(t *testing.T, m map[string]any, k string) float64 {
	t.Helper()
	x, ok := m[k].(json.Number)
	if !ok {
		t.Fatalf("field %s = %#v (%T) is not a number", k, m[k], m[k])
	}
	f, err := x.Float64()
	if err != nil {
		t.Fatalf("field %s = %v: %v", k, x, err)
	}
	return f
}
