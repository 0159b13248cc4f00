package fakeopenai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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
func (c *testClock) now() time.Time          { return time.Unix(c.unix.Load(), 0) }
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

func TestCreateGetDeleteLifecycle(t *testing.T) {
	s, srv := startFake(t, Options{})
	c := newClient(t, srv.URL, s.AdminKey())
	ctx := context.Background()
	acct, err := c.Admin.Organization.Projects.ServiceAccounts.New(ctx, ProjectActive, openai.AdminOrganizationProjectServiceAccountNewParams{Name: "lease-1", ExpiresInSeconds: openai.Int(3600)})
	if err != nil {
		t.Fatal(err)
	}
	live := s.LiveAccounts()
	if len(live) != 1 || live[0].ID != acct.ID || live[0].ProjectID != ProjectActive || live[0].Name != "lease-1" ||
		live[0].KeyID != acct.APIKey.ID || live[0].KeyExpiresAt != acct.APIKey.ExpiresAt || live[0].CreatedAt != acct.CreatedAt {
		t.Fatalf("live = %+v", live)
	}
	if _, err := c.Admin.Organization.Projects.ServiceAccounts.Delete(ctx, ProjectActive, acct.ID); err != nil {
		t.Fatal(err)
	}
	if n := len(s.LiveAccounts()); n != 0 {
		t.Fatalf("%d accounts left after delete", n)
	}
	_, err = c.Admin.Organization.Projects.ServiceAccounts.Delete(ctx, ProjectActive, acct.ID)
	if statusOf(err) != http.StatusNotFound {
		t.Fatalf("second delete: %v", err)
	}
	calls := s.Calls()
	if calls[OpCreateServiceAccount] != 1 || calls[OpDeleteServiceAccount] != 2 {
		t.Fatalf("calls = %v", calls)
	}
	s.ResetCalls()
	if len(s.Calls()) != 0 {
		t.Fatal("ResetCalls left counts")
	}
}

