package fakeopenai

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
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

	if code, _ := control(t, s, "DELETE", "/_fake/accounts/"+ProjectActive+"/"+id, ""); code != 200 {
		t.Fatalf("delete: %d", code)
	}
	if code, _ := control(t, s, "DELETE", "/_fake/accounts/"+ProjectActive+"/"+id, ""); code != 404 {
		t.Fatalf("second delete: %d", code)
	}
	if n := len(s.LiveAccounts()); n != 1 {
		t.Fatalf("%d live after control delete", n)
	}

	code, body = control(t, s, "GET", "/_fake/admin_keys", "")
	var keys []AdminKeyInfo
	if err := json.Unmarshal(body, &keys); err != nil || code != 200 || len(keys) != 1 || keys[0].ID != s.AdminKeyID() {
		t.Fatalf("admin_keys: %d %s", code, body)
	}
	if strings.Contains(string(body), key) || !strings.HasSuffix(keys[0].RedactedValue, key[len(key)-3:]) {
		t.Fatal("admin_keys must show the redacted value only")
	}

	code, body = control(t, s, "GET", "/_fake/calls", "")
	var calls map[Op]int
	if err := json.Unmarshal(body, &calls); err != nil || code != 200 || calls[OpCreateServiceAccount] != 2 {
		t.Fatalf("calls: %d %s", code, body)
	}
	if code, _ := control(t, s, "DELETE", "/_fake/calls", ""); code != 200 || len(s.Calls()) != 0 {
		t.Fatal("DELETE /_fake/calls did not reset")
	}

	faults := `{"latency":"5ms","rules":[{"ops":["create_service_account"],"kind":"429","count":2,"retry_after":3},{"kind":"hold","rate":0.25,"hold":"1.5s"}]}`
	code, body = control(t, s, "PUT", "/_fake/faults", faults)
	if code != 200 {
		t.Fatalf("put faults: %d %s", code, body)
	}
	f := s.CurrentFaults()
	if f.Latency != 5*time.Millisecond || len(f.Rules) != 2 || f.Rules[0].Kind != Fault429 || f.Rules[0].Count != 2 ||
		f.Rules[0].RetryAfter != 3 || f.Rules[0].Ops[0] != OpCreateServiceAccount || f.Rules[1].Hold != 1500*time.Millisecond || f.Rules[1].Rate != 0.25 {
		t.Fatalf("faults parsed as %+v", f)
	}
	var round Faults
	if _, body := control(t, s, "GET", "/_fake/faults", ""); json.Unmarshal(body, &round) != nil || round.Rules[1].Hold != 1500*time.Millisecond {
		t.Fatalf("faults do not round-trip: %s", body)
	}
	code, hdr, _ := rawCall(t, s, "POST", "/v1/organization/projects/"+ProjectActive+"/service_accounts", key, `{"name":"x"}`)
	if code != 429 || hdr.Get("Retry-After") != "3" {
		t.Fatalf("injected via control: %d", code)
	}
	code, body = control(t, s, "GET", "/_fake/fault_counts", "")
	var counts map[FaultKind]int
	if err := json.Unmarshal(body, &counts); err != nil || counts[Fault429] != 1 {
		t.Fatalf("fault_counts: %d %s", code, body)
	}
	for _, bad := range []string{
		`{"latency":"soon"}`, `{"rules":[{"kind":"explode"}]}`, `{"rules":[{"kind":"500","rate":2}]}`,
		`{"rules":[{"kind":"429","retryAfter":3}]}`, `{"latncy":"5ms"}`, `not json`,
	} {
		if code, _ := control(t, s, "PUT", "/_fake/faults", bad); code != 400 {
			t.Errorf("bad faults %s accepted: %d", bad, code)
		}
	}
	if f := s.CurrentFaults(); len(f.Rules) != 2 {
		t.Fatal("a rejected PUT changed the faults")
	}
	if code, _ := control(t, s, "PUT", "/_fake/faults", `{}`); code != 200 || len(s.CurrentFaults().Rules) != 0 {
		t.Fatal("PUT {} did not heal")
	}

	if code, body := control(t, s, "PUT", "/_fake/projects", `{"id":"proj_new","name":"New","status":"active"}`); code != 200 || !strings.Contains(string(body), `"proj_new"`) {
		t.Fatalf("projects: %d %s", code, body)
	}
	if code, _, _ := rawCall(t, s, "GET", "/v1/organization/projects/proj_new", key, ""); code != 200 {
		t.Fatal("added project not served")
	}
	if code, _ := control(t, s, "PUT", "/_fake/projects", `{"id":"proj_new","status":"deleted"}`); code != 400 {
		t.Fatal("bad status accepted")
	}
	if code, _ := control(t, s, "GET", "/_fake/nothing", ""); code != 404 {
		t.Fatal("unknown control path")
	}
	if code, _ := control(t, s, "POST", "/_fake/accounts", ""); code != http.StatusMethodNotAllowed {
		t.Fatal("wrong control method")
	}
	// Control requests are not API calls.
	if calls := s.Calls(); calls[OpGetProject] != 1 || len(calls) != 2 {
		t.Fatalf("calls = %v", calls)
	}
}
