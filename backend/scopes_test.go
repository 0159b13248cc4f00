package backend

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// Role scopes, their probe at role write, scoped issuing in two calls, and
// per-request narrowing.

// totalCalls is every upstream request since the last ResetCalls.
func (e *testEnv) totalCalls() int {
	n := 0
	for _, c := range e.fake.Calls() {
		n += c
	}
	return n
}

// assertNoRole fails if a role was stored under name.
func (e *testEnv) assertNoRole(name string) {
	e.t.Helper()
	if r, err := getRole(context.Background(), e.storage, name); err != nil || r != nil {
		e.t.Fatalf("role %q stored after a refused write (%v)", name, err)
	}
}

func TestScopes_MalformedAreRefusedBeforeAnyCall(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	long := strings.Repeat("a", maxScopeLength+1)
	many := make([]string, maxScopes+1)
	for i := range many {
		many[i] = "api.scope" + string(rune('a'+i%26)) + string(rune('a'+i/26))
	}
	for _, c := range []struct {
		scopes interface{}
		want   string
	}{
		{"api.model.read,", "scopes: entry 2 is empty"},
		{[]interface{}{"api.model.read", "api model"}, "whitespace"},
		{[]interface{}{"api.model.read\tx"}, "whitespace"},
		{[]interface{}{"api.modèle.read"}, "visible ASCII"},
		{[]interface{}{long}, "longer than 64"},
		{strings.Join(many, ","), "at most 32 scopes"},
	} {
		e.fake.ResetCalls()
		e.mustBadRequest(logical.UpdateOperation, "roles/scoped", map[string]interface{}{
			"project_id": fakeopenai.ProjectActive, "scopes": c.scopes,
		}, c.want)
		e.assertNoRole("scoped")
		if n := e.totalCalls(); n != 0 {
			t.Fatalf("scopes %v: %d upstream calls for a malformed list, want 0", c.scopes, n)
		}
	}
}

func TestScopes_ProbedAtWriteStoredSortedAndProbeDeleted(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.fake.ResetCalls()
	e.writeRole("scoped", map[string]interface{}{"scopes": "api.model.read, api.all.read,api.model.read"})

	calls := e.fake.Calls()
	if calls[fakeopenai.OpCreateServiceAccount] != 1 || calls[fakeopenai.OpCreateServiceAccountKey] != 1 || calls[fakeopenai.OpDeleteServiceAccount] != 1 {
		t.Fatalf("probe calls %v, want one bare create, one key create, one delete", calls)
	}
	if live := e.fake.LiveAccounts(); len(live) != 0 {
		t.Fatalf("probe left accounts %+v", live)
	}
	if e.walCount() != 0 || e.recordCount() != 0 {
		t.Fatalf("probe left %d WAL entries and %d records", e.walCount(), e.recordCount())
	}
	resp := e.mustOK(logical.ReadOperation, "roles/scoped", nil)
	if got := resp.Data["scopes"].([]string); !slices.Equal(got, []string{"api.all.read", "api.model.read"}) {
		t.Fatalf("stored scopes %v, want de-duplicated and sorted", got)
	}

	// Unchanged scopes are not probed again; a rewrite that changes
	// something else makes no call.
	e.fake.ResetCalls()
	e.writeRole("scoped", map[string]interface{}{"scopes": "api.model.read,api.all.read", "ttl": "5m"})
	if n := e.totalCalls(); n != 0 {
		t.Fatalf("rewriting the same scopes made %d calls (%v)", n, e.fake.Calls())
	}
	// Another project may refuse what this one accepted: moving a scoped
	// role probes again, there.
	e.fake.AddProject("proj_other", "Other project", "active")
	e.fake.SetRejectedScopes("proj_other", "api.all.read")
	e.mustBadRequest(logical.UpdateOperation, "roles/scoped", map[string]interface{}{"project_id": "proj_other"}, "api.all.read")
	if got := e.mustOK(logical.ReadOperation, "roles/scoped", nil).Data["project_id"]; got != fakeopenai.ProjectActive {
		t.Fatalf("project_id after a refused move: %v", got)
	}
	e.fake.ResetCalls()
	// Removing them makes no call.
	e.writeRole("scoped", map[string]interface{}{"scopes": ""})
	if n := e.totalCalls(); n != 0 {
		t.Fatalf("clearing scopes made %d calls", n)
	}
	if got := e.mustOK(logical.ReadOperation, "roles/scoped", nil).Data["scopes"].([]string); len(got) != 0 {
		t.Fatalf("scopes after clearing: %v", got)
	}
}

