package fakeopenai

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

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
	return s, srv
}

func TestSmokeCreateListDelete(t *testing.T) {
	s, srv := startFake(t, Options{})
	c := newClient(t, srv.URL, s.AdminKey())
	ctx := context.Background()
	p, err := c.Admin.Organization.Projects.Get(ctx, ProjectActive)
	if err != nil || p.Status != "active" {
		t.Fatalf("get project: %v %+v", err, p)
	}
	acct, err := c.Admin.Organization.Projects.ServiceAccounts.New(ctx, ProjectActive, openai.AdminOrganizationProjectServiceAccountNewParams{Name: "lease-1", ExpiresInSeconds: openai.Int(3600)})
	if err != nil {
		t.Fatal(err)
	}
	if acct.APIKey.ExpiresAt != acct.CreatedAt+3600 || acct.APIKey.Value == "" {
		t.Fatalf("bad create response %+v", acct.APIKey.ExpiresAt)
	}
	live := s.LiveAccounts()
	if len(live) != 1 || live[0].ID != acct.ID || live[0].KeyExpiresAt != acct.APIKey.ExpiresAt {
		t.Fatalf("live = %+v", live)
	}
	if _, err := c.Admin.Organization.Projects.ServiceAccounts.Delete(ctx, ProjectActive, acct.ID); err != nil {
		t.Fatal(err)
	}
	_, err = c.Admin.Organization.Projects.ServiceAccounts.Delete(ctx, ProjectActive, acct.ID)
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound {
		t.Fatalf("second delete: %v", err)
	}
}
