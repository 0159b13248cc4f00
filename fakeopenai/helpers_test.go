// Test helpers shared by the fake's tests: a fake on a test server, SDK
// clients, raw requests, a settable clock.

package fakeopenai

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

func newClient(t *testing.T, url, key string, opts ...option.RequestOption) openai.Client {
	t.Helper()
	base := []option.RequestOption{option.WithBaseURL(url + "/v1"), option.WithAdminAPIKey(key)}
	return openai.NewClient(append(base, opts...)...)
}

func startFake(t *testing.T, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	s := New(opts)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	s.FailOnViolations(t)
	return s, srv
}

// testClock is a settable clock for expiry tests.
type testClock struct{ unix atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.unix.Store(1_800_000_000)
	return c
}

func (c *testClock) now() time.Time { return time.Unix(c.unix.Load(), 0) }

func (c *testClock) advance(d time.Duration) { c.unix.Add(int64(d / time.Second)) }

func newSA(name string) openai.AdminOrganizationProjectServiceAccountNewParams {
	return openai.AdminOrganizationProjectServiceAccountNewParams{Name: name}
}

// rawCall sends one request to the fake and decodes the JSON answer.
func rawCall(t *testing.T, h http.Handler, method, path, key, body string) (int, http.Header, map[string]any) {
	t.Helper()
	var rb io.Reader
	if body != "" {
		rb = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rb)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("%s %s: body is not a JSON object: %v", method, path, err)
	}
	return rec.Code, rec.Header(), m
}

func errorOf(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	e, ok := m["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error envelope in %v", m)
	}
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := e[k]; !ok {
			t.Fatalf("error envelope lacks %q: %v", k, e)
		}
	}
	return e
}

// statusOf extracts the HTTP status of an SDK error (0 if none).
func statusOf(err error) int {
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode
	}
	return 0
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

type fakeTB struct {
	cleanups []func()
	errs     []string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

func (f *fakeTB) Errorf(format string, a ...any) { f.errs = append(f.errs, fmt.Sprintf(format, a...)) }

func (f *fakeTB) cleanup() {
	for _, fn := range f.cleanups {
		fn()
	}
}
