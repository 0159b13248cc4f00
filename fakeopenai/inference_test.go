package fakeopenai

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// infer calls an inference endpoint with key: "models" or "responses".
func (e *keysEnv) infer(what, key string) (int, map[string]any) {
	e.t.Helper()
	if what == "models" {
		code, _, m := rawCall(e.t, e.s, "GET", "/v1/models", key, "")
		return code, m
	}
	code, _, m := rawCall(e.t, e.s, "POST", "/v1/responses", key, `{"model":"gpt-4o-mini","input":"hello"}`)
	return code, m
}

func TestInferenceScopes(t *testing.T) {
	e := newKeysEnv(t)
	acct := e.bare()
	for _, tc := range []struct {
		scopes            string
		models, responses int
	}{
		{`[]`, 200, 200},
		{`["api.model.read"]`, 200, 401},
		{`["api.responses.write"]`, 401, 200},
		{`["api.model.read","api.responses.write"]`, 200, 200},
		{`["api.all.read"]`, 200, 401},
		{`["api.files.read"]`, 401, 401},
	} {
		_, value := e.key(acct, `{"scopes":`+tc.scopes+`}`)
		for what, want := range map[string]int{"models": tc.models, "responses": tc.responses} {
			code, m := e.infer(what, value)
			if code != want {
				t.Errorf("scopes %s, %s: %d %v, want %d", tc.scopes, what, code, m, want)
				continue
			}
			if code == 401 {
				need := map[string]string{"models": scopeModelRead, "responses": scopeResponsesWrite}[what]
				e.wantError(code, m, 401, "", "Missing scopes: "+need+".")
			}
		}
	}
	// The default key of an ordinary account has all permissions.
	_, _, m := rawCall(t, e.s, "POST", "/v1/organization/projects/"+ProjectActive+"/service_accounts", e.s.AdminKey(), `{"name":"full"}`)
	value := m["api_key"].(map[string]any)["value"].(string)
	if code, m := e.infer("models", value); code != 200 || len(m["data"].([]any)) == 0 {
		t.Fatalf("models = %d %v", code, m)
	}
	code, m := e.infer("responses", value)
	out, _ := m["output"].([]any)
	if code != 200 || m["object"] != "response" || m["status"] != "completed" || m["model"] != "gpt-4o-mini" || len(out) != 1 {
		t.Fatalf("responses = %d %v", code, m)
	}
	// Narrowing a key by update takes effect at once.
	keyID := e.s.LiveAccounts()[1].KeyID
	e.admin("POST", "/api_keys/"+keyID, `{"scopes":["api.model.read"]}`)
	if code, _ := e.infer("responses", value); code != 401 {
		t.Fatalf("narrowed key still writes: %d", code)
	}
	if info, _ := e.s.Key(keyID); info.LastUsedAt != e.clock.now().Unix() {
		t.Fatalf("last used not recorded: %+v", info)
	}
	if c := e.s.Calls(); c[OpListModels] != 7 || c[OpCreateResponse] != 8 {
		t.Fatalf("calls = %v", c)
	}
}