func TestScopes_RejectedByOpenAIIs400AndProbeDeleted(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.fake.SetRejectedScopes(fakeopenai.ProjectActive, "api.bogus.write")
	e.fake.ResetCalls()
	e.mustBadRequest(logical.UpdateOperation, "roles/scoped", map[string]interface{}{
		"project_id": fakeopenai.ProjectActive, "scopes": "api.model.read,api.bogus.write",
	}, "api.bogus.write")
	resp, _ := e.do(logical.UpdateOperation, "roles/scoped", map[string]interface{}{
		"project_id": fakeopenai.ProjectActive, "scopes": "api.bogus.write",
	})
	if msg := resp.Error().Error(); !strings.HasPrefix(msg, "scopes: OpenAI refused") || !strings.Contains(msg, "Invalid scopes") {
		t.Fatalf("error %q does not name the field and carry OpenAI's message", msg)
	}
	e.assertNoRole("scoped")
	if live := e.fake.LiveAccounts(); len(live) != 0 {
		t.Fatalf("the probe account of a refused scope was left behind: %+v", live)
	}
	if n := e.fake.Calls()[fakeopenai.OpDeleteServiceAccount]; n != 2 {
		t.Fatalf("%d deletes for two refused probes, want 2", n)
	}
	if e.walCount() != 0 {
		t.Fatalf("a settled probe left %d WAL entries", e.walCount())
	}

	// An existing role keeps its scopes when a change is refused.
	e.writeRole("scoped", map[string]interface{}{"scopes": "api.model.read"})
	e.mustBadRequest(logical.UpdateOperation, "roles/scoped", map[string]interface{}{"scopes": "api.bogus.write"}, "api.bogus.write")
	if got := e.mustOK(logical.ReadOperation, "roles/scoped", nil).Data["scopes"].([]string); !slices.Equal(got, []string{"api.model.read"}) {
		t.Fatalf("scopes after a refused change: %v", got)
	}
}

// A probe whose delete fails leaves its WAL entry, and rollback deletes the
// account: a probe never leaks an account, even when OpenAI falters.
func TestScopes_ProbeWhoseDeleteFailsIsRolledBack(t *testing.T) {
	e := newTestEnv(t)
	e.configureRetries(0)
	e.setDeleteRetryFloor(0)
	e.fake.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{{Ops: []fakeopenai.Op{fakeopenai.OpDeleteServiceAccount}, Kind: fakeopenai.Fault500, Count: 1}}})
	e.writeRole("scoped", map[string]interface{}{"scopes": "api.model.read"})
	if len(e.fake.LiveAccounts()) != 1 || e.walCount() != 1 {
		t.Fatalf("after a failed probe delete: %d accounts, %d WAL entries; want 1 and 1", len(e.fake.LiveAccounts()), e.walCount())
	}
	e.rollbackNow()
	if live := e.fake.LiveAccounts(); len(live) != 0 || e.walCount() != 0 {
		t.Fatalf("rollback left %d accounts and %d WAL entries", len(live), e.walCount())
	}
}

func TestScopes_IssueIsTwoCallsWithoutScopesOne(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("scoped", map[string]interface{}{"scopes": "api.model.read,api.all.read", "ttl": "10m", "max_ttl": "1h"})
	e.writeRole("plain", map[string]interface{}{"ttl": "10m", "max_ttl": "1h"})

	e.fake.ResetCalls()
	resp := e.issue("scoped", nil)
	calls := e.fake.Calls()
	if e.totalCalls() != 2 || calls[fakeopenai.OpCreateServiceAccount] != 1 || calls[fakeopenai.OpCreateServiceAccountKey] != 1 {
		t.Fatalf("scoped issue made calls %v, want a bare create and a key create", calls)
	}
	if got := resp.Data["scopes"].([]string); !slices.Equal(got, []string{"api.all.read", "api.model.read"}) {
		t.Fatalf("response scopes %v", got)
	}
	key, ok := e.fake.Key(resp.Data["api_key_id"].(string))
	if !ok || key.AccountID != saID(resp) || !slices.Equal(key.Scopes, []string{"api.all.read", "api.model.read"}) {
		t.Fatalf("key at OpenAI %+v (found %t)", key, ok)
	}
	if ids := e.fake.AccountKeyIDs(fakeopenai.ProjectActive, saID(resp)); len(ids) != 1 {
		t.Fatalf("scoped account holds keys %v, want exactly the issued one", ids)
	}
	// The key follows its lease: 10m plus the 5m grace.
	if got := key.ExpiresAt - key.CreatedAt; got < 895 || got > 905 {
		t.Fatalf("scoped key expires %ds after creation, want ~900", got)
	}
	if e.walCount() != 0 {
		t.Fatalf("%d WAL entries after a clean scoped issue", e.walCount())
	}
	if r := e.record(saID(resp)); r == nil || r.KeyExpiresAt != key.ExpiresAt {
		t.Fatalf("record %+v does not carry the key's expiry %d", r, key.ExpiresAt)
	}

	scoped := resp
	e.fake.ResetCalls()
	resp = e.issue("plain", nil)
	if calls := e.fake.Calls(); e.totalCalls() != 1 || calls[fakeopenai.OpCreateServiceAccount] != 1 {
		t.Fatalf("unscoped issue made calls %v, want one create", calls)
	}
	if got := resp.Data["scopes"].([]string); len(got) != 0 {
		t.Fatalf("unscoped response scopes %v", got)
	}

	// Revoking deletes the account and with it the scoped key.
	if err := e.revoke(scoped.Secret); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.fake.Key(scoped.Data["api_key_id"].(string)); ok {
		t.Fatal("scoped key outlived its revoked lease")
	}
}

