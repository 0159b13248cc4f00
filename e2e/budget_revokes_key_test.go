//go:build e2e

package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// A key that spends more tokens than its role's max_tokens_per_key is
// killed by the periodic function (Vault's one-minute tick): its account is
// deleted at OpenAI, so the fake refuses it (401), the ledger says revoked
// by budget, its lease can no longer renew, and a key of the same role under
// budget is untouched. The enforcement delay, from the call that crossed the
// budget to the key's death at the fake, is measured.
func TestBudgetRevokesKeyOverMaxTokensPerKey(t *testing.T) {
	t.Parallel()
	// Each POST /v1/responses of the harness costs the fake's fixed output
	// plus its count of "Say hello." (10 bytes: 3 tokens).
	perCall := int64(fakeopenai.ResponseOutputTokens) + fakeopenai.TextTokens("Say hello.")
	budget := 3 * perCall // three calls fit; the fourth goes over
	v, f := setupEngine(t, map[string]any{"ttl": "30m", "max_ttl": "2h", "max_tokens_per_key": budget})
	if role, err := v.Client.Logical().Read("openai/roles/r"); err != nil || jsonInt(t, role.Data, "max_tokens_per_key") != budget {
		t.Fatalf("role r does not read back max_tokens_per_key %d: %v", budget, err)
	}
	over := issue(t, v, "openai", "r", nil)
	under := issue(t, v, "openai", "r", nil)
	// Vault 1.21 passes a lease's id to the engine only on the revocation of
	// a lease renewed at least once (renewEntry blanks it on every renewal):
	// renew once, so the ledger can record it when the lease is revoked.
	if _, err := v.Client.Sys().Renew(over.LeaseID, 1800); err != nil {
		t.Fatalf("renewing the key before it goes over budget: %v", err)
	}
	for i := 0; i < 3; i++ {
		for _, c := range []*Creds{over, under} {
			if a := f.CreateResponse(t, c.APIKey); a.Status != http.StatusOK {
				t.Fatalf("model call %d: HTTP %d: %s", i+1, a.Status, a.Body)
			}
		}
	}
	// Both are at the budget exactly, not over it. One more call puts one over.
	if a := f.CreateResponse(t, over.APIKey); a.Status != http.StatusOK {
		t.Fatalf("the call crossing the budget: HTTP %d: %s", a.Status, a.Body)
	}
	crossed := time.Now()
	if got := f.UsageTotals()[over.APIKeyID]; got.InputTokens+got.OutputTokens != 4*perCall {
		t.Fatalf("the fake counts %d tokens for the key over budget, want %d", got.InputTokens+got.OutputTokens, 4*perCall)
	}

	took := waitFor(t, 150*time.Second, "the periodic budget check to kill the key over budget", func() bool {
		return !f.Has(over.ServiceAccountID)
	})
	delay := time.Since(crossed)
	if a := f.ListModels(t, over.APIKey); a.Status != http.StatusUnauthorized {
		t.Errorf("GET /v1/models with the key over budget: HTTP %d, want 401", a.Status)
	}
	if a := f.CreateResponse(t, over.APIKey); a.Status != http.StatusUnauthorized {
		t.Errorf("POST /v1/responses with the key over budget: HTTP %d, want 401", a.Status)
	}
	e := ledgerRead(t, v, "openai", over.APIKeyID)
	if e == nil || e["state"] != "revoked" || e["revoked_by"] != "budget" || e["revoked_at"] == "" {
		t.Errorf("ledger entry of the key over budget: state %v revoked_by %v revoked_at %v, want revoked by budget", e["state"], e["revoked_by"], e["revoked_at"])
	}

	// The key at its budget (not over) lives on.
	if !f.Has(under.ServiceAccountID) {
		t.Errorf("the key at (not over) its budget was killed too")
	}
	if a := f.ListModels(t, under.APIKey); a.Status != http.StatusOK {
		t.Errorf("GET /v1/models with the key within budget: HTTP %d, want 200", a.Status)
	}
	if e := ledgerRead(t, v, "openai", under.APIKeyID); e["state"] != "live" {
		t.Errorf("ledger entry of the key within budget: state %v, want live", e["state"])
	}

	// Its lease cannot renew; revoking it succeeds, records the lease and
	// keeps the cause.
	_, err := v.Client.Sys().Renew(over.LeaseID, 600)
	if _, msg := responseError(err); err == nil || !strings.Contains(msg, "max_tokens_per_key") {
		t.Errorf("renewing the lease of the key over budget: %v, want a refusal naming max_tokens_per_key", err)
	}
	if err := v.Client.Sys().Revoke(over.LeaseID); err != nil {
		t.Errorf("revoking the lease of the key over budget: %v", err)
	}
	if e := ledgerRead(t, v, "openai", over.APIKeyID); e["revoked_by"] != "budget" || e["lease_id"] != over.LeaseID {
		t.Errorf("after the lease's revocation the ledger says revoked_by %v lease_id %v, want budget and %s", e["revoked_by"], e["lease_id"], over.LeaseID)
	}

	// The warning names role, key and holder (as the ledger does); metrics count it once.
	holder, _ := e["display_name"].(string)
	lines := grepLines(v.Log(), "over its role's max_tokens_per_key")
	if holder == "" || len(lines) != 1 || !strings.Contains(lines[0], over.APIKeyID) || !strings.Contains(lines[0], "display_name="+holder+" ") ||
		!strings.Contains(lines[0], "role=r ") || !strings.Contains(lines[0], "[WARN]") {
		t.Errorf("want one WARN line naming role r, key %s and display_name %q; got %d lines: %v", over.APIKeyID, holder, len(lines), lines)
	}
	m := scrapeMetrics(t, v, "openai")
	if n, _ := metricValue(m, "openai_budget_revocations_total", map[string]string{"role": "r"}); n != 1 {
		t.Errorf("openai_budget_revocations_total{role=r} = %v, want 1", n)
	}
	if n, _ := metricValue(m, "openai_keys_revoked_total", map[string]string{"role": "r", "cause": "budget"}); n != 1 {
		t.Errorf("openai_keys_revoked_total{role=r,cause=budget} = %v, want 1", n)
	}
	t.Logf("budget enforcement delay: %s from the call that crossed the budget to the key's death at the fake (waited %s)",
		delay.Round(100*time.Millisecond), took.Round(100*time.Millisecond))
	figures(t, "budget", "enforcement_delay", delay)
}