func TestInferenceRefusesDeadKeys(t *testing.T) {
	e := newKeysEnv(t)
	acct := e.bare()
	invalid := func(what, key, why string) {
		t.Helper()
		code, m := e.infer(what, key)
		if code != 401 || errorOf(t, m)["code"] != "invalid_api_key" {
			t.Fatalf("%s (%s) = %d %v, want 401 invalid_api_key", why, what, code, m)
		}
	}
	// Expired: refused from its expiry on, and an update cannot revive it.
	idExp, expiring := e.key(acct, `{"expires_in_seconds":60}`)
	if code, _ := e.infer("models", expiring); code != 200 {
		t.Fatal("fresh key refused")
	}
	e.clock.advance(59 * time.Second)
	if code, _ := e.infer("models", expiring); code != 200 {
		t.Fatal("key refused before its expiry")
	}
	e.admin("POST", "/api_keys/"+idExp, `{"expires_in_seconds":60}`) // now expires 60 s from here
	e.clock.advance(59 * time.Second)
	if code, _ := e.infer("responses", expiring); code != 200 {
		t.Fatal("extended key refused before its new expiry")
	}
	e.clock.advance(time.Second)
	invalid("models", expiring, "expired")
	invalid("responses", expiring, "expired")

	// Deleted on its own: refused; the account's other key still works.
	idDel, deleted := e.key(acct, `{}`)
	_, other := e.key(acct, `{}`)
	e.admin("DELETE", "/api_keys/"+idDel, "")
	invalid("models", deleted, "key deleted")
	if code, _ := e.infer("models", other); code != 200 {
		t.Fatal("deleting one key broke another")
	}
	// Revoked (account deleted): every key of the account is refused.
	e.admin("DELETE", "/service_accounts/"+acct, "")
	invalid("models", other, "account deleted")
	// Archiving the project removes its accounts and keys.
	acct2 := e.bare()
	_, k2 := e.key(acct2, `{}`)
	e.s.AddProject(ProjectActive, "Fake active project", "archived")
	invalid("responses", k2, "project archived")

	// An admin key is not an API key for inference, and a made-up one is nothing.
	invalid("models", e.s.AdminKey(), "admin key")
	invalid("responses", "sk-svcacct-made-up", "unknown key")
}

func TestInferenceRequestChecks(t *testing.T) {
	e := newKeysEnv(t)
	acct := e.bare()
	_, value := e.key(acct, `{}`)
	post := func(body string) (int, map[string]any) {
		t.Helper()
		code, _, m := rawCall(t, e.s, "POST", "/v1/responses", value, body)
		return code, m
	}
	for _, tc := range []struct{ body, param, msg string }{
		{`{"input":"hi"}`, "model", "'model' is required"},
		{`{"model":"gpt-4o-mini"}`, "input", "'input' is required"},
		{`{"model":"gpt-4o-mini","input":""}`, "input", "'input' is required"},
		{`{"model":"gpt-4o-mini","input":7}`, "input", "'input' is required"},
		{`{"model":"gpt-4o-mini","input":"hi","stream":true}`, "stream", "Unrecognized request argument"},
	} {
		code, m := post(tc.body)
		e.wantError(code, m, 400, tc.param, tc.msg)
	}
	e.s.TakeViolations() // most of those break the contract on purpose
	if code, m := post(`{"model":"gpt-4o-mini","input":[{"role":"user","content":"hi"}]}`); code != 200 {
		t.Fatalf("array input = %d %v", code, m)
	}
	// No key, a wrong scheme, a mismatched organization.
	code, _, m := rawCall(t, e.s, "GET", "/v1/models", "", "")
	e.wantError(code, m, 401, "", "didn't provide an API key")
	req := httptest.NewRequest("GET", "/v1/models", nil)
	req.Header.Set("Authorization", "Basic "+value)
	rec := httptest.NewRecorder()
	e.s.ServeHTTP(rec, req)
	if rec.Code != 401 {
		t.Fatalf("Basic auth = %d", rec.Code)
	}
	if v := e.s.TakeViolations(); len(v) != 2 {
		t.Fatalf("violations for missing bearer auth = %q", v)
	}
	req = httptest.NewRequest("GET", "/v1/models", nil)
	req.Header.Set("Authorization", "Bearer "+value)
	req.Header.Set("OpenAI-Organization", "org-other")
	rec = httptest.NewRecorder()
	e.s.ServeHTTP(rec, req)
	if rec.Code != 401 || !strings.Contains(rec.Body.String(), "mismatched_organization") {
		t.Fatalf("other organization = %d %s", rec.Code, rec.Body)
	}
	// Methods other than the served ones.
	code, _, m = rawCall(t, e.s, "POST", "/v1/models", value, "")
	if code != 405 {
		t.Fatalf("POST /v1/models = %d %v", code, m)
	}
}
