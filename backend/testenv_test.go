package backend

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// The one test environment of the backend's tests: a backend wired to a
// fake Admin API over real HTTP, built by newTestEnv with options, and the
// helpers every test file shares.

const (
	testDefaultLeaseTTL = time.Hour
	testMaxLeaseTTL     = 24 * time.Hour
)

// testEnv is a backend wired to a fake Admin API over real HTTP.
type testEnv struct {
	t       testing.TB
	b       *backend
	storage logical.Storage
	fake    *fakeopenai.Server
	url     string
}

type testEnvConfig struct {
	fake   fakeopenai.Options
	wrap   func(http.Handler) http.Handler
	logs   *syncBuffer
	system logical.SystemView
	quiet  bool
}

// testEnvOption changes how newTestEnv builds the environment.
type testEnvOption func(*testEnvConfig)

// withLogs captures every log line, at trace level, in buf (by default
// errors go to the test's log).
func withLogs(buf *syncBuffer) testEnvOption { return func(c *testEnvConfig) { c.logs = buf } }

// withHandler serves wrap(fake) in the fake's place.
func withHandler(wrap func(http.Handler) http.Handler) testEnvOption {
	return func(c *testEnvConfig) { c.wrap = wrap }
}

// quiet drops every log line (fuzz targets log nothing per input).
func quiet() testEnvOption { return func(c *testEnvConfig) { c.quiet = true } }

// withFake builds the fake with opts.
func withFake(opts fakeopenai.Options) testEnvOption { return func(c *testEnvConfig) { c.fake = opts } }

// withSystemView answers the backend's system calls with sys.
func withSystemView(sys logical.SystemView) testEnvOption {
	return func(c *testEnvConfig) { c.system = sys }
}

// newTestEnv builds a backend against a fresh fake that fails the test at
// cleanup on a contract violation. t may be a *testing.F for a fuzz target
// built once (not per input).
func newTestEnv(t testing.TB, opts ...testEnvOption) *testEnv {
	t.Helper()
	c := testEnvConfig{system: &logical.StaticSystemView{DefaultLeaseTTLVal: testDefaultLeaseTTL, MaxLeaseTTLVal: testMaxLeaseTTL}}
	for _, o := range opts {
		o(&c)
	}
	fake := fakeopenai.New(c.fake)
	fake.FailOnViolations(t)
	var h http.Handler = fake
	if c.wrap != nil {
		h = c.wrap(fake)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	conf := logical.TestBackendConfig()
	conf.StorageView = &logical.InmemStorage{}
	conf.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Error, Output: testLogWriter{t}})
	switch {
	case c.logs != nil:
		conf.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: c.logs})
	case c.quiet:
		conf.Logger = hclog.NewNullLogger()
	}
	conf.System = c.system
	raw, err := Factory(context.Background(), conf)
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{t: t, b: raw.(*backend), storage: conf.StorageView, fake: fake, url: srv.URL + "/v1"}
}

type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
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

// walCount counts WAL entries once the background deletes of committed
// issues' entries have run (wal_deleter.go).
func (e *testEnv) walCount() int {
	e.t.Helper()
	e.b.walDeleter.settle(10 * time.Second)
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

// record returns the account's live record: nil when there is none or it
// is revoked (ledger only, ledger.go). ledgerRecord returns either.
func (e *testEnv) record(id string) *accountRecord {
	e.t.Helper()
	r := e.ledgerRecord(id)
	if r != nil && r.revoked() {
		return nil
	}
	return r
}

func (e *testEnv) ledgerRecord(id string) *accountRecord {
	e.t.Helper()
	r, err := getAccountRecord(context.Background(), e.storage, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// recordCount counts live (not revoked) records.
func (e *testEnv) recordCount() int {
	e.t.Helper()
	ids, err := listAccountIDs(context.Background(), e.storage)
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, id := range ids {
		if e.record(id) != nil {
			n++
		}
	}
	return n
}

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

func (e *testEnv) issueAs(role, displayName string) (*logical.Response, error) {
	e.t.Helper()
	resp, err := e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.UpdateOperation, Path: "creds/" + role, Storage: e.storage,
		DisplayName: displayName, MountAccessor: "openai_test",
	})
	if err == nil && resp != nil && resp.IsError() {
		err = resp.Error()
	}
	return resp, err
}

func (e *testEnv) issue(role string, data map[string]interface{}) *logical.Response {
	e.t.Helper()
	resp := e.mustOK(logical.UpdateOperation, "creds/"+role, data)
	if resp == nil || resp.Secret == nil {
		e.t.Fatalf("issue %s: no secret in response", role)
	}
	return resp
}

func (e *testEnv) renew(secret *logical.Secret, issued time.Time, increment time.Duration) (*logical.Response, error) {
	s := *secret
	s.IssueTime = issued
	s.Increment = increment
	return e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.RenewOperation, Storage: e.storage, Secret: &s})
}