// OpenAI's usage reports trail the calls they count; the budget check can
// only act on what they show. With the fake's reporting lag at 75s, longer
// than Vault's one-minute tick, at least one budget check (one usage query
// at the fake per tick) runs after the key crossed its budget but before the
// report shows it: the key must survive it, and die at the first check
// after the lag. The lag adds to the enforcement delay.
func TestBudgetEnforcementDelayAddsReportingLag(t *testing.T) {
	t.Parallel()
	const lag = 75 * time.Second
	perCall := int64(fakeopenai.ResponseOutputTokens) + fakeopenai.TextTokens("Say hello.")
	v, f := setupEngine(t, map[string]any{"ttl": "30m", "max_tokens_per_key": perCall})
	f.SetReportingLag(lag)
	over := issue(t, v, "openai", "r", nil)
	if a := f.CreateResponse(t, over.APIKey); a.Status != http.StatusOK {
		t.Fatalf("model call: HTTP %d", a.Status)
	}
	// Taken before the call that crosses the budget, so the fake's record of
	// it (and the lag counted from there) comes after.
	crossed := time.Now()
	if a := f.CreateResponse(t, over.APIKey); a.Status != http.StatusOK {
		t.Fatalf("the call crossing the budget: HTTP %d", a.Status)
	}
	checks := func() int { return f.Calls()[fakeopenai.OpUsageCompletions] }
	base := checks()
	var checksInLag int // budget checks that ran after the crossing, within the lag, with the key surviving
	for f.Has(over.ServiceAccountID) {
		if n := checks(); n > base {
			// (A second of margin: the record's own time is a little after crossed.)
			if time.Since(crossed) < lag-time.Second && f.Has(over.ServiceAccountID) {
				checksInLag += n - base
			}
			base = n
		}
		if time.Since(crossed) > lag+150*time.Second {
			t.Fatalf("the key over budget is still live %s after crossing it (reporting lag %s)", time.Since(crossed), lag)
		}
		time.Sleep(100 * time.Millisecond)
	}
	delay := time.Since(crossed)
	if delay < lag {
		t.Errorf("the key was killed %s after crossing its budget, before the %s reporting lag let the report show it", delay, lag)
	}
	if checksInLag == 0 {
		t.Errorf("no budget check ran within the %s lag after the crossing (ticks are a minute apart); cannot show the key surviving one", lag)
	}
	if a := f.ListModels(t, over.APIKey); a.Status != http.StatusUnauthorized {
		t.Errorf("GET /v1/models with the killed key: HTTP %d, want 401", a.Status)
	}
	if e := ledgerRead(t, v, "openai", over.APIKeyID); e["revoked_by"] != "budget" {
		t.Errorf("ledger revoked_by %v, want budget", e["revoked_by"])
	}
	t.Logf("with a %s reporting lag the key died %s after crossing its budget; %d budget check(s) ran inside the lag and let it live",
		lag, delay.Round(100*time.Millisecond), checksInLag)
	figures(t, "budget-lag", "reporting_lag", lag, "enforcement_delay", delay, "checks_inside_lag", checksInLag)
}