func TestPagingAcrossManyAccounts(t *testing.T) {
	s, srv := startFake(t, Options{})
	c := newClient(t, srv.URL, s.AdminKey())
	ctx := context.Background()
	const n = 250
	var ids []string
	for i := range n {
		a, err := c.Admin.Organization.Projects.ServiceAccounts.New(ctx, ProjectActive, newSA(fmt.Sprintf("acct-%03d", i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID)
	}
	// Another project's accounts must not leak into the list.
	s.AddProject("proj_other", "Other", "active")
	if _, err := c.Admin.Organization.Projects.ServiceAccounts.New(ctx, "proj_other", newSA("elsewhere")); err != nil {
		t.Fatal(err)
	}

	// Manual paging, limit 100: 100 + 100 + 50, creation order, has_more right.
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		params := openai.AdminOrganizationProjectServiceAccountListParams{Limit: openai.Int(100)}
		if after != "" {
			params.After = openai.String(after)
		}
		page, err := c.Admin.Organization.Projects.ServiceAccounts.List(ctx, ProjectActive, params)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range page.Data {
			got = append(got, a.ID)
		}
		if len(page.Data) > 0 && page.LastID != page.Data[len(page.Data)-1].ID {
			t.Fatalf("last_id %s is not the last element", page.LastID)
		}
		if !page.HasMore {
			if pages != 2 || len(page.Data) != 50 {
				t.Fatalf("ended after %d pages with %d items", pages+1, len(page.Data))
			}
			break
		}
		after = page.LastID
	}
	if strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Fatalf("paged %d ids, not the %d created in order", len(got), len(ids))
	}

	// Default limit is 20; limit above 100 is refused.
	page, err := c.Admin.Organization.Projects.ServiceAccounts.List(ctx, ProjectActive, openai.AdminOrganizationProjectServiceAccountListParams{})
	if err != nil || len(page.Data) != 20 || !page.HasMore {
		t.Fatalf("default page: %d items, has_more %v, %v", len(page.Data), page.HasMore, err)
	}
	_, err = c.Admin.Organization.Projects.ServiceAccounts.List(ctx, ProjectActive, openai.AdminOrganizationProjectServiceAccountListParams{Limit: openai.Int(101)})
	if statusOf(err) != http.StatusBadRequest {
		t.Fatalf("limit 101: %v", err)
	}

	// Delete every other account (enough to trigger tombstone compaction);
	// a cursor naming a deleted account still continues after it.
	for i := 0; i < n; i += 2 {
		if !s.DeleteAccount(ProjectActive, ids[i]) {
			t.Fatalf("DeleteAccount %d failed", i)
		}
	}
	var rest []string
	iter := c.Admin.Organization.Projects.ServiceAccounts.ListAutoPaging(ctx, ProjectActive, openai.AdminOrganizationProjectServiceAccountListParams{Limit: openai.Int(7), After: openai.String(ids[100])})
	for iter.Next() {
		rest = append(rest, iter.Current().ID)
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := 101; i < n; i += 2 {
		want = append(want, ids[i])
	}
	if strings.Join(rest, ",") != strings.Join(want, ",") {
		t.Fatalf("after deleted cursor: got %d ids, want %d", len(rest), len(want))
	}
	_, err = c.Admin.Organization.Projects.ServiceAccounts.List(ctx, ProjectActive, openai.AdminOrganizationProjectServiceAccountListParams{After: openai.String("svc_acct_never")})
	if statusOf(err) != http.StatusBadRequest {
		t.Fatalf("unknown cursor: %v", err)
	}
	if got := len(s.LiveAccounts()); got != n/2+1 {
		t.Fatalf("LiveAccounts = %d, want %d", got, n/2+1)
	}
}

// TestKeyExpiryKeepsAccount: OpenAI deletes an expired key, not its
// account, so the account stays live (and listed) with its expiry recorded.
func TestKeyExpiryKeepsAccount(t *testing.T) {
	clock := newTestClock()
	s, srv := startFake(t, Options{Now: clock.now})
	c := newClient(t, srv.URL, s.AdminKey())
	ctx := context.Background()
	short, err := c.Admin.Organization.Projects.ServiceAccounts.New(ctx, ProjectActive, openai.AdminOrganizationProjectServiceAccountNewParams{Name: "short", ExpiresInSeconds: openai.Int(60)})
	if err != nil {
		t.Fatal(err)
	}
	long, err := c.Admin.Organization.Projects.ServiceAccounts.New(ctx, ProjectActive, newSA("forever"))
	if err != nil {
		t.Fatal(err)
	}
	if long.JSON.APIKey.Valid() && long.APIKey.ExpiresAt != 0 {
		t.Fatalf("key without expiry has expires_at %d", long.APIKey.ExpiresAt)
	}
	clock.advance(61 * time.Second)
	live := s.LiveAccounts()
	if len(live) != 2 || live[0].ID != short.ID || live[0].KeyExpiresAt != short.CreatedAt+60 || live[1].KeyExpiresAt != 0 {
		t.Fatalf("live = %+v", live)
	}
	page, err := c.Admin.Organization.Projects.ServiceAccounts.List(ctx, ProjectActive, openai.AdminOrganizationProjectServiceAccountListParams{})
	if err != nil || len(page.Data) != 2 || page.Data[0].ID != short.ID {
		t.Fatalf("account with expired key not listed: %v", err)
	}
}

func TestAuth(t *testing.T) {
	clock := newTestClock()
	s := New(Options{AdminKey: "sk-admin-seeded-test-value", Now: clock.now})
	if s.AdminKey() != "sk-admin-seeded-test-value" || !strings.HasPrefix(s.AdminKeyID(), "key_") {
		t.Fatal("seeded key not as given")
	}
	path := "/v1/organization/projects/" + ProjectActive
	for name, key := range map[string]string{"missing": "", "wrong": "sk-admin-wrong", "service account key": "sk-svcacct-x"} {
		code, _, m := rawCall(t, s, "GET", path, key, "")
		e := errorOf(t, m)
		if code != http.StatusUnauthorized {
			t.Fatalf("%s key: status %d", name, code)
		}
		if name != "missing" && e["code"] != "invalid_api_key" {
			t.Fatalf("%s key: code %v", name, e["code"])
		}
	}
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("Authorization", "Basic "+s.AdminKey())
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("non-Bearer scheme: %d", rec.Code)
	}
	// The scheme is spelt as OpenAI documents it; other casings are refused
	// (OpenAI's leniency there is unconfirmed).
	req = httptest.NewRequest("GET", path, nil)
	req.Header.Set("Authorization", "bearer "+s.AdminKey())
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("lowercase bearer scheme: %d, want 401", rec.Code)
	}
	// OpenAI-Organization must name the fake's organization when present.
	for org, want := range map[string]int{"": 200, OrganizationID: 200, "org-other": 401} {
		req = httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer "+s.AdminKey())
		if org != "" {
			req.Header.Set("OpenAI-Organization", org)
		}
		rec = httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Fatalf("OpenAI-Organization %q: %d, want %d", org, rec.Code, want)
		}
		if want == 401 && !strings.Contains(rec.Body.String(), "mismatched_organization") {
			t.Fatalf("OpenAI-Organization %q: %s, want code mismatched_organization", org, rec.Body.String())
		}
	}
	if o := New(Options{OrganizationID: "org-other"}); func() int {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer "+o.AdminKey())
		req.Header.Set("OpenAI-Organization", "org-other")
		rec := httptest.NewRecorder()
		o.ServeHTTP(rec, req)
		return rec.Code
	}() != 200 {
		t.Fatal("Options.OrganizationID not honoured")
	}

	extra := s.AddAdminKey("sk-admin-extra-test-value")
	if code, _, _ := rawCall(t, s, "GET", path, "sk-admin-extra-test-value", ""); code != http.StatusOK {
		t.Fatalf("added key: %d", code)
	}

	// A key created with an expiry stops authenticating when it passes.
	code, _, m := rawCall(t, s, "POST", "/v1/organization/admin_api_keys", s.AdminKey(), `{"name":"short","expires_in_seconds":10}`)
	if code != http.StatusOK {
		t.Fatalf("create: %d %v", code, m)
	}
	val, id := m["value"].(string), m["id"].(string)
	if code, _, _ := rawCall(t, s, "GET", path, val, ""); code != http.StatusOK {
		t.Fatalf("new key: %d", code)
	}
	clock.advance(11 * time.Second)
	if code, _, _ := rawCall(t, s, "GET", path, val, ""); code != http.StatusUnauthorized {
		t.Fatalf("expired key: %d", code)
	}
	for _, k := range s.LiveAdminKeys() {
		if k.ID == id {
			t.Fatal("expired key still listed as live")
		}
	}
	if got := len(s.LiveAdminKeys()); got != 2 {
		t.Fatalf("live admin keys = %d, want 2 (seeded and %s)", got, extra)
	}
}