func TestScopes_Narrowing(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("scoped", map[string]interface{}{"scopes": "api.model.read,api.responses.write,api.files.read"})
	e.writeRole("plain", map[string]interface{}{})

	resp := e.issue("scoped", map[string]interface{}{"scopes": "api.model.read"})
	if got := resp.Data["scopes"].([]string); !slices.Equal(got, []string{"api.model.read"}) {
		t.Fatalf("narrowed response scopes %v", got)
	}
	if key, _ := e.fake.Key(resp.Data["api_key_id"].(string)); !slices.Equal(key.Scopes, []string{"api.model.read"}) {
		t.Fatalf("narrowed key at OpenAI has scopes %v", key.Scopes)
	}
	// A read passes its query parameters too.
	rresp := e.mustOK(logical.ReadOperation, "creds/scoped", map[string]interface{}{"scopes": "api.files.read,api.model.read"})
	if got := rresp.Data["scopes"].([]string); !slices.Equal(got, []string{"api.files.read", "api.model.read"}) {
		t.Fatalf("narrowed read scopes %v", got)
	}

	before := len(e.fake.LiveAccounts())
	e.fake.ResetCalls()
	e.mustBadRequest(logical.UpdateOperation, "creds/scoped", map[string]interface{}{"scopes": "api.model.read,api.all.read,api.x.write"},
		"scopes: outside role \"scoped\"'s scopes (api.files.read,api.model.read,api.responses.write): api.all.read,api.x.write")
	e.mustBadRequest(logical.UpdateOperation, "creds/scoped", map[string]interface{}{"scopes": ""}, "scopes: must name at least one")
	e.mustBadRequest(logical.UpdateOperation, "creds/scoped", map[string]interface{}{"scopes": "api model"}, "scopes: entry 1")
	e.mustBadRequest(logical.UpdateOperation, "creds/plain", map[string]interface{}{"scopes": "api.model.read"}, "scopes: role \"plain\" has no scopes")
	if n := e.totalCalls(); n != 0 || len(e.fake.LiveAccounts()) != before {
		t.Fatalf("refused narrowing made %d calls (%v)", n, e.fake.Calls())
	}
	if n := e.recordCount(); n != before {
		t.Fatalf("refused narrowing left records: %d, want %d", n, before)
	}
}

// The key create fails for good after the bare account exists: the issue
// deletes the account itself at once, leaves no WAL entry, and answers
// with OpenAI's refusal.
func TestScopes_KeyCreateRefusedDeletesBareAccountAtOnce(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("scoped", map[string]interface{}{"scopes": "api.model.read"})
	e.fake.ResetCalls()
	e.fake.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{{Ops: []fakeopenai.Op{fakeopenai.OpCreateServiceAccountKey}, Kind: fakeopenai.Fault400, Count: 1}}})
	e.mustBadRequest(logical.UpdateOperation, "creds/scoped", nil, "create service account key")
	if live := e.fake.LiveAccounts(); len(live) != 0 {
		t.Fatalf("bare account left after the key create was refused: %+v", live)
	}
	if n := e.fake.Calls()[fakeopenai.OpDeleteServiceAccount]; n != 1 {
		t.Fatalf("%d deletes, want the issue's own", n)
	}
	if e.walCount() != 0 || e.recordCount() != 0 {
		t.Fatalf("%d WAL entries, %d records after a settled failure", e.walCount(), e.recordCount())
	}
	// The place under the caps is free again: a later issue works.
	e.issue("scoped", nil)
}

