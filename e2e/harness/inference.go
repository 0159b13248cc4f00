package harness

// Calling the fake's inference endpoints (GET /v1/models, POST /v1/responses)
// with an issued key, as an application holding the key would.

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// APIAnswer is the fake's answer to one inference call: the status and the
// body (OpenAI's error shape on a refusal). The fake never echoes a key, and
// the request's key is not part of it.
type APIAnswer struct {
	Status int
	Body   string
}

var inferenceClient = &http.Client{Timeout: 30 * time.Second}

// ListModels calls GET <f.URL>/models with key as the bearer token.
func (f *Fake) ListModels(t testing.TB, key string) APIAnswer {
	t.Helper()
	return f.callWithKey(t, http.MethodGet, "/models", key, "")
}

// CreateResponse calls POST <f.URL>/responses with a minimal request.
func (f *Fake) CreateResponse(t testing.TB, key string) APIAnswer {
	t.Helper()
	return f.callWithKey(t, http.MethodPost, "/responses", key, `{"model":"gpt-4o-mini","input":"Say hello."}`)
}

func (f *Fake) callWithKey(t testing.TB, method, path, key, body string) APIAnswer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.URL+path, rd)
	if err != nil {
		t.Fatalf("building %s %s: %v", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := inferenceClient.Do(req)
	if err != nil {
		// The error names the URL, never the header holding the key.
		t.Fatalf("%s %s at the fake: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	out := string(b)
	if key != "" {
		out = strings.ReplaceAll(out, key, "[REDACTED]")
	}
	return APIAnswer{Status: resp.StatusCode, Body: out}
}