func TestDeletedAdminKeyStopsWorking(t *testing.T) {
	s, srv := startFake(t, Options{})
	ctx := context.Background()
	old := newClient(t, srv.URL, s.AdminKey(), option.WithMaxRetries(0))
	created, err := old.Admin.Organization.AdminAPIKeys.New(ctx, openai.AdminOrganizationAdminAPIKeyNewParams{Name: "next"})
	if err != nil {
		t.Fatal(err)
	}
	next := newClient(t, srv.URL, created.Value, option.WithMaxRetries(0))
	if _, err := next.Admin.Organization.Projects.Get(ctx, ProjectActive); err != nil {
		t.Fatalf("new key does not work at once: %v", err)
	}
	// Rotation: the new key deletes the old one, which stops at once.
	if _, err := next.Admin.Organization.AdminAPIKeys.Delete(ctx, s.AdminKeyID()); err != nil {
		t.Fatal(err)
	}
	_, err = old.Admin.Organization.Projects.Get(ctx, ProjectActive)
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnauthorized || apiErr.Code != "invalid_api_key" {
		t.Fatalf("deleted key: %v", err)
	}
	keys := s.LiveAdminKeys()
	if len(keys) != 1 || keys[0].ID != created.ID || keys[0].RedactedValue != created.RedactedValue {
		t.Fatalf("live keys = %+v", keys)
	}
	// A key may delete itself.
	if _, err := next.Admin.Organization.AdminAPIKeys.Delete(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := next.Admin.Organization.Projects.Get(ctx, ProjectActive); statusOf(err) != http.StatusUnauthorized {
		t.Fatalf("self-deleted key: %v", err)
	}
}

func TestValidation(t *testing.T) {
	s := New(Options{})
	key := s.AdminKey()
	saPath := "/v1/organization/projects/" + ProjectActive + "/service_accounts"
	cases := []struct {
		name, method, path, body string
		status                   int
		param                    any
	}{
		{"no name", "POST", saPath, `{}`, 400, "name"},
		{"empty name", "POST", saPath, `{"name":"  "}`, 400, "name"},
		{"name not a string", "POST", saPath, `{"name":5}`, 400, "name"},
		{"expiry zero", "POST", saPath, `{"name":"a","expires_in_seconds":0}`, 400, "expires_in_seconds"},
		{"expiry too long", "POST", saPath, `{"name":"a","expires_in_seconds":31536001}`, 400, "expires_in_seconds"},
		{"expiry fractional", "POST", saPath, `{"name":"a","expires_in_seconds":1.5}`, 400, "expires_in_seconds"},
		{"expiry a string", "POST", saPath, `{"name":"a","expires_in_seconds":"60"}`, 400, "expires_in_seconds"},
		{"expiry max", "POST", saPath, `{"name":"a","expires_in_seconds":31536000}`, 200, nil},
		{"expiry null", "POST", saPath, `{"name":"a","expires_in_seconds":null}`, 200, nil},
		// Strict where OpenAI is: an unrecognized argument is refused, so a
		// misspelt expiry cannot yield a key that never expires.
		{"misspelt expiry", "POST", saPath, `{"name":"a","expires_in":60}`, 400, "expires_in"},
		{"unknown field", "POST", saPath, `{"name":"a","role":"owner"}`, 400, "role"},
		{"expiry with account only", "POST", saPath, `{"name":"a","create_service_account_only":true,"expires_in_seconds":60}`, 400, "expires_in_seconds"},
		{"account only, null expiry", "POST", saPath, `{"name":"a","create_service_account_only":true,"expires_in_seconds":null}`, 200, nil},
		{"name at the bound", "POST", saPath, `{"name":"` + strings.Repeat("n", maxNameLen) + `"}`, 200, nil},
		{"name over the bound", "POST", saPath, `{"name":"` + strings.Repeat("n", maxNameLen+1) + `"}`, 400, "name"},
		{"admin key unknown field", "POST", "/v1/organization/admin_api_keys", `{"name":"k","scopes":[]}`, 400, "scopes"},
		{"not JSON", "POST", saPath, `name=a`, 400, nil},
		{"JSON array", "POST", saPath, `[]`, 400, nil},
		{"archived project", "POST", "/v1/organization/projects/" + ProjectArchived + "/service_accounts", `{"name":"a"}`, 400, nil},
		{"unknown project", "POST", "/v1/organization/projects/proj_nope/service_accounts", `{"name":"a"}`, 404, nil},
		{"archived delete", "DELETE", "/v1/organization/projects/" + ProjectArchived + "/service_accounts/svc_acct_x", "", 400, nil},
		{"unknown account", "DELETE", saPath + "/svc_acct_nope", "", 404, nil},
		{"admin key no name", "POST", "/v1/organization/admin_api_keys", `{"expires_in_seconds":5}`, 400, "name"},
		{"admin key expiry", "POST", "/v1/organization/admin_api_keys", `{"name":"k","expires_in_seconds":-1}`, 400, "expires_in_seconds"},
		{"admin key order", "GET", "/v1/organization/admin_api_keys?order=sideways", "", 400, "order"},
		{"limit zero", "GET", saPath + "?limit=0", "", 400, "limit"},
		{"limit junk", "GET", saPath + "?limit=x", "", 400, "limit"},
		{"unknown admin key", "DELETE", "/v1/organization/admin_api_keys/key_nope", "", 404, nil},
		{"unknown route", "GET", "/v1/organization/users", "", 404, nil},
		{"trailing slash", "GET", "/v1/organization/projects/", "", 404, nil},
		{"outside /v1", "GET", "/organization/projects", "", 404, nil},
		{"wrong method", "PATCH", saPath, "", 405, nil},
		{"wrong method on item", "POST", "/v1/organization/admin_api_keys/key_x", "", 405, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, m := rawCall(t, s, tc.method, tc.path, key, tc.body)
			if code != tc.status {
				t.Fatalf("status %d, want %d (%v)", code, tc.status, m)
			}
			if tc.status == 200 {
				return
			}
			if e := errorOf(t, m); e["param"] != tc.param {
				t.Fatalf("param %v, want %v", e["param"], tc.param)
			}
		})
	}
	// Only the four valid creates made accounts.
	if got := len(s.LiveAccounts()); got != 4 {
		t.Fatalf("%d accounts, want 4", got)
	}
}