func (e *testEnv) revoke(secret *logical.Secret) error {
	e.t.Helper()
	resp, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.RevokeOperation, Storage: e.storage, Secret: secret})
	if err == nil && resp != nil && resp.IsError() {
		err = resp.Error()
	}
	return err
}

func (e *testEnv) rollbackNow() {
	e.t.Helper()
	resp, err := e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.RollbackOperation, Storage: e.storage, Data: map[string]interface{}{"immediate": true},
	})
	if err != nil {
		e.t.Fatalf("rollback: %v", err)
	}
	if resp != nil && resp.IsError() {
		e.t.Fatalf("rollback: %v", resp.Error())
	}
}

// configureDefaults writes config as an operator would, leaving max_retries
// and retry_budget at their defaults.
func (e *testEnv) configureDefaults(extra map[string]interface{}) {
	e.t.Helper()
	data := map[string]interface{}{"admin_api_key": e.fake.AdminKey(), "base_url": e.url}
	for k, v := range extra {
		data[k] = v
	}
	e.mustOK(logical.UpdateOperation, "config", data)
}

// setDeleteRetryFloor makes later clients retry deletes at least n times
// (instead of deleteMinRetries), so failure cases run in seconds.
func (e *testEnv) setDeleteRetryFloor(n int) {
	e.b.newClient = func(s clientSettings) adminClient {
		c := newSDKClient(s)
		c.deleteRetries = deleteRetries(s.MaxRetries, n)
		return c
	}
	e.b.resetClient()
}

func (e *testEnv) configureRetries(maxRetries int) {
	e.t.Helper()
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{
		"admin_api_key": e.fake.AdminKey(), "base_url": e.url, "max_retries": maxRetries,
	})
}

func (e *testEnv) setFault(op fakeopenai.Op, kind fakeopenai.FaultKind, count int, rate float64, retryAfter int) {
	e.fake.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{{
		Ops: []fakeopenai.Op{op}, Kind: kind, Count: count, Rate: rate, RetryAfter: retryAfter,
	}}})
	e.fake.ResetCalls()
}

// otherOrg is a second fake that accepts the same admin key but holds none of
// the first fake's accounts: a config pointed at it sees nothing of theirs.
func (e *testEnv) otherOrg() (*fakeopenai.Server, string) {
	e.t.Helper()
	other := fakeopenai.New(fakeopenai.Options{AdminKey: e.fake.AdminKey()})
	other.FailOnViolations(e.t)
	srv := httptest.NewServer(other)
	e.t.Cleanup(srv.Close)
	return other, srv.URL + "/v1"
}

// pointConfigAt rewrites the stored base_url behind the engine's back, as a
// forced config write would.
func (e *testEnv) pointConfigAt(baseURL string) {
	e.t.Helper()
	cfg := e.storedConfig()
	cfg.BaseURL = baseURL
	if err := putConfig(context.Background(), e.storage, cfg); err != nil {
		e.t.Fatal(err)
	}
	e.b.resetClient()
}

func (e *testEnv) adminKeyIDs() []string {
	var ids []string
	for _, k := range e.fake.LiveAdminKeys() {
		ids = append(ids, k.ID)
	}
	return ids
}

func (e *testEnv) storedConfig() *openaiConfig {
	e.t.Helper()
	cfg, err := getConfig(context.Background(), e.storage)
	if err != nil || cfg == nil {
		e.t.Fatalf("config: %v", err)
	}
	return cfg
}

func (e *testEnv) rotate() (*logical.Response, error) {
	return e.do(logical.UpdateOperation, "config/rotate-root", nil)
}

// assertOneWorkingAdminKey checks the end state every rotation must reach:
// OpenAI holds exactly one admin key, and it is the one config holds.
func (e *testEnv) assertOneWorkingAdminKey() {
	e.t.Helper()
	ids := e.adminKeyIDs()
	cfg := e.storedConfig()
	if len(ids) != 1 || ids[0] != cfg.AdminAPIKeyID {
		e.t.Fatalf("admin keys at OpenAI %v, config holds %s", ids, cfg.AdminAPIKeyID)
	}
	if _, err := newSDKClient(cfg.clientSettings()).GetAdminAPIKey(context.Background(), cfg.AdminAPIKeyID); err != nil {
		e.t.Fatalf("stored key does not authenticate: %v", err)
	}
}

