package backend

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

const (
	testDefaultLeaseTTL = time.Hour
	testMaxLeaseTTL     = 24 * time.Hour
)

// testEnv is a backend wired to a fake Admin API over real HTTP.
type testEnv struct {
	t       *testing.T
	b       *backend
	storage logical.Storage
	fake    *fakeopenai.Server
	url     string
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	fake := fakeopenai.New(fakeopenai.Options{})
	fake.FailOnViolations(t)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)

	conf := logical.TestBackendConfig()
	conf.StorageView = &logical.InmemStorage{}
	conf.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Error, Output: testLogWriter{t}})
	conf.System = &logical.StaticSystemView{DefaultLeaseTTLVal: testDefaultLeaseTTL, MaxLeaseTTLVal: testMaxLeaseTTL}
	raw, err := Factory(context.Background(), conf)
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{t: t, b: raw.(*backend), storage: conf.StorageView, fake: fake, url: srv.URL + "/v1"}
}

type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (e *testEnv) do(op logical.Operation, path string, data map[string]interface{}) (*logical.Response, error) {
	e.t.Helper()
	return e.b.HandleRequest(context.Background(), &logical.Request{
		Operation:     op,
		Path:          path,
		Data:          data,
		Storage:       e.storage,
		DisplayName:   "token-tester",
		MountAccessor: "openai_test",
	})
}

// mustOK fails the test on an error or an error response.
func (e *testEnv) mustOK(op logical.Operation, path string, data map[string]interface{}) *logical.Response {
	e.t.Helper()
	resp, err := e.do(op, path, data)
	if err != nil {
		e.t.Fatalf("%s %s: %v", op, path, err)
	}
	if resp != nil && resp.IsError() {
		e.t.Fatalf("%s %s: error response: %v", op, path, resp.Error())
	}
	return resp
}

// mustBadRequest asserts a 400-class error response mentioning want.
func (e *testEnv) mustBadRequest(op logical.Operation, path string, data map[string]interface{}, want string) {
	e.t.Helper()
	resp, err := e.do(op, path, data)
	if err != nil {
		e.t.Fatalf("%s %s: want 400 mentioning %q, got internal error: %v", op, path, want, err)
	}
	if resp == nil || !resp.IsError() {
		e.t.Fatalf("%s %s: want 400 mentioning %q, got %#v", op, path, want, resp)
	}
	if msg := resp.Error().Error(); !strings.Contains(msg, want) {
		e.t.Fatalf("%s %s: error %q does not mention %q", op, path, msg, want)
	}
}

func (e *testEnv) configure() {
	e.t.Helper()
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{
		"admin_api_key": e.fake.AdminKey(),
		"base_url":      e.url,
		"max_retries":   2,
	})
}

func (e *testEnv) writeRole(name string, data map[string]interface{}) {
	e.t.Helper()
	if _, ok := data["project_id"]; !ok {
		data["project_id"] = fakeopenai.ProjectActive
	}
	e.mustOK(logical.UpdateOperation, "roles/"+name, data)
}

func (e *testEnv) liveAccountIDs() map[string]bool {
	ids := map[string]bool{}
	for _, a := range e.fake.LiveAccounts() {
		ids[a.ID] = true
	}
	return ids
}

func (e *testEnv) walCount() int {
	e.t.Helper()
	keys, err := e.storage.List(context.Background(), "wal/")
	if err != nil {
		e.t.Fatal(err)
	}
	return len(keys)
}

// assertNoSecret fails if s contains either the admin key or any issued key.
func (e *testEnv) assertNoSecret(where, s string, issued ...string) {
	e.t.Helper()
	if strings.Contains(s, e.fake.AdminKey()) {
		e.t.Fatalf("%s contains the admin key", where)
	}
	for _, k := range issued {
		if k != "" && strings.Contains(s, k) {
			e.t.Fatalf("%s contains an issued key", where)
		}
	}
}

func TestBackend_FactoryReportsVersionAndSealWrap(t *testing.T) {
	e := newTestEnv(t)
	if e.b.RunningVersion != Version {
		t.Fatalf("RunningVersion = %q, want %q", e.b.RunningVersion, Version)
	}
	special := e.b.SpecialPaths()
	if strings.Join(special.SealWrapStorage, ",") != "config,roles/" {
		t.Fatalf("SealWrapStorage = %v", special.SealWrapStorage)
	}
	if strings.Join(special.LocalStorage, ",") != "wal/,accounts/,tidy/" {
		t.Fatalf("LocalStorage = %v", special.LocalStorage)
	}
}

func TestBackend_HelpOnEveryPath(t *testing.T) {
	e := newTestEnv(t)
	for _, p := range e.b.Paths {
		if strings.TrimSpace(p.HelpSynopsis) == "" || strings.TrimSpace(p.HelpDescription) == "" {
			t.Errorf("path %q lacks help text", p.Pattern)
		}
		for name, f := range p.Fields {
			if strings.TrimSpace(f.Description) == "" {
				t.Errorf("field %q of %q lacks a description", name, p.Pattern)
			}
		}
	}
	resp, err := e.do(logical.HelpOperation, "creds/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	if help, _ := resp.Data["help"].(string); !strings.Contains(help, "service account") {
		t.Fatalf("path-help creds/x = %q", help)
	}
}

func TestBackend_WALRollbackMinAgeFromEnv(t *testing.T) {
	t.Setenv(walRollbackMinAgeEnv, "3s")
	if got := walRollbackMinAge(); got != 3*time.Second {
		t.Fatalf("got %s", got)
	}
	t.Setenv(walRollbackMinAgeEnv, "nonsense")
	if got := walRollbackMinAge(); got != defaultWALRollbackMinAge {
		t.Fatalf("bad value should keep the default, got %s", got)
	}
}
