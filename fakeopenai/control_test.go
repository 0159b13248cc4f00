package fakeopenai

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func control(t *testing.T, s *Server, method, path, body string) (int, []byte) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q", method, path, ct)
	}
	return rec.Code, rec.Body.Bytes()
}

func TestControlEndpoints(t *testing.T) {
	s := New(Options{})
	key := s.AdminKey()
	_, _, m := rawCall(t, s, "POST", "/v1/organization/projects/"+ProjectActive+"/service_accounts", key, `{"name":"one","expires_in_seconds":60}`)
	id := m["id"].(string)
	rawCall(t, s, "POST", "/v1/organization/projects/"+ProjectActive+"/service_accounts", key, `{"name":"two"}`)

	code, body := control(t, s, "GET", "/_fake/accounts", "")
	var accts []Account
	if err := json.Unmarshal(body, &accts); err != nil || code != 200 || len(accts) != 2 || accts[0].ID != id ||
		accts[0].KeyExpiresAt != accts[0].CreatedAt+60 || !strings.HasPrefix(accts[0].KeyID, "key_") {
		t.Fatalf("accounts: %d %s", code, body)
	}
	if strings.Contains(string(body), "sk-") {
		t.Fatal("/_fake/accounts exposes a key value")
	}

	code, body = control(t, s, "GET", "/_fake/keys", "")
	var keys []KeyInfo
	if err := json.Unmarshal(body, &keys); err != nil || code != 200 || len(keys) != 2 || keys[0].ID != accts[0].KeyID ||
		keys[0].AccountID != id || keys[0].ExpiresAt != accts[0].KeyExpiresAt || keys[0].Scopes == nil {
		t.Fatalf("keys: %d %s", code, body)
	}
	if strings.Contains(string(body), "sk-") {
		t.Fatal("/_fake/keys exposes a key value")
	}

	// No violation yet: an empty array, not null.
	if code, body := control(t, s, "GET", "/_fake/violations", ""); code != 200 || strings.TrimSpace(string(body)) != "[]" {
		t.Fatalf("violations: %d %s", code, body)
	}
	rawCall(t, s, "GET", "/v1/organization/projects/"+ProjectActive+"/service_accounts?page_size=1", key, "")
	code, body = control(t, s, "GET", "/_fake/violations", "")
	var violations []string
	if err := json.Unmarshal(body, &violations); err != nil || code != 200 || len(violations) != 1 || !strings.Contains(violations[0], "page_size") {
		t.Fatalf("violations: %d %s", code, body)
	}

	if code, _ := control(t, s, "GET", "/_fake/nothing", ""); code != 404 {
		t.Fatal("unknown control path")
	}
	// Only what the binary's users read is served.
	for _, gone := range []string{"/_fake/faults", "/_fake/calls", "/_fake/admin_keys", "/_fake/projects", "/_fake/accounts/" + ProjectActive + "/" + id} {
		if code, _ := control(t, s, "GET", gone, ""); code != 404 {
			t.Errorf("GET %s = %d, want 404", gone, code)
		}
	}
	if code, _ := control(t, s, "POST", "/_fake/accounts", ""); code != http.StatusMethodNotAllowed {
		t.Fatal("wrong control method")
	}
	// Control requests are not API calls.
	if calls := s.Calls(); calls[OpCreateServiceAccount] != 2 || calls[OpListServiceAccounts] != 1 || len(calls) != 2 {
		t.Fatalf("calls = %v", calls)
	}
}
