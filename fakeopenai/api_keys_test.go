package fakeopenai

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// keysEnv is a fake with a settable clock, driven by raw requests.
type keysEnv struct {
	t     *testing.T
	s     *Server
	clock *testClock
}

func newKeysEnv(t *testing.T) *keysEnv {
	t.Helper()
	clock := newTestClock()
	s := New(Options{Now: clock.now})
	s.FailOnViolations(t)
	return &keysEnv{t: t, s: s, clock: clock}
}

func (e *keysEnv) admin(method, path, body string) (int, map[string]any) {
	e.t.Helper()
	code, _, m := rawCall(e.t, e.s, method, "/v1/organization/projects/"+ProjectActive+path, e.s.AdminKey(), body)
	return code, m
}

// bare creates an account without a key and returns its id.
func (e *keysEnv) bare() string {
	e.t.Helper()
	code, m := e.admin("POST", "/service_accounts", `{"name":"bare","create_service_account_only":true}`)
	if code != 200 {
		e.t.Fatalf("bare create = %d %v", code, m)
	}
	return m["id"].(string)
}

// key adds a key to account acct and returns its id and value.
func (e *keysEnv) key(acct, body string) (id, value string) {
	e.t.Helper()
	code, m := e.admin("POST", "/service_accounts/"+acct+"/api_keys", body)
	if code != 200 {
		e.t.Fatalf("key create %s = %d %v", body, code, m)
	}
	return m["id"].(string), m["value"].(string)
}

// wantError checks an OpenAI error answer: status, param and a message part.
func (e *keysEnv) wantError(code int, m map[string]any, wantCode int, param, msgPart string) {
	e.t.Helper()
	if code != wantCode {
		e.t.Fatalf("status %d, want %d: %v", code, wantCode, m)
	}
	er := errorOf(e.t, m)
	if param == "" && er["param"] != nil || param != "" && er["param"] != param {
		e.t.Fatalf("param %v, want %q: %v", er["param"], param, er)
	}
	if !strings.Contains(er["message"].(string), msgPart) {
		e.t.Fatalf("message %q lacks %q", er["message"], msgPart)
	}
}

func TestBareAccountHasNoKey(t *testing.T) {
	e := newKeysEnv(t)
	code, m := e.admin("POST", "/service_accounts", `{"name":"bare","create_service_account_only":true}`)
	if code != 200 || m["role"] != "none" || m["api_key"] != nil {
		t.Fatalf("bare create = %d %v", code, m)
	}
	if _, present := m["api_key"]; !present {
		t.Fatal("api_key absent; the spec and SDK have it null")
	}
	id := m["id"].(string)
	live := e.s.LiveAccounts()
	if len(live) != 1 || live[0].ID != id || live[0].KeyID != "" || len(live[0].KeyIDs) != 0 {
		t.Fatalf("live = %+v", live)
	}
	// A bare account has no key, so nothing can expire: the SDK says a
	// non-null expires_in_seconds cannot be used with it.
	code, m = e.admin("POST", "/service_accounts", `{"name":"x","create_service_account_only":true,"expires_in_seconds":60}`)
	e.wantError(code, m, 400, "expires_in_seconds", "create_service_account_only")
	if v := e.s.TakeViolations(); len(v) != 1 {
		t.Fatalf("violations = %q", v)
	}
}

func TestServiceAccountKeyCreate(t *testing.T) {
	e := newKeysEnv(t)
	acct := e.bare()
	code, m := e.admin("POST", "/service_accounts/"+acct+"/api_keys", `{"name":"app","scopes":["api.model.read","api.responses.write"],"expires_in_seconds":600}`)
	if code != 200 || m["object"] != "organization.project.service_account.api_key" || m["name"] != "app" ||
		!strings.HasPrefix(m["value"].(string), "sk-svcacct-") || m["expires_at"].(float64) != m["created_at"].(float64)+600 {
		t.Fatalf("create = %d %v", code, m)
	}
	id := m["id"].(string)
	info, ok := e.s.Key(id)
	if !ok || info.AccountID != acct || info.ProjectID != ProjectActive || !slices.Equal(info.Scopes, []string{"api.model.read", "api.responses.write"}) ||
		info.ExpiresAt != e.clock.now().Unix()+600 || info.Expired {
		t.Fatalf("Key = %+v, %v", info, ok)
	}
	// No name, no scopes, no expiry: the default name, all permissions, never expires.
	id2, _ := e.key(acct, `{}`)
	info2, _ := e.s.Key(id2)
	if info2.Name != defaultKeyName || len(info2.Scopes) != 0 || info2.ExpiresAt != 0 {
		t.Fatalf("default key = %+v", info2)
	}
	if got := e.s.AccountKeyIDs(ProjectActive, acct); !slices.Equal(got, []string{id, id2}) {
		t.Fatalf("AccountKeyIDs = %q", got)
	}
	if live := e.s.LiveAccounts(); live[0].KeyID != id || !slices.Equal(live[0].KeyIDs, []string{id, id2}) {
		t.Fatalf("live = %+v", live)
	}
	// A key on an account that already has its default key works too.
	code, m = e.admin("POST", "/service_accounts", `{"name":"with-default"}`)
	if code != 200 {
		t.Fatal(m)
	}
	e.key(m["id"].(string), `{"scopes":[]}`)
	if c := e.s.Calls()[OpCreateServiceAccountKey]; c != 3 {
		t.Fatalf("calls = %d", c)
	}
}