// An ambiguous key create (every attempt 500): the account is deleted at
// once; the WAL entry goes with it when the account create itself was clean.
func TestScopes_KeyCreateAmbiguousDeletesBareAccount(t *testing.T) {
	e := newTestEnv(t)
	e.configureRetries(1)
	e.writeRole("scoped", map[string]interface{}{"scopes": "api.model.read"})
	e.fake.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{{Ops: []fakeopenai.Op{fakeopenai.OpCreateServiceAccountKey}, Kind: fakeopenai.FaultLostResponse, Count: 2}}})
	if _, err := e.issueAs("scoped", "token-tester"); err == nil {
		t.Fatal("issue succeeded although every key create lost its answer")
	}
	if live := e.fake.LiveAccounts(); len(live) != 0 {
		t.Fatalf("account (and the keys the lost creates made) left behind: %+v", live)
	}
	if n := len(e.fake.LiveKeys()); n != 0 {
		t.Fatalf("%d keys left behind", n)
	}
	if e.walCount() != 0 {
		t.Fatalf("%d WAL entries after the account was deleted", e.walCount())
	}
}

// crashBetweenCreates is a client whose key create never comes back and
// whose deletes fail, as if the process died right after the bare account
// was created.
type crashBetweenCreates struct{ adminClient }

var errCrashed = errors.New("process died")

func (crashBetweenCreates) CreateServiceAccountKey(context.Context, string, string, keyParams) (*createdKey, error) {
	return nil, errCrashed
}

func (crashBetweenCreates) DeleteServiceAccount(context.Context, string, string) error {
	return errCrashed
}

// A crash between the two creates leaves a bare account and the WAL entry;
// a restarted backend's rollback deletes the account.
func TestScopes_CrashBetweenCreatesIsRolledBack(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("scoped", map[string]interface{}{"scopes": "api.model.read"})
	e.b.newClient = func(s clientSettings) adminClient { return crashBetweenCreates{newSDKClient(s)} }
	e.b.resetClient()
	if _, err := e.issueAs("scoped", "token-tester"); !errors.Is(err, errCrashed) {
		t.Fatalf("issue: %v, want the crash", err)
	}
	if len(e.fake.LiveAccounts()) != 1 || e.walCount() != 1 {
		t.Fatalf("after the crash: %d accounts, %d WAL entries; want the bare account and its entry", len(e.fake.LiveAccounts()), e.walCount())
	}

	// A new process on the same storage.
	conf := logical.TestBackendConfig()
	conf.StorageView = e.storage
	conf.System = &logical.StaticSystemView{DefaultLeaseTTLVal: testDefaultLeaseTTL, MaxLeaseTTLVal: testMaxLeaseTTL}
	raw, err := Factory(context.Background(), conf)
	if err != nil {
		t.Fatal(err)
	}
	e.b = raw.(*backend)
	e.rollbackNow()
	if live := e.fake.LiveAccounts(); len(live) != 0 {
		t.Fatalf("rollback left %+v", live)
	}
	if e.walCount() != 0 || e.recordCount() != 0 {
		t.Fatalf("rollback left %d WAL entries, %d records", e.walCount(), e.recordCount())
	}
}

// keyedBareAccounts answers a bare create as an OpenAI that ignored
// create_service_account_only would: with a key.
type keyedBareAccounts struct{ adminClient }

func (c keyedBareAccounts) CreateBareServiceAccount(ctx context.Context, projectID, name string) (*createdAccount, error) {
	a, err := c.adminClient.CreateBareServiceAccount(ctx, projectID, name)
	if a != nil {
		a.UnexpectedKeyID = "key_unasked"
	}
	return a, err
}

// An account that comes with a key nobody asked for (no scopes, no expiry)
// is never issued: the issue fails and the account is deleted.
func TestScopes_BareAccountWithAKeyIsNeverIssued(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("scoped", map[string]interface{}{"scopes": "api.model.read"})
	e.b.newClient = func(s clientSettings) adminClient { return keyedBareAccounts{newSDKClient(s)} }
	e.b.resetClient()
	_, err := e.issueAs("scoped", "token-tester")
	if err == nil || !strings.Contains(err.Error(), "although create_service_account_only was set") {
		t.Fatalf("issue: %v", err)
	}
	if live := e.fake.LiveAccounts(); len(live) != 0 {
		t.Fatalf("account left: %+v", live)
	}
	e.rollbackNow()
	if e.walCount() != 0 || e.recordCount() != 0 {
		t.Fatalf("%d WAL entries, %d records left", e.walCount(), e.recordCount())
	}
}
