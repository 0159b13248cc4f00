package backend

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

func TestBudget_KillsKeysOverBudgetOnTheNextTick(t *testing.T) {
	logs := &syncBuffer{}
	e := newTestEnv(t, withLogs(logs))
	e.configure()
	e.writeRole("small", map[string]interface{}{"max_tokens_per_key": 100})
	e.writeRole("big", map[string]interface{}{"max_tokens_per_key": 100000})
	e.writeRole("free", map[string]interface{}{})

	over, err := e.issueAs("small", "token-greedy")
	if err != nil {
		t.Fatal(err)
	}
	under := e.issue("small", nil)
	bigKeys := e.issueN("big", 3)
	free := e.issue("free", nil)
	id := func(r *logical.Response) string { return r.Data["api_key_id"].(string) }
	sa := func(r *logical.Response) string { return r.Data["service_account_id"].(string) }

	// Exactly at the budget is allowed; one token more is not.
	e.addUsage(fakeopenai.Usage{APIKeyID: id(under), InputTokens: 90, OutputTokens: 10, Requests: 1})
	e.addUsage(fakeopenai.Usage{APIKeyID: id(over), InputTokens: 90, CachedInputTokens: 50, OutputTokens: 10, Requests: 1})
	e.addUsage(fakeopenai.Usage{APIKeyID: id(bigKeys[0]), InputTokens: 5000, OutputTokens: 5000, Requests: 1})
	e.addUsage(fakeopenai.Usage{APIKeyID: id(free), InputTokens: 1 << 30, OutputTokens: 1 << 20, Requests: 1})

	e.fake.ResetCalls()
	e.tick()
	if n := e.fake.Calls()[fakeopenai.OpUsageCompletions]; n != 2 {
		t.Fatalf("%d usage calls in a tick, want one per budgeted role with live keys (2)", n)
	}
	if len(e.liveAccountIDs()) != 6 {
		t.Fatalf("nothing is over budget yet, but accounts were deleted: %v", e.liveAccountIDs())
	}

	// One more model call puts the key over budget; the next tick kills it.
	if s := e.callModel(over.Data["api_key"].(string), "gpt-4o-mini", "one more"); s != 200 {
		t.Fatalf("model call: HTTP %d", s)
	}
	used := time.Now()
	e.fake.ResetCalls()
	e.tick()
	delay := time.Since(used)
	if n := e.fake.Calls()[fakeopenai.OpUsageCompletions]; n != 2 {
		t.Fatalf("%d usage calls in a tick, want 2", n)
	}
	live := e.liveAccountIDs()
	if live[sa(over)] {
		t.Fatal("key over budget still has its account at the fake")
	}
	for _, r := range append([]*logical.Response{under, free}, bigKeys...) {
		if !live[sa(r)] {
			t.Fatalf("key %s under budget (or without one) was deleted", id(r))
		}
	}
	if s := e.callModel(over.Data["api_key"].(string), "gpt-4o-mini", "refused?"); s != 401 {
		t.Fatalf("killed key answered HTTP %d at the fake, want 401", s)
	}
	t.Logf("enforcement: killed %s after the tick that followed the over-budget call (tick took %s; Vault ticks every minute)", id(over), delay)

	rec := e.ledgerRecord(sa(over))
	if rec == nil || rec.RevokedBy != revokedByBudget || rec.RevokedAt == 0 {
		t.Fatalf("ledger record: %+v", rec)
	}
	line := ""
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "max_tokens_per_key") && strings.Contains(l, "[WARN]") {
			line = l
		}
	}
	for _, want := range []string{"role=small", "api_key_id=" + id(over), "display_name=token-greedy"} {
		if !strings.Contains(line, want) {
			t.Fatalf("warning %q lacks %q", line, want)
		}
	}

	// The lease: renewal fails cleanly, revocation succeeds with no call.
	resp, err := e.renew(over.Secret, time.Now(), time.Hour)
	if err == nil || resp != nil || !strings.Contains(err.Error(), "max_tokens_per_key") {
		t.Fatalf("renewal of a budget-killed key: resp %v, err %v", resp, err)
	}
	if k := usageKeys(t, e.mustOK(logical.ReadOperation, "usage/small", nil))[id(over)]; k == nil || k["revoked_by"] != revokedByBudget {
		t.Fatalf("usage/small shows the killed key as %v", k)
	}
	m := string(e.mustOK(logical.ReadOperation, "metrics", nil).Data[logical.HTTPRawBody].([]byte))
	if !strings.Contains(m, `openai_budget_revocations_total{role="small"} 1`) {
		t.Fatalf("metrics lack the budget revocation:\n%s", m)
	}
	e.fake.ResetCalls()
	over.Secret.LeaseID = "openai/creds/small/lease-of-greedy"
	if err := e.revoke(over.Secret); err != nil {
		t.Fatalf("revoke of a budget-killed key: %v", err)
	}
	if calls := e.fake.Calls(); calls[fakeopenai.OpDeleteServiceAccount] != 0 {
		t.Fatalf("revoke called OpenAI: %v", calls)
	}
	if rec := e.ledgerRecord(sa(over)); rec == nil || rec.RevokedBy != revokedByBudget || rec.LeaseID != over.Secret.LeaseID {
		t.Fatalf("after revoke the ledger says %+v, want revoked_by budget", rec)
	}

	// Nothing more to kill: the next tick deletes nothing and asks once
	// per role again.
	e.fake.ResetCalls()
	e.tick()
	if n := e.fake.Calls()[fakeopenai.OpDeleteServiceAccount]; n != 0 {
		t.Fatalf("second tick deleted %d accounts", n)
	}
}