func TestProjects(t *testing.T) {
	s := New(Options{})
	key := s.AdminKey()
	_, _, m := rawCall(t, s, "GET", "/v1/organization/projects/"+ProjectArchived, key, "")
	if m["status"] != "archived" || m["archived_at"] == nil || m["object"] != "organization.project" {
		t.Fatalf("archived project: %v", m)
	}

	// Archiving a project removes its service accounts, as OpenAI does.
	s.AddProject("proj_x", "X", "active")
	if code, _, _ := rawCall(t, s, "POST", "/v1/organization/projects/proj_x/service_accounts", key, `{"name":"a"}`); code != 200 {
		t.Fatal(code)
	}
	s.AddProject("proj_x", "X", "archived")
	if got := len(s.LiveAccounts()); got != 0 {
		t.Fatalf("archived project kept %d accounts", got)
	}
}

func TestFault429RetriedBySDK(t *testing.T) {
	s, srv := startFake(t, Options{})
	s.SetFaults(Faults{Rules: []FaultRule{{Ops: []Op{OpCreateServiceAccount}, Kind: Fault429, Count: 1, RetryAfter: 1}}})
	c := newClient(t, srv.URL, s.AdminKey()) // default retries
	start := time.Now()
	if _, err := c.Admin.Organization.Projects.ServiceAccounts.New(context.Background(), ProjectActive, newSA("a")); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("SDK retried after %v, before Retry-After: 1", d)
	}
	if calls := s.Calls()[OpCreateServiceAccount]; calls != 2 {
		t.Fatalf("create calls = %d, want 2", calls)
	}
	if fc := s.FaultCounts(); fc[Fault429] != 1 {
		t.Fatalf("fault counts = %v", fc)
	}
	if got := len(s.LiveAccounts()); got != 1 {
		t.Fatalf("%d accounts", got)
	}
	// The header and envelope on the wire.
	s.SetFaults(Faults{Rules: []FaultRule{{Kind: Fault429, Count: 1, RetryAfter: 7}}})
	code, h, m := rawCall(t, s, "GET", "/v1/organization/projects/"+ProjectActive, s.AdminKey(), "")
	if code != 429 || h.Get("Retry-After") != "7" || errorOf(t, m)["type"] != "rate_limit_exceeded" {
		t.Fatalf("429: %d %q %v", code, h.Get("Retry-After"), m)
	}
	s.SetFaults(Faults{Rules: []FaultRule{{Kind: Fault429, Count: 1}}})
	if _, h, _ := rawCall(t, s, "GET", "/v1/organization/projects/"+ProjectActive, s.AdminKey(), ""); h.Get("Retry-After") != "1" {
		t.Fatalf("unset RetryAfter sent %q, the spec's minimum is 1", h.Get("Retry-After"))
	}
}

