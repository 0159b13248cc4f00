package fakeopenai

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

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

// TestEmptyPageHasNullIDs: an empty list page carries "data": [] and null
// first_id and last_id, as OpenAI's list envelope does.
func TestEmptyPageHasNullIDs(t *testing.T) {
	s := New(Options{})
	s.FailOnViolations(t)
	code, _, m := rawCall(t, s, "GET", "/v1/organization/projects/"+ProjectActive+"/service_accounts", s.AdminKey(), "")
	data, isList := m["data"].([]any)
	if code != 200 || !isList || len(data) != 0 || m["first_id"] != nil || m["last_id"] != nil || m["has_more"] != false {
		t.Fatalf("empty page must have [] and null ids: %d %v", code, m)
	}
	for _, k := range []string{"first_id", "last_id"} {
		if _, present := m[k]; !present {
			t.Fatalf("empty page omits %s; it must be null", k)
		}
	}
}
