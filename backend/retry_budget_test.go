package backend

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// Defect 10 of issue 9: by default, retries are bounded by time (retry_budget),
// not by a small count.

func TestRetry_DefaultsAreABudgetNotACount(t *testing.T) {
	e := newTestEnv(t)
	e.configureDefaults(nil)
	resp := e.mustOK(logical.ReadOperation, "config", nil)
	if resp.Data["retry_budget"] != int64(30) || resp.Data["max_retries"] != maxRetriesUnset {
		t.Fatalf("defaults: retry_budget=%v max_retries=%v", resp.Data["retry_budget"], resp.Data["max_retries"])
	}
	// An explicit max_retries is kept and shown.
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{"max_retries": 3})
	if got := e.mustOK(logical.ReadOperation, "config", nil).Data["max_retries"]; got != 3 {
		t.Fatalf("explicit max_retries read back as %v", got)
	}
}

// Eight throttled attempts in a row: the old default (four retries) failed.
func TestRetry_DefaultOutlastsEightThrottledAttempts(t *testing.T) {
	e := newTestEnv(t)
	e.configureDefaults(nil)
	e.writeRole("app", map[string]interface{}{})
	e.setFault(fakeopenai.OpCreateServiceAccount, fakeopenai.Fault429, 8, 0, 1)
	start := time.Now()
	e.issue("app", nil)
	if got := e.fake.Calls()[fakeopenai.OpCreateServiceAccount]; got != 9 {
		t.Fatalf("%d create attempts, want 9", got)
	}
	t.Logf("issued after 8 throttled attempts in %s", time.Since(start).Round(time.Millisecond))
}

// The issue's figure: 500 issues at concurrency 16 against 30% throttling
// (Retry-After: 1) all succeed with the defaults.
func TestRetry_FiveHundredIssuesAtThirtyPercentThrottlingAllSucceed(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 15s")
	}
	e := newTestEnv(t)
	e.configureDefaults(nil)
	e.writeRole("app", map[string]interface{}{})
	e.fake.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{{
		Ops: []fakeopenai.Op{fakeopenai.OpCreateServiceAccount}, Kind: fakeopenai.Fault429, Rate: 0.3, RetryAfter: 1,
	}}})
	e.fake.ResetFaultCounts()
	const n, conc = 500, 16
	var next, failed atomic.Int32
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= n {
				resp, err := e.b.HandleRequest(context.Background(), &logical.Request{
					Operation: logical.UpdateOperation, Path: "creds/app", Storage: e.storage, DisplayName: "token-load",
				})
				if err == nil && resp.IsError() {
					err = resp.Error()
				}
				if err != nil {
					failed.Add(1)
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	throttled := e.fake.FaultCounts()[fakeopenai.Fault429]
	attempts := e.fake.Calls()[fakeopenai.OpCreateServiceAccount]
	t.Logf("%d issues at concurrency %d, 30%% of creates answered 429 (Retry-After: 1): %d failed, %d create attempts, %d throttled, %d live accounts, %d WAL entries left, %s",
		n, conc, failed.Load(), attempts, throttled, len(e.fake.LiveAccounts()), e.walCount(), took.Round(time.Millisecond))
	if failed.Load() != 0 {
		t.Fatalf("%d of %d issues failed, first: %v", failed.Load(), n, firstErr)
	}
	if throttled == 0 {
		t.Fatal("the fault never fired")
	}
	if got := len(e.fake.LiveAccounts()); got != n {
		t.Fatalf("%d live accounts for %d issues", got, n)
	}
	if e.walCount() != 0 {
		t.Fatalf("%d WAL entries left: throttled issues should leave none", e.walCount())
	}
}

// The budget ends a call OpenAI keeps refusing, with an error that says so,
// within the budget plus one attempt.
func TestRetry_BudgetEndsPersistentThrottlingAndOutages(t *testing.T) {
	for _, kind := range []fakeopenai.FaultKind{fakeopenai.Fault429, fakeopenai.Fault500, fakeopenai.FaultDrop} {
		e := newTestEnv(t)
		e.configureDefaults(map[string]interface{}{"retry_budget": "2s", "request_timeout": "2s"})
		e.writeRole("app", map[string]interface{}{})
		e.setFault(fakeopenai.OpCreateServiceAccount, kind, 0, 1, 1)
		start := time.Now()
		_, err := e.do(logical.UpdateOperation, "creds/app", nil)
		took := time.Since(start)
		want := map[fakeopenai.FaultKind]string{fakeopenai.Fault429: "rate limited by OpenAI", fakeopenai.Fault500: "HTTP 500", fakeopenai.FaultDrop: "OpenAI unreachable"}[kind]
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: want an error saying %q, got %v", kind, want, err)
		}
		if took > 4*time.Second {
			t.Fatalf("%s: call ran %s with retry_budget 2s and request_timeout 2s", kind, took)
		}
		attempts := e.fake.Calls()[fakeopenai.OpCreateServiceAccount]
		if attempts < 2 {
			t.Fatalf("%s: %d attempts in a 2s budget", kind, attempts)
		}
		t.Logf("%s: %d attempts, ended after %s: %v", kind, attempts, took.Round(time.Millisecond), err)
	}
}

// An explicit max_retries still caps the count inside the budget.
func TestRetry_ExplicitMaxRetriesCapsWithinTheBudget(t *testing.T) {
	e := newTestEnv(t)
	e.configureDefaults(map[string]interface{}{"max_retries": 1})
	e.writeRole("app", map[string]interface{}{})
	e.setFault(fakeopenai.OpCreateServiceAccount, fakeopenai.Fault429, 0, 1, 1)
	_, err := e.do(logical.UpdateOperation, "creds/app", nil)
	if err == nil || !strings.Contains(err.Error(), "rate limited") {
		t.Fatalf("got %v", err)
	}
	if got := e.fake.Calls()[fakeopenai.OpCreateServiceAccount]; got != 2 {
		t.Fatalf("%d attempts with max_retries=1", got)
	}
}

// A config stored before retry_budget existed, with the old default
// max_retries=4, gets the budget at once, before any config write.
func TestRetry_ConfigFromBeforeTheBudgetIsNotCappedAtFour(t *testing.T) {
	e := newTestEnv(t)
	e.configureDefaults(nil)
	e.writeRole("app", map[string]interface{}{})
	cfg := e.storedConfig()
	cfg.MaxRetries, cfg.RetryBudget = defaultMaxRetries, 0
	if err := putConfig(t.Context(), e.storage, cfg); err != nil {
		t.Fatal(err)
	}
	e.b.resetClient()
	if got := e.mustOK(logical.ReadOperation, "config", nil).Data["max_retries"]; got != maxRetriesUnset {
		t.Fatalf("legacy default max_retries read back as %v", got)
	}
	e.setFault(fakeopenai.OpCreateServiceAccount, fakeopenai.Fault429, 6, 0, 1)
	e.issue("app", nil)
	// The next config write stores the budget; max_retries stays unset.
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{"tidy_interval": "2h"})
	if cfg := e.storedConfig(); cfg.MaxRetries != maxRetriesUnset || cfg.RetryBudget != defaultRetryBudget {
		t.Fatalf("after a write: max_retries %d, retry_budget %s", cfg.MaxRetries, cfg.RetryBudget)
	}
}
