//go:build e2e

package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// GET /v1/<mount>/metrics (the token in X-Vault-Token, as a Prometheus
// scrape sends it) counts exactly the operations performed on that mount:
// keys issued per role, revoked by cause (an explicit revoke, a lease
// expiry), an issue refused by a live-key cap, live keys per role, and
// upstream calls; a second mount served by the same plugin process counts
// only its own.
func TestMetricsCountThisMountsOperations(t *testing.T) {
	t.Parallel()
	v := startVault(t, VaultOptions{})
	f := newFake(t)
	registerPlugin(t, v)
	mountPlugin(t, v, "openai")
	mountPlugin(t, v, "openai-b")
	writeConfig(t, v, "openai", f, nil)
	writeConfig(t, v, "openai-b", f, nil)
	writeRole(t, v, "openai", "capped", map[string]any{"ttl": "30m", "max_live_keys": 2})
	writeRole(t, v, "openai", "short", map[string]any{"ttl": "30m"})
	writeRole(t, v, "openai-b", "other", map[string]any{"ttl": "30m"})

	// Before anything: the failure causes exist at 0, nothing issued.
	m0 := scrapeMetrics(t, v, "openai")
	if n, ok := metricValue(m0, "openai_keys_issue_failed_total", map[string]string{"cause": "cap"}); !ok || n != 0 {
		t.Errorf("fresh mount: openai_keys_issue_failed_total{cause=cap} = %v (present %t), want 0", n, ok)
	}

	c1 := issue(t, v, "openai", "capped", nil)
	issue(t, v, "openai", "capped", nil)
	_, err := tryIssue(v, "openai", "capped", nil)
	if code, msg := responseError(err); code != http.StatusBadRequest || !strings.Contains(msg, "max_live_keys") {
		t.Fatalf("third issue past max_live_keys 2: HTTP %d %q, want a 400 naming max_live_keys", code, msg)
	}
	if err := v.Client.Sys().Revoke(c1.LeaseID); err != nil {
		t.Fatalf("revoking: %v", err)
	}
	// A 5-second lease that Vault expires on its own.
	short := issue(t, v, "openai", "short", map[string]any{"ttl": "5s"})
	waitFor(t, 90*time.Second, "the 5s lease to expire and its account to go", func() bool {
		return !f.Has(short.ServiceAccountID)
	})
	// The engine deletes the account first and then marks its ledger entry.
	waitFor(t, 30*time.Second, "the expired key's ledger entry to say revoked_by expiry", func() bool {
		return ledgerRead(t, v, "openai", short.APIKeyID)["revoked_by"] == "expiry"
	})
	issue(t, v, "openai-b", "other", nil)
	otherB := issue(t, v, "openai-b", "other", nil)
	if err := v.Client.Sys().Revoke(otherB.LeaseID); err != nil {
		t.Fatalf("revoking on openai-b: %v", err)
	}

	m := scrapeMetrics(t, v, "openai")
	for _, want := range []struct {
		name   string
		labels map[string]string
		value  float64
	}{
		{"openai_keys_issued_total", map[string]string{"role": "capped"}, 2},
		{"openai_keys_issued_total", map[string]string{"role": "short"}, 1},
		{"openai_keys_revoked_total", map[string]string{"role": "capped", "cause": "revoke"}, 1},
		{"openai_keys_revoked_total", map[string]string{"role": "short", "cause": "expiry"}, 1},
		{"openai_keys_issue_failed_total", map[string]string{"cause": "cap"}, 1},
		{"openai_keys_issue_failed_total", map[string]string{"cause": "upstream_client"}, 0},
		{"openai_keys_issue_failed_total", map[string]string{"cause": "upstream_unavailable"}, 0},
		{"openai_live_keys", map[string]string{"role": "capped"}, 1},
		{"openai_accounts_rolled_back_total", map[string]string{}, 0},
		// Every stored role's series exist at 0 before their first event.
		{"openai_budget_revocations_total", map[string]string{"role": "capped"}, 0},
		{"openai_keys_revoked_total", map[string]string{"role": "short", "cause": "budget"}, 0},
	} {
		got, ok := metricValue(m, want.name, want.labels)
		if !ok || got != want.value {
			t.Errorf("openai: %s%v = %v (present %t), want %v", want.name, want.labels, got, ok, want.value)
		}
	}
	if n, ok := metricValue(m, "openai_live_keys", map[string]string{"role": "short"}); ok && n != 0 {
		t.Errorf("openai: openai_live_keys{role=short} = %v, want 0 or absent", n)
	}
	// Every create and delete went upstream: the histogram counted them.
	var upstream float64
	for _, s := range m {
		if s.name == "openai_upstream_request_duration_seconds_count" {
			upstream += s.value
		}
	}
	if upstream < 5 { // config verify, role checks, 3 creates, 2 deletes at least
		t.Errorf("openai: upstream latency histogram counted %v calls, want at least 5", upstream)
	}

	// The second mount, in the same plugin process, has only its own.
	mb := scrapeMetrics(t, v, "openai-b")
	if n, _ := metricValue(mb, "openai_keys_issued_total", map[string]string{"role": "other"}); n != 2 {
		t.Errorf("openai-b: openai_keys_issued_total{role=other} = %v, want 2", n)
	}
	if n, _ := metricValue(mb, "openai_keys_revoked_total", map[string]string{"role": "other", "cause": "revoke"}); n != 1 {
		t.Errorf("openai-b: openai_keys_revoked_total{role=other,cause=revoke} = %v, want 1", n)
	}
	if n, _ := metricValue(mb, "openai_keys_issue_failed_total", map[string]string{"cause": "cap"}); n != 0 {
		t.Errorf("openai-b: openai_keys_issue_failed_total{cause=cap} = %v, want 0 (the refusal was openai's)", n)
	}
	for _, s := range mb {
		if r := s.labels["role"]; r == "capped" || r == "short" {
			t.Errorf("openai-b's metrics include openai's role %s: %s%v", r, s.name, s.labels)
		}
	}
	for _, s := range m {
		if s.labels["role"] == "other" {
			t.Errorf("openai's metrics include openai-b's role: %s%v", s.name, s.labels)
		}
	}

	// Prometheus' authorization block sends the token as a bearer token.
	breq, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, v.Addr+"/v1/openai/metrics", nil)
	breq.Header.Set("Authorization", "Bearer "+v.Client.Token())
	bresp, err := http.DefaultClient.Do(breq)
	if err != nil {
		t.Fatalf("GET with a bearer token: %v", err)
	}
	bbody, _ := io.ReadAll(bresp.Body)
	bresp.Body.Close()
	if bresp.StatusCode != http.StatusOK || !strings.Contains(string(bbody), `openai_keys_issued_total{role="capped"} 2`) {
		t.Errorf("GET /v1/openai/metrics with Authorization: Bearer: HTTP %d, issued counter present %t", bresp.StatusCode,
			strings.Contains(string(bbody), `openai_keys_issued_total{role="capped"} 2`))
	}

	// Without a token the scrape is refused by Vault.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, v.Addr+"/v1/openai/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET without token: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET /v1/openai/metrics without a token: HTTP %d, want 403", resp.StatusCode)
	}
}