// withSystem re-runs Setup with sys and a logger writing to the returned buffer.
func (e *testEnv) withSystem(sys logical.SystemView) *syncBuffer {
	e.t.Helper()
	logs := &syncBuffer{}
	logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: logs})
	if err := e.b.Backend.Setup(context.Background(), &logical.BackendConfig{System: sys, Logger: logger, StorageView: e.storage}); err != nil {
		e.t.Fatal(err)
	}
	return logs
}

func (e *testEnv) tick() {
	e.t.Helper()
	if err := e.b.periodicFunc(context.Background(), &logical.Request{Storage: e.storage}); err != nil {
		e.t.Fatalf("periodic: %v", err)
	}
}

// ageKey makes the stored key look as if a fraction of its lifetime were
// left (it still works at the fake): lifetime 10h, expiring in left.
func (e *testEnv) ageKey(left time.Duration) {
	e.t.Helper()
	cfg := e.storedConfig()
	now := time.Now()
	cfg.AdminAPIKeyExpiresAt = now.Add(left).Unix()
	cfg.AdminAPIKeyCreatedAt = now.Add(left - 10*time.Hour).Unix()
	if err := putConfig(context.Background(), e.storage, cfg); err != nil {
		e.t.Fatal(err)
	}
}

// expiringAdminKey creates, at the fake, an admin key that expires in life.
func (e *testEnv) expiringAdminKey(life time.Duration) (id, value string) {
	e.t.Helper()
	c := newSDKClient(clientSettings{BaseURL: e.url, AdminAPIKey: e.fake.AdminKey(), RequestTimeout: 10 * time.Second, RetryBudget: time.Second})
	k, v, err := c.CreateAdminAPIKey(context.Background(), "operator-made", int64(life.Seconds()))
	if err != nil {
		e.t.Fatal(err)
	}
	return k.ID, v
}

// ageRecord moves a record's times back by d, as if issued d earlier.
func (e *testEnv) ageRecord(id string, d time.Duration) {
	e.t.Helper()
	r := e.record(id)
	if r == nil {
		e.t.Fatalf("no record for %s", id)
	}
	s := int64(d.Seconds())
	r.CreatedAt -= s
	r.ExpiresAt -= s
	if r.KeyExpiresAt > 0 {
		r.KeyExpiresAt -= s
	}
	if err := e.b.putRecord(context.Background(), e.storage, r); err != nil {
		e.t.Fatal(err)
	}
}

func (e *testEnv) issueN(role string, n int) []*logical.Response {
	out := make([]*logical.Response, n)
	for i := range out {
		out[i] = e.issue(role, nil)
	}
	return out
}

func (e *testEnv) tidy(data map[string]interface{}) map[string]interface{} {
	e.t.Helper()
	resp := e.mustOK(logical.UpdateOperation, "tidy", data)
	if resp == nil || resp.Data == nil {
		e.t.Fatal("tidy returned no report")
	}
	return resp.Data
}

// refuseWithEcho makes op answer 403 with a message carrying upstreamEcho
// (403: refused at once, no retries to wait out).
func (e *testEnv) refuseWithEcho(ops ...fakeopenai.Op) {
	e.fake.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{
		{Ops: ops, Kind: fakeopenai.Fault403, Rate: 1, Message: "Incorrect API key provided: " + upstreamEcho},
	}})
}

func writeAPIError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"error":{"message":"` + msg + `","type":"error","code":"` + code + `"}}`))
}

// staticSystem is the test's SystemView under the backend's replication-state
// cache (replication_state_cache.go), for tests that change its values.
func (e *testEnv) staticSystem() *logical.StaticSystemView {
	e.t.Helper()
	var sys logical.SystemView = e.b.Backend.System()
	if c, ok := sys.(*replicationStateCache); ok {
		sys = c.SystemView
	}
	static, ok := sys.(*logical.StaticSystemView)
	if !ok {
		e.t.Fatalf("the backend's SystemView is %T, not a StaticSystemView", e.b.Backend.System())
	}
	return static
}

// setReplicationState makes the node's replication state st at once, as a
// node gets when Vault sets the mount up anew in its new role.
func (e *testEnv) setReplicationState(st consts.ReplicationState) {
	e.t.Helper()
	e.staticSystem().ReplicationStateVal = st
	if c, ok := e.b.Backend.System().(*replicationStateCache); ok {
		c.mu.Lock()
		c.at = time.Time{}
		c.mu.Unlock()
	}
}