func TestServiceAccountKeyCreateRefusals(t *testing.T) {
	e := newKeysEnv(t)
	acct := e.bare()
	for _, tc := range []struct {
		body, param, msg string
		violation        bool // a request no correct client sends
	}{
		{`{"nam":"x"}`, "nam", "Unrecognized request argument", true},
		{`{"name":""}`, "name", "non-empty", false},
		{`{"scopes":"api.model.read"}`, "scopes", "array of strings", true},
		{`{"scopes":[""]}`, "scopes", "Invalid scope", true},
		{`{"scopes":["api.model read"]}`, "scopes", "Invalid scope", true},
		{`{"scopes":["api.model.read\n"]}`, "scopes", "Invalid scope", true},
		{`{"scopes":["a","a"]}`, "scopes", "Duplicate scope", true},
		{`{"scopes":["` + strings.Repeat("a", maxScopeLen+1) + `"]}`, "scopes", "Invalid scope", false},
		{`{"expires_in_seconds":0}`, "expires_in_seconds", "between 1 and", true},
		{`{"expires_in_seconds":31536001}`, "expires_in_seconds", "between 1 and", true},
		{`not json`, "", "could not parse", true},
	} {
		code, m := e.admin("POST", "/service_accounts/"+acct+"/api_keys", tc.body)
		e.wantError(code, m, 400, tc.param, tc.msg)
		if v := e.s.TakeViolations(); (len(v) > 0) != tc.violation {
			t.Errorf("%s: violations %q, want some: %v", tc.body, v, tc.violation)
		}
	}
	code, m := e.admin("POST", "/service_accounts/svc_acct_missing/api_keys", `{}`)
	e.wantError(code, m, 404, "", "No such service account")
	code, _, m = rawCall(t, e.s, "POST", "/v1/organization/projects/"+ProjectArchived+"/service_accounts/"+acct+"/api_keys", e.s.AdminKey(), `{}`)
	e.wantError(code, m, 400, "", "archived")
	code, _, m = rawCall(t, e.s, "POST", "/v1/organization/projects/"+ProjectActive+"/service_accounts/"+acct+"/api_keys", "sk-admin-wrong", `{}`)
	e.wantError(code, m, 401, "", "Incorrect API key")
	// A service-account key is no admin key.
	_, value := e.key(acct, `{}`)
	code, _, m = rawCall(t, e.s, "POST", "/v1/organization/projects/"+ProjectActive+"/service_accounts/"+acct+"/api_keys", value, `{}`)
	e.wantError(code, m, 401, "", "Incorrect API key")
	if got := e.s.AccountKeyIDs(ProjectActive, acct); len(got) != 1 {
		t.Fatalf("refusals created keys: %q", got)
	}
}

func TestRejectedScopes(t *testing.T) {
	e := newKeysEnv(t)
	acct := e.bare()
	// By default any well-formed scope is accepted: OpenAI publishes no list.
	id, _ := e.key(acct, `{"scopes":["api.some.future.scope"]}`)
	if !e.s.SetRejectedScopes(ProjectActive, "api.bogus", "api.other") || e.s.SetRejectedScopes("proj_missing", "x") {
		t.Fatal("SetRejectedScopes reports the wrong project existence")
	}
	code, m := e.admin("POST", "/service_accounts/"+acct+"/api_keys", `{"scopes":["api.model.read","api.bogus"]}`)
	e.wantError(code, m, 400, "scopes", "Invalid scopes: api.bogus.")
	code, m = e.admin("POST", "/api_keys/"+id, `{"scopes":["api.other"]}`)
	e.wantError(code, m, 400, "scopes", "Invalid scopes: api.other.")
	if v := e.s.Violations(); len(v) != 0 {
		t.Fatalf("a rejected but well-formed scope is no client bug: %q", v)
	}
	if info, _ := e.s.Key(id); !slices.Equal(info.Scopes, []string{"api.some.future.scope"}) {
		t.Fatalf("a refused update changed the key: %+v", info)
	}
	e.s.SetRejectedScopes(ProjectActive)
	e.key(acct, `{"scopes":["api.bogus"]}`)
}

