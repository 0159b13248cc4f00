package backend

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

func TestRetry_MaxRetriesFromConfig(t *testing.T) {
	for _, n := range []int{0, 2} {
		e := newTestEnv(t)
		e.configureRetries(n)
		e.writeRole("app", map[string]interface{}{})
		e.setFault(fakeopenai.OpCreateServiceAccount, fakeopenai.Fault500, 0, 1, 0)
		_, err := e.do(logical.UpdateOperation, "creds/app", nil)
		if err == nil || !strings.Contains(err.Error(), "HTTP 500") {
			t.Fatalf("max_retries=%d: want an HTTP 500 error, got %v", n, err)
		}
		if got := e.fake.Calls()[fakeopenai.OpCreateServiceAccount]; got != n+1 {
			t.Fatalf("max_retries=%d: %d create attempts, want %d", n, got, n+1)
		}
	}
}

func TestRetry_RetryAfterIsHonoured(t *testing.T) {
	e := newTestEnv(t)
	e.configureRetries(1)
	e.writeRole("app", map[string]interface{}{})
	e.setFault(fakeopenai.OpCreateServiceAccount, fakeopenai.Fault429, 1, 0, 2)
	start := time.Now()
	e.issue("app", nil)
	if took := time.Since(start); took < 1900*time.Millisecond {
		t.Fatalf("issue took %s; Retry-After: 2 was not waited out", took)
	}
}

// A Vault request never outlives its own deadline, however long OpenAI asks
// us to wait: a Retry-After that would outlast it ends the call at once, and
// the error says OpenAI is throttling.
func TestRetry_BoundedByRequestContext(t *testing.T) {
	e := newTestEnv(t)
	e.configureRetries(10)
	e.writeRole("app", map[string]interface{}{})
	e.setFault(fakeopenai.OpCreateServiceAccount, fakeopenai.Fault429, 0, 1, 30)

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	_, err := e.b.HandleRequest(ctx, &logical.Request{Operation: logical.UpdateOperation, Path: "creds/app", Storage: e.storage})
	took := time.Since(start)
	if took > 3*time.Second {
		t.Fatalf("request ran %s past a 1s deadline", took)
	}
	if err == nil || !strings.Contains(err.Error(), "rate limited by OpenAI") {
		t.Fatalf("want a rate-limited error, got %v", err)
	}
	if got := e.fake.Calls()[fakeopenai.OpCreateServiceAccount]; got != 1 {
		t.Fatalf("%d attempts within a 1s deadline against Retry-After: 30", got)
	}
}

func TestRetry_PersistentThrottlingSaysRateLimited(t *testing.T) {
	e := newTestEnv(t)
	e.configureRetries(1)
	e.writeRole("app", map[string]interface{}{})
	e.setFault(fakeopenai.OpCreateServiceAccount, fakeopenai.Fault429, 0, 1, 1)
	resp, err := e.do(logical.UpdateOperation, "creds/app", nil)
	if err == nil {
		t.Fatalf("issue succeeded under persistent 429: %#v", resp)
	}
	if !strings.Contains(err.Error(), "rate limited by OpenAI") {
		t.Fatalf("error %q does not say rate limited by OpenAI", err)
	}
	// Throttling is not the user's fault: it must not come back as a 400.
	if resp != nil && resp.IsError() {
		t.Fatalf("throttling reported as a bad request: %v", resp.Error())
	}
	e.assertNoSecret("error", err.Error())
}

// Revocation rides out more throttling than max_retries allows, without
// handing the lease back to Vault's slow revoke backoff.
func TestRetry_RevokeOutlastsThrottlingBeyondMaxRetries(t *testing.T) {
	e := newTestEnv(t)
	e.configureRetries(0)
	e.writeRole("app", map[string]interface{}{})
	resp := e.issue("app", nil)

	e.setFault(fakeopenai.OpDeleteServiceAccount, fakeopenai.Fault429, 3, 0, 1)
	if err := e.revoke(resp.Secret); err != nil {
		t.Fatalf("revoke with max_retries=0 under three 429s: %v", err)
	}
	if got := e.fake.Calls()[fakeopenai.OpDeleteServiceAccount]; got != 4 {
		t.Fatalf("%d delete attempts, want 4", got)
	}
	if n := len(e.fake.LiveAccounts()); n != 0 {
		t.Fatalf("%d accounts left", n)
	}
}

func TestRetry_RevokeBudgetIsBounded(t *testing.T) {
	e := newTestEnv(t)
	e.configureRetries(0)
	e.setDeleteRetryFloor(2)
	e.writeRole("app", map[string]interface{}{})
	resp := e.issue("app", nil)

	e.setFault(fakeopenai.OpDeleteServiceAccount, fakeopenai.Fault500, 0, 1, 0)
	err := e.revoke(resp.Secret)
	if err == nil || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("revoke under persistent 500: %v", err)
	}
	if got := e.fake.Calls()[fakeopenai.OpDeleteServiceAccount]; got != 3 {
		t.Fatalf("%d delete attempts, want 3 (floor 2 + 1)", got)
	}
}

func TestRetry_DeleteFloorDefaults(t *testing.T) {
	c := newSDKClient(clientSettings{BaseURL: "https://127.0.0.1/v1", AdminAPIKey: "x", MaxRetries: 2})
	if c.deleteRetries != deleteMinRetries {
		t.Fatalf("delete retries %d, want %d", c.deleteRetries, deleteMinRetries)
	}
	if n := deleteRetries(10, 3); n != 10 {
		t.Fatalf("a higher max_retries must win: %d", n)
	}
}