func TestFaultRefusals(t *testing.T) {
	s := New(Options{})
	s.FailOnViolations(t)
	path := "/v1/organization/projects/" + ProjectActive + "/service_accounts/svc_acct_x"
	for kind, want := range map[FaultKind]int{Fault400: 400, Fault401: 401, Fault403: 403} {
		s.SetFaults(Faults{Rules: []FaultRule{{Ops: []Op{OpDeleteServiceAccount}, Kind: kind, Count: 1, Message: "custom sk-test-message"}}})
		code, _, m := rawCall(t, s, "DELETE", path, s.AdminKey(), "")
		if e := errorOf(t, m); code != want || e["message"] != "custom sk-test-message" {
			t.Fatalf("%s: %d %v", kind, code, m)
		}
		if code, _, _ := rawCall(t, s, "DELETE", path, s.AdminKey(), ""); code != 404 {
			t.Fatalf("%s: after Count, %d, want the real 404", kind, code)
		}
	}
	if got := s.FaultCounts(); got[Fault400] != 1 || got[Fault401] != 1 || got[Fault403] != 1 {
		t.Fatalf("fault counts %v", got)
	}
}

func TestFault500(t *testing.T) {
	s := New(Options{})
	s.SetFaults(Faults{Rules: []FaultRule{{Ops: []Op{OpGetProject}, Kind: Fault500, Count: 2}}})
	for i := range 3 {
		code, _, m := rawCall(t, s, "GET", "/v1/organization/projects/"+ProjectActive, s.AdminKey(), "")
		want := 500
		if i == 2 {
			want = 200 // Count exhausted
		}
		if code != want {
			t.Fatalf("call %d: %d, want %d", i, code, want)
		}
		if code == 500 && errorOf(t, m)["type"] != "server_error" {
			t.Fatalf("500 envelope: %v", m)
		}
	}
	// Rules only hit their ops.
	if code, _, _ := rawCall(t, s, "GET", "/v1/organization/projects/"+ProjectActive+"/service_accounts", s.AdminKey(), ""); code != 200 {
		t.Fatal(code)
	}
}