func TestProjectKeyUpdate(t *testing.T) {
	e := newKeysEnv(t)
	acct := e.bare()
	id, _ := e.key(acct, `{"scopes":["api.model.read"],"expires_in_seconds":600}`)
	e.clock.advance(100 * time.Second)
	code, m := e.admin("POST", "/api_keys/"+id, `{"expires_in_seconds":900}`)
	now := e.clock.now().Unix()
	if code != 200 || m["object"] != "organization.project.api_key" || m["expires_at"].(float64) != float64(now+900) || m["value"] != nil {
		t.Fatalf("update = %d %v", code, m)
	}
	if _, has := m["value"]; has {
		t.Fatal("the update answer carries the key value")
	}
	if info, _ := e.s.Key(id); info.ExpiresAt != now+900 || !slices.Equal(info.Scopes, []string{"api.model.read"}) {
		t.Fatalf("after expiry update: %+v", info)
	}
	// Scopes only: the expiry stays. [] means all permissions.
	code, m = e.admin("POST", "/api_keys/"+id, `{"scopes":[]}`)
	if info, _ := e.s.Key(id); code != 200 || info.ExpiresAt != now+900 || len(info.Scopes) != 0 {
		t.Fatalf("after scopes update: %d %v %+v", code, m, info)
	}
	for _, tc := range []struct{ body, param, msg string }{
		{`{}`, "", "at least one"},
		{`{"expires_in_seconds":null}`, "expires_in_seconds", "cannot be null"},
		{`{"scopes":null}`, "scopes", "cannot be null"},
		{`{"name":"x"}`, "name", "Unrecognized request argument"},
		{`{"expires_in_seconds":0}`, "expires_in_seconds", "between 1 and"},
		{`{"scopes":[" "]}`, "scopes", "Invalid scope"},
	} {
		code, m := e.admin("POST", "/api_keys/"+id, tc.body)
		e.wantError(code, m, 400, tc.param, tc.msg)
		if v := e.s.TakeViolations(); len(v) == 0 {
			t.Errorf("%s: no violation recorded", tc.body)
		}
	}
	// Expired keys cannot be updated.
	e.clock.advance(901 * time.Second)
	code, m = e.admin("POST", "/api_keys/"+id, `{"expires_in_seconds":60}`)
	e.wantError(code, m, 400, "", "expired")
	if info, _ := e.s.Key(id); !info.Expired || info.ExpiresAt != now+900 {
		t.Fatalf("expired key after refused update: %+v", info)
	}
	code, m = e.admin("POST", "/api_keys/key_missing", `{"expires_in_seconds":60}`)
	e.wantError(code, m, 404, "", "No such API key")
	if c := e.s.Calls()[OpUpdateProjectKey]; c != 10 {
		t.Fatalf("update calls = %d", c)
	}
}

