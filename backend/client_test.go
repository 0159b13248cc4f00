package backend

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

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