func TestFaultRate(t *testing.T) {
	s := New(Options{})
	s.SetFaults(Faults{Rules: []FaultRule{{Kind: Fault500, Rate: 1}}})
	for range 20 {
		if code, _, _ := rawCall(t, s, "GET", "/v1/organization/projects/"+ProjectActive, s.AdminKey(), ""); code != 500 {
			t.Fatalf("rate 1 let a request through: %d", code)
		}
	}
	s.SetFaults(Faults{Rules: []FaultRule{{Kind: Fault500, Rate: 0.5}}})
	failed := 0
	for range 400 {
		if code, _, _ := rawCall(t, s, "GET", "/v1/organization/projects/"+ProjectActive, s.AdminKey(), ""); code == 500 {
			failed++
		}
	}
	if failed < 120 || failed > 280 { // ~10 sigma either way
		t.Fatalf("rate 0.5 failed %d of 400", failed)
	}
	s.SetFaults(Faults{})
	if code, _, _ := rawCall(t, s, "GET", "/v1/organization/projects/"+ProjectActive, s.AdminKey(), ""); code != 200 {
		t.Fatalf("healthy again: %d", code)
	}
}

func TestFaultLostResponseLeavesAccount(t *testing.T) {
	s, srv := startFake(t, Options{})
	s.SetFaults(Faults{Rules: []FaultRule{{Ops: []Op{OpCreateServiceAccount}, Kind: FaultLostResponse, Count: 1}}})
	c := newClient(t, srv.URL, s.AdminKey(), option.WithMaxRetries(0))
	_, err := c.Admin.Organization.Projects.ServiceAccounts.New(context.Background(), ProjectActive, newSA("orphan"))
	if err == nil || statusOf(err) != 0 {
		t.Fatalf("lost response reached the client: %v", err)
	}
	live := s.LiveAccounts()
	if len(live) != 1 || live[0].Name != "orphan" {
		t.Fatalf("live = %+v, want the orphan", live)
	}
	if s.FaultCounts()[FaultLostResponse] != 1 {
		t.Fatalf("fault counts = %v", s.FaultCounts())
	}
}