func TestProjectKeyGetListDelete(t *testing.T) {
	e := newKeysEnv(t)
	acct := e.bare()
	var ids []string
	for range 3 {
		id, _ := e.key(acct, `{}`)
		ids = append(ids, id)
	}
	code, m := e.admin("GET", "/api_keys/"+ids[0], "")
	owner, _ := m["owner"].(map[string]any)
	sa, _ := owner["service_account"].(map[string]any)
	if code != 200 || m["id"] != ids[0] || owner["type"] != "service_account" || sa["id"] != acct || sa["role"] != "none" ||
		m["last_used_at"] != nil || m["expires_at"] != nil || !strings.Contains(m["redacted_value"].(string), "...") {
		t.Fatalf("get = %d %v", code, m)
	}
	code, m = e.admin("GET", "/api_keys?limit=2", "")
	if data := m["data"].([]any); code != 200 || len(data) != 2 || m["has_more"] != true || m["last_id"] != ids[1] {
		t.Fatalf("list = %d %v", code, m)
	}
	code, m = e.admin("GET", "/api_keys?after="+ids[1], "")
	if data := m["data"].([]any); code != 200 || len(data) != 1 || m["has_more"] != false || m["first_id"] != ids[2] {
		t.Fatalf("list after = %d %v", code, m)
	}
	code, m = e.admin("GET", "/api_keys?owner_project_access=sideways", "")
	e.wantError(code, m, 400, "owner_project_access", "Invalid value")
	if v := e.s.TakeViolations(); len(v) != 1 {
		t.Fatalf("violations = %q", v)
	}

	// Deleting a service account's key leaves the account and its other keys.
	code, m = e.admin("DELETE", "/api_keys/"+ids[1], "")
	if code != 200 || m["deleted"] != true || m["id"] != ids[1] {
		t.Fatalf("delete = %d %v", code, m)
	}
	if got := e.s.AccountKeyIDs(ProjectActive, acct); !slices.Equal(got, []string{ids[0], ids[2]}) {
		t.Fatalf("keys after delete = %q", got)
	}
	code, m = e.admin("DELETE", "/api_keys/"+ids[1], "")
	e.wantError(code, m, 404, "", "No such API key")
	code, m = e.admin("GET", "/api_keys/"+ids[1], "")
	e.wantError(code, m, 404, "", "No such API key")
	// A cursor naming the deleted key still pages.
	code, m = e.admin("GET", "/api_keys?after="+ids[1], "")
	if data := m["data"].([]any); code != 200 || len(data) != 1 {
		t.Fatalf("list after a deleted cursor = %d %v", code, m)
	}
	// Deleting the account deletes its keys.
	e.admin("DELETE", "/service_accounts/"+acct, "")
	if _, ok := e.s.Key(ids[0]); ok || len(e.s.LiveKeys()) != 0 {
		t.Fatalf("keys outlive their account: %+v", e.s.LiveKeys())
	}
	// Another project's key is not found here.
	e.s.AddProject("proj_other", "Other", "active")
	code, _, m = rawCall(t, e.s, "POST", "/v1/organization/projects/proj_other/service_accounts", e.s.AdminKey(), `{"name":"o"}`)
	if code != 200 {
		t.Fatal(m)
	}
	otherKey := m["api_key"].(map[string]any)["id"].(string)
	code, m = e.admin("GET", "/api_keys/"+otherKey, "")
	e.wantError(code, m, 404, "", "No such API key")
	if !e.s.DeleteKey("proj_other", otherKey) || e.s.DeleteKey("proj_other", otherKey) {
		t.Fatal("DeleteKey")
	}
}

func TestKeyCreateFaults(t *testing.T) {
	s, srv := startFake(t, Options{})
	c := newClient(t, srv.URL, s.AdminKey(), option.WithMaxRetries(0))
	ctx := context.Background()
	bare, err := c.Admin.Organization.Projects.ServiceAccounts.New(ctx, ProjectActive, openai.AdminOrganizationProjectServiceAccountNewParams{Name: "b", CreateServiceAccountOnly: openai.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	keys := c.Admin.Organization.Projects.ServiceAccounts.APIKeys
	params := openai.AdminOrganizationProjectServiceAccountAPIKeyNewParams{Scopes: []string{scopeModelRead}}
	fired := make(chan Op, 1)
	// The api_keys create is a fault target like the account create: a
	// lost response creates the key, a 500 does not, a hold delays it.
	s.SetFaults(Faults{Rules: []FaultRule{
		{Ops: []Op{OpCreateServiceAccountKey}, Kind: FaultLostResponse, Count: 1},
		{Ops: []Op{OpCreateServiceAccountKey}, Kind: Fault500, Count: 1},
		{Ops: []Op{OpCreateServiceAccountKey}, Kind: FaultHold, Hold: 50 * time.Millisecond, Count: 1, OnFire: func(op Op) { fired <- op }},
	}})
	if _, err := keys.New(ctx, ProjectActive, bare.ID, params); err == nil || statusOf(err) != 0 {
		t.Fatalf("lost response reached the client: %v", err)
	}
	if got := s.AccountKeyIDs(ProjectActive, bare.ID); len(got) != 1 {
		t.Fatalf("after a lost response: keys %q, want the orphan", got)
	}
	if _, err := keys.New(ctx, ProjectActive, bare.ID, params); statusOf(err) != 500 {
		t.Fatalf("500 fault: %v", err)
	}
	start := time.Now()
	if _, err := keys.New(ctx, ProjectActive, bare.ID, params); err != nil || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("hold fault: %v after %v", err, time.Since(start))
	}
	if op := <-fired; op != OpCreateServiceAccountKey {
		t.Fatalf("OnFire got %q", op)
	}
	if got := s.AccountKeyIDs(ProjectActive, bare.ID); len(got) != 2 {
		t.Fatalf("keys %q, want 2 (the 500 creates none)", got)
	}
	if c := s.Calls()[OpCreateServiceAccountKey]; c != 3 || s.FaultCounts()[FaultLostResponse] != 1 {
		t.Fatalf("calls = %d, faults = %v", c, s.FaultCounts())
	}
}
