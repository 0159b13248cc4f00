package backend

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// Defect 5 of issue 9: a create's WAL entry stays whenever any attempt may
// have created the account, whatever the last answer; a 401 is the admin
// key's fault and says so.

// scriptedCreates answers the n-th create attempt (from 1) with script(n):
// "created-500" lets the fake create the account and then answers 500,
// "401"/"429" refuse without creating, "" passes through.
func (e *testEnv) scriptedCreates(script func(n int) string) {
	e.t.Helper()
	var attempts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/service_accounts") {
			e.fake.ServeHTTP(w, r)
			return
		}
		switch script(int(attempts.Add(1))) {
		case "created-500":
			e.fake.ServeHTTP(httptest.NewRecorder(), r)
			writeAPIError(w, http.StatusInternalServerError, "server_error", "The server had an error")
		case "401":
			writeAPIError(w, http.StatusUnauthorized, "invalid_api_key", "Incorrect API key provided")
		case "429":
			w.Header().Set("Retry-After", "1")
			writeAPIError(w, http.StatusTooManyRequests, "rate_limit_exceeded", "Rate limit reached")
		default:
			e.fake.ServeHTTP(w, r)
		}
	}))
	e.t.Cleanup(srv.Close)
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{"base_url": srv.URL + "/v1"})
}

func writeAPIError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"error":{"message":"` + msg + `","type":"error","code":"` + code + `"}}`))
}

func TestIssue_KeepsWALWhenAnEarlierAttemptMayHaveCreated(t *testing.T) {
	e := newTestEnv(t)
	e.configure() // max_retries 2
	e.writeRole("app", map[string]interface{}{})
	e.scriptedCreates(func(n int) string {
		if n == 1 {
			return "created-500"
		}
		return "401" // say a rotation deleted the old admin key meanwhile
	})
	resp, err := e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.UpdateOperation, Path: "creds/app", Storage: e.storage, MountPoint: "openai/",
	})
	if resp != nil && resp.IsError() {
		t.Fatalf("a rejected admin key came back as a 400 blaming the requester: %v", resp.Error())
	}
	if err == nil {
		t.Fatal("issue succeeded")
	}
	for _, want := range []string{"admin key", "HTTP 401", "admin_api_key", "openai/config"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not mention %q", err, want)
		}
	}
	e.assertNoSecret("error", err.Error())
	if len(e.fake.LiveAccounts()) != 1 {
		t.Fatal("the first attempt should have created an account")
	}
	if n := e.walCount(); n != 1 {
		t.Fatalf("%d WAL entries after a 500-then-401 create; the created account is covered by nothing", n)
	}
	e.rollbackNow()
	if n := len(e.fake.LiveAccounts()); n != 0 {
		t.Fatalf("rollback left %d accounts", n)
	}
}

// Refused attempts only (429, then 401): nothing was created, so the entry
// goes at once and no rollback (no project listing) follows.
func TestIssue_RefusedAttemptsLeaveNoWAL(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	e.scriptedCreates(func(n int) string {
		if n == 1 {
			return "429"
		}
		return "401"
	})
	if _, err := e.do(logical.UpdateOperation, "creds/app", nil); err == nil || !strings.Contains(err.Error(), "admin key") {
		t.Fatalf("want an admin-key error, got %v", err)
	}
	if n := e.walCount(); n != 0 {
		t.Fatalf("%d WAL entries for a create whose every attempt was refused", n)
	}
}

// The same rule for admin-key creation (rotation keeps its entry on it).
func TestClient_CreateAdminKeyReportsWhetherAnAttemptMayHaveCreated(t *testing.T) {
	for _, c := range []struct {
		first string
		want  bool
	}{{"500", true}, {"drop", true}, {"429", false}} {
		fake := fakeopenai.New(fakeopenai.Options{})
		fake.FailOnViolations(t)
		var attempts atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && attempts.Add(1) == 1 {
				switch c.first {
				case "500":
					writeAPIError(w, http.StatusInternalServerError, "server_error", "boom")
				case "429":
					w.Header().Set("Retry-After", "1")
					writeAPIError(w, http.StatusTooManyRequests, "rate_limit_exceeded", "slow down")
				case "drop":
					c, _, _ := http.NewResponseController(w).Hijack()
					_ = c.Close()
				}
				return
			}
			if r.Method == http.MethodPost {
				writeAPIError(w, http.StatusUnauthorized, "invalid_api_key", "Incorrect API key provided")
				return
			}
			fake.ServeHTTP(w, r)
		}))
		client := newSDKClient(clientSettings{BaseURL: srv.URL + "/v1", AdminAPIKey: fake.AdminKey(), RequestTimeout: 5e9, MaxRetries: 2})
		_, _, err := client.CreateAdminAPIKey(t.Context(), "k", 0)
		srv.Close()
		if err == nil || !isAuthError(err) {
			t.Fatalf("%s then 401: want the 401, got %v", c.first, err)
		}
		if got := mayHaveCreated(err); got != c.want {
			t.Fatalf("%s then 401: mayHaveCreated = %v, want %v", c.first, got, c.want)
		}
	}
}