func TestFaultDropLeavesNothing(t *testing.T) {
	s, srv := startFake(t, Options{})
	s.SetFaults(Faults{Rules: []FaultRule{{Ops: []Op{OpCreateServiceAccount}, Kind: FaultDrop, Count: 1}}})
	c := newClient(t, srv.URL, s.AdminKey(), option.WithMaxRetries(0))
	_, err := c.Admin.Organization.Projects.ServiceAccounts.New(context.Background(), ProjectActive, newSA("never"))
	if err == nil || statusOf(err) != 0 {
		t.Fatalf("dropped request answered: %v", err)
	}
	if n := len(s.LiveAccounts()); n != 0 {
		t.Fatalf("drop created %d accounts", n)
	}
	// The SDK retries connection errors: with retries the next attempt succeeds.
	s.SetFaults(Faults{Rules: []FaultRule{{Ops: []Op{OpCreateServiceAccount}, Kind: FaultDrop, Count: 1}}})
	retrying := newClient(t, srv.URL, s.AdminKey(), option.WithMaxRetries(1))
	if _, err := retrying.Admin.Organization.Projects.ServiceAccounts.New(context.Background(), ProjectActive, newSA("second try")); err != nil {
		t.Fatal(err)
	}
	if n := len(s.LiveAccounts()); n != 1 {
		t.Fatalf("%d accounts after retried drop", n)
	}
	if calls := s.Calls()[OpCreateServiceAccount]; calls != 3 {
		t.Fatalf("create calls = %d, want 3", calls)
	}
}

func TestFaultDown(t *testing.T) {
	s, srv := startFake(t, Options{})
	s.SetFaults(Faults{Down: true})
	c := newClient(t, srv.URL, s.AdminKey(), option.WithMaxRetries(0))
	if _, err := c.Admin.Organization.Projects.Get(context.Background(), ProjectActive); err == nil || statusOf(err) != 0 {
		t.Fatalf("down server answered: %v", err)
	}
	// The control endpoints stay up, so a test can heal the fake.
	resp, err := http.Get(srv.URL + "/_fake/accounts")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("control while down: %d", resp.StatusCode)
	}
	if s.FaultCounts()[FaultDown] != 1 {
		t.Fatalf("fault counts = %v", s.FaultCounts())
	}
	s.SetFaults(Faults{})
	if _, err := c.Admin.Organization.Projects.Get(context.Background(), ProjectActive); err != nil {
		t.Fatal(err)
	}
}

func TestLatencyRespectsCancellation(t *testing.T) {
	s, srv := startFake(t, Options{})
	s.SetFaults(Faults{Latency: 10 * time.Second})
	c := newClient(t, srv.URL, s.AdminKey(), option.WithMaxRetries(0))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Admin.Organization.Projects.ServiceAccounts.New(ctx, ProjectActive, newSA("late"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	// The handler gives up with the client: closing the server (which waits
	// for handlers) is quick, and nothing was created.
	srv.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("handler outlived its request by %v", d)
	}
	if n := len(s.LiveAccounts()); n != 0 {
		t.Fatalf("cancelled request created %d accounts", n)
	}

	// Latency delays a request that waits for it.
	s2, srv2 := startFake(t, Options{})
	s2.SetFaults(Faults{Latency: 150 * time.Millisecond})
	c2 := newClient(t, srv2.URL, s2.AdminKey())
	start = time.Now()
	if _, err := c2.Admin.Organization.Projects.Get(context.Background(), ProjectActive); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("answered in %v despite 150ms latency", d)
	}
}

