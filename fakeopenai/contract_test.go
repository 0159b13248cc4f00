package fakeopenai

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
)

// The contract itself lives in contract.go: the fake checks every exchange
// as it happens. These tests prove the check has teeth (drifted exchanges are
// reported, the fake answers loudly) and that the official SDK's calls and
// the fake's answers, error answers included, all pass it.

// mustContract loads the embedded contract or fails the test.
func mustContract(t *testing.T) *contract {
	t.Helper()
	c, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// contractEnv is a fake (contract on, as by default) with SDK clients.
type contractEnv struct {
	fake *Server
	srv  *httptest.Server
}

func newContractEnv(t *testing.T) *contractEnv {
	t.Helper()
	fake := New(Options{})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return &contractEnv{fake: fake, srv: srv}
}

func (e *contractEnv) client(key string) openai.Client {
	return openai.NewClient(
		option.WithBaseURL(e.srv.URL+"/v1"), option.WithAdminAPIKey(key), option.WithMaxRetries(0),
	)
}

func TestContract(t *testing.T) {
	e := newContractEnv(t)
	ctx := context.Background()
	admin := e.client(e.fake.AdminKey())
	org := admin.Admin.Organization

	wantStatus := func(t *testing.T, err error, want int) {
		t.Helper()
		if got := statusOf(err); got != want {
			t.Fatalf("status = %d (err %v), want %d", got, err, want)
		}
	}

	t.Run("projects", func(t *testing.T) {
		p, err := org.Projects.Get(ctx, ProjectActive)
		if err != nil || p.ID != ProjectActive || p.Status != "active" {
			t.Fatalf("Get = %s, %v", scrub(p), err)
		}
		p, err = org.Projects.Get(ctx, ProjectArchived)
		if err != nil || p.Status != "archived" || p.ArchivedAt == 0 {
			t.Fatalf("Get archived = %s, %v", scrub(p), err)
		}
		_, err = org.Projects.Get(ctx, "proj_missing")
		wantStatus(t, err, 404)
		wrong := e.client("sk-admin-wrong")
		_, err = wrong.Admin.Organization.Projects.Get(ctx, ProjectActive)
		wantStatus(t, err, 401)
	})

	t.Run("service accounts", func(t *testing.T) {
		sa := org.Projects.ServiceAccounts
		created, err := sa.New(ctx, ProjectActive, openai.AdminOrganizationProjectServiceAccountNewParams{Name: "vault-lease-1", ExpiresInSeconds: openai.Int(600)})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(created.ID, "svc_acct_") || !strings.HasPrefix(created.APIKey.Value, "sk-svcacct-") ||
			!strings.HasPrefix(created.APIKey.ID, "key_") || created.APIKey.ExpiresAt != created.CreatedAt+600 || created.Role != "member" {
			t.Fatalf("New = %s", scrub(created))
		}
		for _, f := range []bool{created.JSON.ID.Valid(), created.JSON.APIKey.Valid(), created.APIKey.JSON.Value.Valid(), created.APIKey.JSON.ExpiresAt.Valid()} {
			if !f {
				t.Fatalf("SDK did not find every field in %s", scrub(created.RawJSON()))
			}
		}
		accountOnly, err := sa.New(ctx, ProjectActive, openai.AdminOrganizationProjectServiceAccountNewParams{Name: "bare", CreateServiceAccountOnly: openai.Bool(true)})
		if err != nil || accountOnly.Role != "none" || accountOnly.JSON.APIKey.Valid() {
			t.Fatalf("account-only New = %s, %v", scrub(accountOnly.RawJSON()), err)
		}
		_, err = sa.New(ctx, ProjectArchived, openai.AdminOrganizationProjectServiceAccountNewParams{Name: "x"})
		wantStatus(t, err, 400)
		_, err = sa.New(ctx, ProjectActive, openai.AdminOrganizationProjectServiceAccountNewParams{Name: "x", ExpiresInSeconds: openai.Int(maxExpiresIn + 1)})
		wantStatus(t, err, 400)
		// That request broke the contract on purpose: it is recorded.
		if v := e.fake.TakeViolations(); len(v) != 1 || !strings.Contains(v[0], "expires_in_seconds") {
			t.Fatalf("violations after an over-long expiry = %q, want one naming expires_in_seconds", v)
		}
		_, err = sa.New(ctx, "proj_missing", openai.AdminOrganizationProjectServiceAccountNewParams{Name: "x"})
		wantStatus(t, err, 404)

		page, err := sa.List(ctx, ProjectActive, openai.AdminOrganizationProjectServiceAccountListParams{Limit: openai.Int(1)})
		if err != nil || len(page.Data) != 1 || !page.HasMore || page.Data[0].ID != created.ID {
			t.Fatalf("List = %s, %v", scrub(page), err)
		}
		page, err = sa.List(ctx, ProjectActive, openai.AdminOrganizationProjectServiceAccountListParams{Limit: openai.Int(1), After: openai.String(created.ID)})
		if err != nil || len(page.Data) != 1 || page.HasMore || page.Data[0].ID != accountOnly.ID {
			t.Fatalf("List after = %s, %v", scrub(page), err)
		}
		_, err = sa.List(ctx, ProjectArchived, openai.AdminOrganizationProjectServiceAccountListParams{})
		wantStatus(t, err, 400)
		_, err = sa.List(ctx, "proj_missing", openai.AdminOrganizationProjectServiceAccountListParams{})
		wantStatus(t, err, 404)

		del, err := sa.Delete(ctx, ProjectActive, created.ID)
		if err != nil || !del.Deleted || del.ID != created.ID || del.Object != "organization.project.service_account.deleted" {
			t.Fatalf("Delete = %s, %v", scrub(del), err)
		}
		_, err = sa.Delete(ctx, ProjectActive, created.ID)
		wantStatus(t, err, 404)
	})

	t.Run("admin keys", func(t *testing.T) {
		ak := org.AdminAPIKeys
		created, err := ak.New(ctx, openai.AdminOrganizationAdminAPIKeyNewParams{Name: "rotated", ExpiresInSeconds: openai.Int(3600)})
		if err != nil || !strings.HasPrefix(created.Value, "sk-admin-") || created.ExpiresAt != created.CreatedAt+3600 {
			t.Fatalf("New = %s, %v", scrub(created), err)
		}
		if want := created.Value[:8] + "..." + created.Value[len(created.Value)-3:]; created.RedactedValue != want {
			t.Fatalf("redacted_value = %q, want %q", created.RedactedValue, want)
		}
		_, err = ak.New(ctx, openai.AdminOrganizationAdminAPIKeyNewParams{Name: ""})
		wantStatus(t, err, 400)
		got, err := ak.Get(ctx, created.ID)
		if err != nil || got.ID != created.ID || got.JSON.Owner.Valid() == false {
			t.Fatalf("Get = %s, %v", scrub(got), err)
		}
		page, err := ak.List(ctx, openai.AdminOrganizationAdminAPIKeyListParams{Limit: openai.Int(1), Order: openai.AdminOrganizationAdminAPIKeyListParamsOrderDesc})
		if err != nil || len(page.Data) != 1 || page.Data[0].ID != created.ID || !page.HasMore {
			t.Fatalf("List desc = %s, %v", scrub(page), err)
		}
		page, err = ak.List(ctx, openai.AdminOrganizationAdminAPIKeyListParams{After: openai.String(e.fake.AdminKeyID())})
		if err != nil || len(page.Data) != 1 || page.Data[0].ID != created.ID || page.HasMore {
			t.Fatalf("List after = %s, %v", scrub(page), err)
		}
		// The new key works at once, and may delete itself.
		rotatedClient := e.client(created.Value)
		rotated := rotatedClient.Admin.Organization.AdminAPIKeys
		del, err := rotated.Delete(ctx, created.ID)
		if err != nil || !del.Deleted || del.ID != created.ID {
			t.Fatalf("Delete = %s, %v", scrub(del), err)
		}
		_, err = ak.Delete(ctx, created.ID)
		wantStatus(t, err, 404)
		_, err = ak.Get(ctx, created.ID)
		wantStatus(t, err, 404)
		_, err = rotated.List(ctx, openai.AdminOrganizationAdminAPIKeyListParams{})
		wantStatus(t, err, 401)
	})

	t.Run("service-account keys", func(t *testing.T) {
		sa, keys := org.Projects.ServiceAccounts, org.Projects.APIKeys
		bare, err := sa.New(ctx, ProjectActive, openai.AdminOrganizationProjectServiceAccountNewParams{Name: "bare-keys", CreateServiceAccountOnly: openai.Bool(true)})
		if err != nil || bare.Role != "none" || bare.JSON.APIKey.Raw() != "null" {
			t.Fatalf("bare New = %s, %v", scrub(bare.RawJSON()), err)
		}
		k, err := sa.APIKeys.New(ctx, ProjectActive, bare.ID, openai.AdminOrganizationProjectServiceAccountAPIKeyNewParams{
			Name: openai.String("scoped"), Scopes: []string{scopeModelRead}, ExpiresInSeconds: openai.Int(600),
		})
		if err != nil || !strings.HasPrefix(k.Value, "sk-svcacct-") || k.Name != "scoped" || k.ExpiresAt != k.CreatedAt+600 || !k.JSON.ExpiresAt.Valid() {
			t.Fatalf("APIKeys.New = %s, %v", scrub(k.RawJSON()), err)
		}
		_, err = sa.APIKeys.New(ctx, ProjectActive, "svc_acct_missing", openai.AdminOrganizationProjectServiceAccountAPIKeyNewParams{})
		wantStatus(t, err, 404)
		_, err = sa.APIKeys.New(ctx, ProjectActive, bare.ID, openai.AdminOrganizationProjectServiceAccountAPIKeyNewParams{Scopes: []string{"api.model.read", "api.model.read"}})
		wantStatus(t, err, 400)
		if v := e.fake.TakeViolations(); len(v) != 1 || !strings.Contains(v[0], "repeated") {
			t.Fatalf("violations after a repeated scope = %q", v)
		}

		got, err := keys.Get(ctx, ProjectActive, k.ID)
		if err != nil || got.ID != k.ID || got.Owner.Type != "service_account" || got.Owner.ServiceAccount.ID != bare.ID ||
			got.ExpiresAt != k.ExpiresAt || got.RedactedValue != redact(k.Value) || got.JSON.LastUsedAt.Raw() != "null" {
			t.Fatalf("APIKeys.Get = %s, %v", scrub(got.RawJSON()), err)
		}
		_, err = keys.Get(ctx, ProjectActive, "key_missing")
		wantStatus(t, err, 404)
		page, err := keys.List(ctx, ProjectActive, openai.AdminOrganizationProjectAPIKeyListParams{Limit: openai.Int(100)})
		if err != nil || len(page.Data) == 0 || page.Data[len(page.Data)-1].ID != k.ID {
			t.Fatalf("APIKeys.List = %s, %v", scrub(page), err)
		}
		_, err = keys.List(ctx, ProjectActive, openai.AdminOrganizationProjectAPIKeyListParams{After: openai.String("key_missing")})
		wantStatus(t, err, 400)

		upd, err := keys.Update(ctx, ProjectActive, k.ID, openai.AdminOrganizationProjectAPIKeyUpdateParams{ExpiresInSeconds: 1200, Scopes: []string{}})
		if err != nil || upd.ID != k.ID || upd.ExpiresAt < k.CreatedAt+1200 || upd.JSON.ExtraFields["value"].Valid() {
			t.Fatalf("APIKeys.Update = %s, %v", scrub(upd.RawJSON()), err)
		}
		if info, _ := e.fake.Key(k.ID); len(info.Scopes) != 0 || info.ExpiresAt != upd.ExpiresAt {
			t.Fatalf("after Update, Key = %+v", info)
		}
		_, err = keys.Update(ctx, ProjectActive, k.ID, openai.AdminOrganizationProjectAPIKeyUpdateParams{})
		wantStatus(t, err, 400)
		if v := e.fake.TakeViolations(); len(v) != 1 {
			t.Fatalf("violations after an empty update = %q", v)
		}
		_, err = keys.Update(ctx, ProjectActive, "key_missing", openai.AdminOrganizationProjectAPIKeyUpdateParams{ExpiresInSeconds: 60})
		wantStatus(t, err, 404)

		del, err := keys.Delete(ctx, ProjectActive, k.ID)
		if err != nil || !del.Deleted || del.ID != k.ID || del.Object != "organization.project.api_key.deleted" {
			t.Fatalf("APIKeys.Delete = %s, %v", scrub(del), err)
		}
		if ids := e.fake.AccountKeyIDs(ProjectActive, bare.ID); ids == nil || len(ids) != 0 {
			t.Fatalf("after the key's Delete the account has keys %q (nil: the account went too)", ids)
		}
		_, err = keys.Delete(ctx, ProjectActive, k.ID)
		wantStatus(t, err, 404)
	})

	t.Run("inference with issued keys", func(t *testing.T) {
		sa := org.Projects.ServiceAccounts
		full, err := sa.New(ctx, ProjectActive, newSA("unscoped"))
		if err != nil {
			t.Fatal(err)
		}
		bare, err := sa.New(ctx, ProjectActive, openai.AdminOrganizationProjectServiceAccountNewParams{Name: "scoped", CreateServiceAccountOnly: openai.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		readOnly, err := sa.APIKeys.New(ctx, ProjectActive, bare.ID, openai.AdminOrganizationProjectServiceAccountAPIKeyNewParams{Scopes: []string{scopeModelRead}})
		if err != nil {
			t.Fatal(err)
		}
		user := func(key string) *openai.Client {
			c := openai.NewClient(option.WithBaseURL(e.srv.URL+"/v1"), option.WithAPIKey(key), option.WithMaxRetries(0))
			return &c
		}
		respParams := responses.ResponseNewParams{Model: "gpt-4o-mini", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}}
		for _, key := range []string{full.APIKey.Value, readOnly.Value} {
			models, err := user(key).Models.List(ctx)
			if err != nil || len(models.Data) == 0 || models.Data[0].Object != "model" {
				t.Fatalf("Models.List = %s, %v", scrub(models), err)
			}
		}
		r, err := user(full.APIKey.Value).Responses.New(ctx, respParams)
		if err != nil || r.Status != "completed" || r.OutputText() == "" || r.Model != "gpt-4o-mini" {
			t.Fatalf("Responses.New = %s, %v", scrub(r), err)
		}
		_, err = user(readOnly.Value).Responses.New(ctx, respParams)
		wantStatus(t, err, 401)
		if apiErr := (*openai.Error)(nil); !errors.As(err, &apiErr) || !strings.Contains(apiErr.Message, "Missing scopes: "+scopeResponsesWrite) {
			t.Fatalf("scope refusal = %v", err)
		}
		_, err = user(e.fake.AdminKey()).Models.List(ctx)
		wantStatus(t, err, 401)
		_, err = user(full.APIKey.Value).Responses.New(ctx, responses.ResponseNewParams{Model: "", Input: respParams.Input})
		wantStatus(t, err, 400)
		// The SDK omits the empty model: a request no correct client sends.
		if v := e.fake.TakeViolations(); len(v) != 1 || !strings.Contains(v[0], "model") {
			t.Fatalf("violations after an empty model = %q", v)
		}
	})

	t.Run("usage and costs", func(t *testing.T) {
		sa, err := org.Projects.ServiceAccounts.New(ctx, ProjectActive, newSA("spender"))
		if err != nil {
			t.Fatal(err)
		}
		user := openai.NewClient(option.WithBaseURL(e.srv.URL+"/v1"), option.WithAPIKey(sa.APIKey.Value), option.WithMaxRetries(0))
		r, err := user.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt-4.1", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("12345678")}})
		if err != nil || r.Usage.InputTokens != 2 || r.Usage.OutputTokens != ResponseOutputTokens || r.Usage.TotalTokens != 2+ResponseOutputTokens {
			t.Fatalf("Responses.New usage = %s, %v", scrub(r.Usage.RawJSON()), err)
		}
		start := time.Now().Add(-time.Hour).Unix()
		u, err := org.Usage.Completions(ctx, openai.AdminOrganizationUsageCompletionsParams{
			StartTime: start, APIKeyIDs: []string{sa.APIKey.ID}, GroupBy: []string{"api_key_id", "model"},
		})
		if err != nil || len(u.Data) == 0 || u.HasMore {
			t.Fatalf("Usage.Completions = %s, %v", scrub(u), err)
		}
		var res []openai.AdminOrganizationUsageCompletionsResponseDataResultUnion
		for _, b := range u.Data {
			res = append(res, b.Results...)
		}
		if len(res) != 1 {
			t.Fatalf("results = %s", scrub(u.RawJSON()))
		}
		cr := res[0].AsOrganizationUsageCompletionsResult()
		if cr.APIKeyID != sa.APIKey.ID || cr.Model != "gpt-4.1" || cr.InputTokens != 2 || cr.OutputTokens != ResponseOutputTokens ||
			cr.NumModelRequests != 1 || cr.JSON.ProjectID.Raw() != "null" {
			t.Fatalf("result = %s", scrub(cr.RawJSON()))
		}
		c, err := org.Usage.Costs(ctx, openai.AdminOrganizationUsageCostsParams{StartTime: start, APIKeyIDs: []string{sa.APIKey.ID}, GroupBy: []string{"api_key_id", "line_item"}})
		if err != nil || len(c.Data) == 0 {
			t.Fatalf("Usage.Costs = %s, %v", scrub(c), err)
		}
		var lines int
		for _, b := range c.Data {
			for _, x := range b.Results {
				cost := x.AsOrganizationCostsResult()
				if cost.APIKeyID != sa.APIKey.ID || cost.Amount.Currency != "usd" || cost.Amount.Value <= 0 || cost.QuantityUnit != "tokens" {
					t.Fatalf("cost = %s", scrub(cost.RawJSON()))
				}
				lines++
			}
		}
		if lines != 2 { // input_tokens, output_tokens
			t.Fatalf("cost lines = %d in %s", lines, scrub(c.RawJSON()))
		}
		_, err = org.Usage.Completions(ctx, openai.AdminOrganizationUsageCompletionsParams{StartTime: start, Limit: openai.Int(32)})
		wantStatus(t, err, 400)
		_, err = org.Usage.Costs(ctx, openai.AdminOrganizationUsageCostsParams{StartTime: start, Limit: openai.Int(181)})
		wantStatus(t, err, 400)
		wrong := e.client(sa.APIKey.Value)
		_, err = wrong.Admin.Organization.Usage.Completions(ctx, openai.AdminOrganizationUsageCompletionsParams{StartTime: start})
		wantStatus(t, err, 401)
		_, err = wrong.Admin.Organization.Usage.Costs(ctx, openai.AdminOrganizationUsageCostsParams{StartTime: start})
		wantStatus(t, err, 401)
		// Both reports can be throttled (the spec declares their 429).
		e.fake.SetFaults(Faults{Rules: []FaultRule{{Ops: []Op{OpUsageCompletions, OpCosts}, Kind: Fault429, Count: 2, RetryAfter: 3}}})
		defer e.fake.SetFaults(Faults{})
		_, err = org.Usage.Completions(ctx, openai.AdminOrganizationUsageCompletionsParams{StartTime: start})
		wantStatus(t, err, 429)
		_, err = org.Usage.Costs(ctx, openai.AdminOrganizationUsageCostsParams{StartTime: start})
		wantStatus(t, err, 429)
	})

	t.Run("injected faults keep the envelope", func(t *testing.T) {
		e.fake.SetFaults(Faults{Rules: []FaultRule{
			{Ops: []Op{OpCreateServiceAccount}, Kind: Fault429, Count: 1, RetryAfter: 2},
			{Ops: []Op{OpCreateServiceAccount}, Kind: Fault500, Count: 1},
		}})
		defer e.fake.SetFaults(Faults{})
		params := openai.AdminOrganizationProjectServiceAccountNewParams{Name: "x"}
		_, err := org.Projects.ServiceAccounts.New(ctx, ProjectActive, params)
		wantStatus(t, err, 429)
		_, err = org.Projects.ServiceAccounts.New(ctx, ProjectActive, params)
		wantStatus(t, err, 500)
	})

	t.Run("unknown route and method", func(t *testing.T) {
		for _, rq := range []struct {
			method, path string
			want         int
		}{
			{"GET", "/v1/organization/nowhere", 404}, {"PUT", "/v1/organization/admin_api_keys", 405}, {"GET", "/v1/", 404},
			// OpenAI operations the engine does not call are not served.
			{"GET", "/v1/organization/projects", 404},
			{"GET", "/v1/models/gpt-4o-mini", 404},
			{"PUT", "/v1/organization/projects/" + ProjectActive + "/api_keys/key_x", 405},
			{"GET", "/v1/organization/projects/" + ProjectActive + "/service_accounts/svc_acct_x", 405},
		} {
			req, _ := http.NewRequest(rq.method, e.srv.URL+rq.path, nil)
			req.Header.Set("Authorization", "Bearer "+e.fake.AdminKey())
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != rq.want {
				t.Errorf("%s %s = %d, want %d", rq.method, rq.path, resp.StatusCode, rq.want)
			}
		}
	})

	for _, v := range e.fake.Violations() {
		t.Error(v)
	}

	// Every operation was validated on success and on its error paths.
	want := []string{
		"retrieve-project 200", "retrieve-project 404", "retrieve-project 401",
		"create-project-service-account 200", "create-project-service-account 400", "create-project-service-account 404",
		"create-project-service-account 429", "create-project-service-account 500",
		"list-project-service-accounts 200", "list-project-service-accounts 400", "list-project-service-accounts 404",
		"delete-project-service-account 200", "delete-project-service-account 404",
		"admin-api-keys-create 200", "admin-api-keys-create 400", "admin-api-keys-get 200", "admin-api-keys-get 404",
		"admin-api-keys-list 200", "admin-api-keys-list 401", "admin-api-keys-delete 200", "admin-api-keys-delete 404",
		"CreateanAPIkeyforaserviceaccount 200", "CreateanAPIkeyforaserviceaccount 400", "CreateanAPIkeyforaserviceaccount 404",
		"retrieve-project-api-key 200", "retrieve-project-api-key 404", "list-project-api-keys 200", "list-project-api-keys 400",
		updateKeyOpID + " 200", updateKeyOpID + " 400", updateKeyOpID + " 404",
		"delete-project-api-key 200", "delete-project-api-key 404",
		"listModels 200", "listModels 401", "createResponse 200", "createResponse 400", "createResponse 401",
		"usage-completions 200", "usage-completions 400", "usage-completions 401",
		"usage-costs 200", "usage-costs 400", "usage-costs 401", "usage-completions 429", "usage-costs 429",
		" 404", " 405",
	}
	var missing []string
	for _, w := range want {
		if !e.fake.seen[w] {
			missing = append(missing, w)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("exchanges never validated: %q", missing)
	}

	// And the list above misses no route: every operation the fake serves
	// answered 200 at least once here.
	c := mustContract(t)
	for _, rt := range routes {
		path := "/v1/" + strings.ReplaceAll(strings.Join(rt.pattern, "/"), "*", "x_1")
		for method, op := range rt.methods {
			route, _, err := c.router.FindRoute(httptest.NewRequest(method, "https://api.openai.com"+path, nil))
			if err != nil {
				continue // TestContractCoversEveryRoute reports it
			}
			if id := route.Operation.OperationID; !e.fake.seen[id+" 200"] {
				t.Errorf("%s %s (%s, %s) never served a 200 in this test", method, path, op, id)
			}
		}
	}
}
