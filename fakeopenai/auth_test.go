package fakeopenai

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

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