func TestFaultHoldCompletesAfterClientLeaves(t *testing.T) {
	s, srv := startFake(t, Options{})
	s.SetFaults(Faults{Rules: []FaultRule{{Ops: []Op{OpCreateServiceAccount}, Kind: FaultHold, Count: 1, Hold: 300 * time.Millisecond}}})
	c := newClient(t, srv.URL, s.AdminKey(), option.WithMaxRetries(0))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Admin.Organization.Projects.ServiceAccounts.New(ctx, ProjectActive, newSA("held")); err == nil {
		t.Fatal("held request answered before the hold ended")
	}
	if n := len(s.LiveAccounts()); n != 0 {
		t.Fatalf("created before the hold ended: %d", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(s.LiveAccounts()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if live := s.LiveAccounts(); len(live) != 1 || live[0].Name != "held" {
		t.Fatalf("after the hold: %+v", live)
	}
}

func TestConcurrentClients(t *testing.T) {
	s, srv := startFake(t, Options{})
	const workers, each = 128, 4
	c := newClient(t, srv.URL, s.AdminKey(), option.WithMaxRetries(0))
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				a, err := c.Admin.Organization.Projects.ServiceAccounts.New(ctx, ProjectActive, newSA(fmt.Sprintf("w%d-%d", w, i)))
				if err != nil {
					errs <- err
					return
				}
				if _, err := c.Admin.Organization.Projects.ServiceAccounts.List(ctx, ProjectActive, openai.AdminOrganizationProjectServiceAccountListParams{Limit: openai.Int(20)}); err != nil {
					errs <- err
					return
				}
				if i%2 == 0 {
					if _, err := c.Admin.Organization.Projects.ServiceAccounts.Delete(ctx, ProjectActive, a.ID); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	live := s.LiveAccounts()
	if len(live) != workers*each/2 {
		t.Fatalf("%d live accounts, want %d", len(live), workers*each/2)
	}
	seen := map[string]bool{}
	for i, a := range live {
		if seen[a.ID] {
			t.Fatalf("duplicate id %s", a.ID)
		}
		seen[a.ID] = true
		if i > 0 && a.CreatedAt < live[i-1].CreatedAt {
			t.Fatal("LiveAccounts not sorted by creation")
		}
	}
	// Paging sees exactly the live set.
	var paged int
	iter := c.Admin.Organization.Projects.ServiceAccounts.ListAutoPaging(ctx, ProjectActive, openai.AdminOrganizationProjectServiceAccountListParams{Limit: openai.Int(100)})
	for iter.Next() {
		if !seen[iter.Current().ID] {
			t.Fatalf("paged a dead account %s", iter.Current().ID)
		}
		paged++
	}
	if iter.Err() != nil || paged != len(live) {
		t.Fatalf("paged %d of %d: %v", paged, len(live), iter.Err())
	}
	calls := s.Calls()
	if calls[OpCreateServiceAccount] != workers*each || calls[OpDeleteServiceAccount] != workers*each/2 {
		t.Fatalf("calls = %v", calls)
	}
}

func TestLogsCarryNoKeys(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := log.New(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), "", 0)
	s := New(Options{Logger: logger})
	key := s.AdminKey()
	rawCall(t, s, "POST", "/v1/organization/projects/"+ProjectActive+"/service_accounts", key, `{"name":"a"}`)
	_, _, m := rawCall(t, s, "POST", "/v1/organization/admin_api_keys", key, `{"name":"k"}`)
	rawCall(t, s, "GET", "/v1/organization/projects/"+ProjectActive, "sk-admin-wrong-key", "")
	s.SetFaults(Faults{Rules: []FaultRule{{Kind: Fault500, Count: 1}}})
	rawCall(t, s, "GET", "/v1/organization/projects/"+ProjectActive, key, "")
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if !strings.Contains(out, "op=create_service_account status=200") || !strings.Contains(out, "fault=500") {
		t.Fatalf("log lacks the expected lines:\n%s", out)
	}
	for _, secret := range []string{key, m["value"].(string), "sk-admin-wrong-key", "sk-"} {
		if strings.Contains(out, secret) {
			t.Fatal("a key value reached the log")
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// BenchmarkListPageLarge shows list paging stays O(page) with 10,000 accounts.
func BenchmarkListPageLarge(b *testing.B) {
	s := New(Options{})
	var mid string
	for i := range 10000 {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/v1/organization/projects/"+ProjectActive+"/service_accounts", strings.NewReader(`{"name":"b"}`))
		req.Header.Set("Authorization", "Bearer "+s.AdminKey())
		s.ServeHTTP(rec, req)
		if i == 5000 {
			var m map[string]any
			_ = json.Unmarshal(rec.Body.Bytes(), &m)
			mid = m["id"].(string)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/v1/organization/projects/"+ProjectActive+"/service_accounts?limit=100&after="+mid, nil)
		req.Header.Set("Authorization", "Bearer "+s.AdminKey())
		s.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}