func TestBudget_ReportingLagDelaysEnforcement(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("small", map[string]interface{}{"max_tokens_per_key": 10})
	r := e.issue("small", nil)
	e.fake.SetReportingLag(1500 * time.Millisecond)
	e.addUsage(fakeopenai.Usage{APIKeyID: r.Data["api_key_id"].(string), InputTokens: 50, OutputTokens: 5, Requests: 1})
	e.tick()
	if !e.liveAccountIDs()[r.Data["service_account_id"].(string)] {
		t.Fatal("killed before OpenAI reported the usage")
	}
	time.Sleep(1600 * time.Millisecond)
	e.tick()
	if e.liveAccountIDs()[r.Data["service_account_id"].(string)] {
		t.Fatal("not killed on the first tick after the usage was reported")
	}
}

func TestBudget_NoBudgetNoCall(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("free", map[string]interface{}{})
	e.writeRole("budgeted-but-idle", map[string]interface{}{"max_tokens_per_key": 10})
	e.issueN("free", 3)
	e.fake.ResetCalls()
	e.tick()
	if n := e.fake.Calls()[fakeopenai.OpUsageCompletions]; n != 0 {
		t.Fatalf("%d usage calls without any budgeted live key", n)
	}
}

func TestBudget_FieldBounds(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	for _, v := range []interface{}{-1, maxMaxTokensPerKey + 1, "lots"} {
		e.mustBadRequest(logical.UpdateOperation, "roles/app", map[string]interface{}{"max_tokens_per_key": v}, "max_tokens_per_key")
	}
	if got := e.mustOK(logical.ReadOperation, "roles/app", nil).Data["max_tokens_per_key"]; got != int64(0) {
		t.Fatalf("default max_tokens_per_key %v, want 0", got)
	}
	e.writeRole("app", map[string]interface{}{"max_tokens_per_key": maxMaxTokensPerKey})
	if got := e.mustOK(logical.ReadOperation, "roles/app", nil).Data["max_tokens_per_key"]; got != int64(maxMaxTokensPerKey) {
		t.Fatalf("max_tokens_per_key read back %v", got)
	}
}
