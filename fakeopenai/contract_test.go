package fakeopenai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// The contract test holds the fake to OpenAI's published OpenAPI description
// (testdata/openapi, an extract of openai/openai-openapi f85dbe2) in both
// directions: every request the official SDK sends must satisfy the spec's
// request schemas, and every answer of the fake must satisfy the spec's
// response schemas (errors: the ErrorResponse envelope) and carry no field
// that neither the spec nor the SDK knows.

const specFile = "../testdata/openapi/openai-admin.yaml"

// sdkOnlyFields are fields the fake sends that the spec omits but the newer
// SDK (v3.96.0) reads; per ADMIN-API.md the SDK wins.
var sdkOnlyFields = map[string]bool{
	"create-project-service-account 200 $.api_key.expires_at": true, // key expiry, SDK v3.57+
	"list-project-api-keys 200 $.data[].expires_at":           true, // ProjectAPIKey.ExpiresAt
}

type contract struct {
	doc       *openapi3.T
	router    routers.Router
	errSchema *openapi3.Schema
}

func loadContract(t *testing.T) *contract {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(specFile)
	if err != nil {
		t.Fatalf("load %s: %v", specFile, err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("%s is not a valid OpenAPI document: %v", specFile, err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	ref := doc.Components.Schemas["ErrorResponse"]
	if ref == nil || ref.Value == nil {
		t.Fatal("spec has no ErrorResponse schema")
	}
	return &contract{doc: doc, router: router, errSchema: ref.Value}
}

// exchange is one request/response pair seen on the wire.
type exchange struct {
	req     *http.Request
	reqBody []byte
	status  int
	header  http.Header
	body    []byte
}

// check validates one exchange; op is the spec's operationId ("" if the path
// is not in the spec, which is only acceptable for error answers).
func (c *contract) check(x exchange) (op string, errs []error) {
	ctx := context.Background()
	// The router matches the spec's server URL, so present the request as
	// if sent to api.openai.com.
	vr := x.req.Clone(ctx)
	u := *x.req.URL
	u.Scheme, u.Host = "https", "api.openai.com"
	vr.URL, vr.Host = &u, u.Host
	vr.Body = io.NopCloser(bytes.NewReader(x.reqBody))

	route, params, err := c.router.FindRoute(vr)
	if err != nil {
		if x.status/100 == 2 {
			return "", []error{fmt.Errorf("%s %s: not in the spec but answered %d", x.req.Method, x.req.URL.Path, x.status)}
		}
		return "", c.checkError(x, "")
	}
	op = route.Operation.OperationID
	in := &openapi3filter.RequestValidationInput{
		Request: vr, PathParams: params, Route: route,
		Options: &openapi3filter.Options{MultiError: true, AuthenticationFunc: bearerPresent},
	}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
		errs = append(errs, fmt.Errorf("request %s %s violates the spec: %w", x.req.Method, x.req.URL.Path, err))
	}
	if x.status/100 != 2 {
		return op, append(errs, c.checkError(x, op)...)
	}
	if x.status != http.StatusOK {
		errs = append(errs, fmt.Errorf("%s: success status %d, OpenAI always answers 200", op, x.status))
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: x.status, Header: x.header,
		Options: &openapi3filter.Options{MultiError: true, IncludeResponseStatus: true},
	}
	out.SetBodyBytes(x.body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		errs = append(errs, fmt.Errorf("%s: response violates the spec: %w", op, err))
	}
	resp := route.Operation.Responses.Status(x.status)
	if resp != nil && resp.Value != nil {
		if mt := resp.Value.Content.Get("application/json"); mt != nil && mt.Schema != nil {
			var v any
			if err := json.Unmarshal(x.body, &v); err == nil {
				errs = append(errs, undocumented(mt.Schema.Value, v, fmt.Sprintf("%s %d $", op, x.status))...)
			}
		}
	}
	return op, errs
}

// checkError validates a non-2xx answer against the ErrorResponse envelope.
func (c *contract) checkError(x exchange, op string) (errs []error) {
	where := fmt.Sprintf("%s %s -> %d", x.req.Method, x.req.URL.Path, x.status)
	if mt, _, err := mime.ParseMediaType(x.header.Get("Content-Type")); err != nil || mt != "application/json" {
		errs = append(errs, fmt.Errorf("%s: Content-Type %q, want application/json", where, x.header.Get("Content-Type")))
	}
	var v any
	if err := json.Unmarshal(x.body, &v); err != nil {
		return append(errs, fmt.Errorf("%s: error body is not JSON: %v", where, err))
	}
	if err := c.errSchema.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors()); err != nil {
		errs = append(errs, fmt.Errorf("%s: error body violates ErrorResponse: %w", where, err))
	}
	errs = append(errs, undocumented(c.errSchema, v, fmt.Sprintf("%s %d $", op, x.status))...)
	// The SDK and OpenAI's own docs rely on all four keys being present, even when null.
	if m, ok := v.(map[string]any)["error"].(map[string]any); ok {
		for _, k := range []string{"message", "type", "param", "code"} {
			if _, ok := m[k]; !ok {
				errs = append(errs, fmt.Errorf("%s: error lacks %q", where, k))
			}
		}
	}
	return errs
}

func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	h := in.RequestValidationInput.Request.Header.Get("Authorization")
	if !strings.HasPrefix(h, "Bearer ") || len(h) == len("Bearer ") {
		return errors.New("no bearer token")
	}
	return nil
}

// undocumented reports object keys in v that schema s does not declare,
// unless listed in sdkOnlyFields. (The spec allows additional properties, so
// without this a misspelt field would pass.)
func undocumented(s *openapi3.Schema, v any, path string) (errs []error) {
	if s == nil {
		return nil
	}
	switch v := v.(type) {
	case map[string]any:
		props := map[string]*openapi3.Schema{}
		collectProps(s, props)
		for k, val := range v {
			p := path + "." + k
			ps, ok := props[k]
			if !ok {
				if !sdkOnlyFields[p] {
					errs = append(errs, fmt.Errorf("field %s is in neither the spec nor the SDK", p))
				}
				continue
			}
			errs = append(errs, undocumented(ps, val, p)...)
		}
	case []any:
		items := collectItems(s)
		for _, val := range v {
			errs = append(errs, undocumented(items, val, path+"[]")...)
		}
	}
	return errs
}

func collectProps(s *openapi3.Schema, into map[string]*openapi3.Schema) {
	for k, p := range s.Properties {
		if p != nil && p.Value != nil {
			into[k] = p.Value
		}
	}
	for _, group := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
		for _, sub := range group {
			if sub != nil && sub.Value != nil {
				collectProps(sub.Value, into)
			}
		}
	}
}

func collectItems(s *openapi3.Schema) *openapi3.Schema {
	if s.Items != nil && s.Items.Value != nil {
		return s.Items.Value
	}
	for _, group := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
		for _, sub := range group {
			if sub != nil && sub.Value != nil {
				if it := collectItems(sub.Value); it != nil {
					return it
				}
			}
		}
	}
	return nil
}

// validatingTransport checks every exchange between a client and the fake.
type validatingTransport struct {
	c    *contract
	base http.RoundTripper

	mu   sync.Mutex
	errs []error
	seen map[string]bool // "operationId status"
}

func (vt *validatingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	resp, err := vt.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	op, errs := vt.c.check(exchange{req: req, reqBody: reqBody, status: resp.StatusCode, header: resp.Header, body: body})
	vt.mu.Lock()
	vt.errs = append(vt.errs, errs...)
	vt.seen[fmt.Sprintf("%s %d", op, resp.StatusCode)] = true
	vt.mu.Unlock()
	return resp, nil
}

func (vt *validatingTransport) takeErrors() []error {
	vt.mu.Lock()
	defer vt.mu.Unlock()
	e := vt.errs
	vt.errs = nil
	return e
}

// contractEnv is a fake behind a validating transport, with SDK clients.
type contractEnv struct {
	fake *Server
	srv  *httptest.Server
	vt   *validatingTransport
	http *http.Client
}

func newContractEnv(t *testing.T, c *contract) *contractEnv {
	t.Helper()
	fake := New(Options{})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	vt := &validatingTransport{c: c, base: http.DefaultTransport, seen: map[string]bool{}}
	return &contractEnv{fake: fake, srv: srv, vt: vt, http: &http.Client{Transport: vt}}
}

func (e *contractEnv) client(key string) openai.Client {
	return openai.NewClient(
		option.WithBaseURL(e.srv.URL+"/v1"), option.WithAdminAPIKey(key),
		option.WithHTTPClient(e.http), option.WithMaxRetries(0),
	)
}

var keyRE = regexp.MustCompile(`sk-[A-Za-z0-9_-]{4,}`)

// scrub renders v for a failure message with key values masked: test output
// must not carry secrets, even fake ones.
func scrub(v any) string {
	return keyRE.ReplaceAllString(fmt.Sprintf("%+v", v), "sk-<redacted>")
}

// statusOf extracts the HTTP status of an SDK error (0 if none).
func statusOf(err error) int {
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode
	}
	return 0
}

func TestContract(t *testing.T) {
	c := loadContract(t)
	e := newContractEnv(t, c)
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
		page, err := org.Projects.List(ctx, openai.AdminOrganizationProjectListParams{IncludeArchived: openai.Bool(true), Limit: openai.Int(1)})
		if err != nil || len(page.Data) != 1 || !page.HasMore {
			t.Fatalf("List = %s, %v", scrub(page), err)
		}
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
		_, err = sa.New(ctx, "proj_missing", openai.AdminOrganizationProjectServiceAccountNewParams{Name: "x"})
		wantStatus(t, err, 404)

		got, err := sa.Get(ctx, ProjectActive, created.ID)
		if err != nil || got.ID != created.ID || got.Name != "vault-lease-1" {
			t.Fatalf("Get = %s, %v", scrub(got), err)
		}
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

		keys, err := org.Projects.APIKeys.List(ctx, ProjectActive, openai.AdminOrganizationProjectAPIKeyListParams{})
		if err != nil || len(keys.Data) != 1 {
			t.Fatalf("APIKeys.List = %s, %v", scrub(keys), err)
		}
		k := keys.Data[0]
		if k.ID != created.APIKey.ID || k.Owner.Type != "service_account" || k.Owner.ServiceAccount.ID != created.ID ||
			k.RedactedValue != created.APIKey.Value[:8]+"..."+created.APIKey.Value[len(created.APIKey.Value)-3:] || k.ExpiresAt != created.APIKey.ExpiresAt {
			t.Fatalf("project key = %s", scrub(k.RawJSON()))
		}
		_, err = org.Projects.APIKeys.List(ctx, "proj_missing", openai.AdminOrganizationProjectAPIKeyListParams{})
		wantStatus(t, err, 404)

		del, err := sa.Delete(ctx, ProjectActive, created.ID)
		if err != nil || !del.Deleted || del.ID != created.ID || del.Object != "organization.project.service_account.deleted" {
			t.Fatalf("Delete = %s, %v", scrub(del), err)
		}
		_, err = sa.Delete(ctx, ProjectActive, created.ID)
		wantStatus(t, err, 404)
		_, err = sa.Get(ctx, ProjectActive, created.ID)
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
		for _, rq := range []struct{ method, path string }{
			{"GET", "/v1/organization/nowhere"}, {"PUT", "/v1/organization/projects"}, {"GET", "/v1/"},
		} {
			req, _ := http.NewRequest(rq.method, e.srv.URL+rq.path, nil)
			req.Header.Set("Authorization", "Bearer "+e.fake.AdminKey())
			resp, err := e.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if want := map[string]int{"GET": 404, "PUT": 405}[rq.method]; resp.StatusCode != want {
				t.Errorf("%s %s = %d, want %d", rq.method, rq.path, resp.StatusCode, want)
			}
		}
	})

	for _, err := range e.vt.takeErrors() {
		t.Error(scrub(err))
	}

	// Every operation was validated on success and on its error paths.
	want := []string{
		"retrieve-project 200", "retrieve-project 404", "retrieve-project 401", "list-projects 200",
		"create-project-service-account 200", "create-project-service-account 400", "create-project-service-account 404",
		"create-project-service-account 429", "create-project-service-account 500",
		"list-project-service-accounts 200", "list-project-service-accounts 400", "list-project-service-accounts 404",
		"retrieve-project-service-account 200", "retrieve-project-service-account 404",
		"delete-project-service-account 200", "delete-project-service-account 404",
		"list-project-api-keys 200", "list-project-api-keys 404",
		"admin-api-keys-create 200", "admin-api-keys-create 400", "admin-api-keys-get 200", "admin-api-keys-get 404",
		"admin-api-keys-list 200", "admin-api-keys-list 401", "admin-api-keys-delete 200", "admin-api-keys-delete 404",
		" 404", " 405",
	}
	var missing []string
	for _, w := range want {
		if !e.vt.seen[w] {
			missing = append(missing, w)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("exchanges never validated: %q", missing)
	}
}

// TestContractRejectsDrift proves the validator has teeth: responses and
// requests that drift from the spec are reported.
func TestContractRejectsDrift(t *testing.T) {
	c := loadContract(t)
	fake := New(Options{})
	// Take a genuine exchange, then corrupt it.
	do := func(method, path, body string) exchange {
		var rb io.Reader
		if body != "" {
			rb = strings.NewReader(body)
		}
		req := httptest.NewRequest(method, "http://fake"+path, rb)
		req.Header.Set("Authorization", "Bearer "+fake.AdminKey())
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		rec := httptest.NewRecorder()
		fake.ServeHTTP(rec, req)
		req = httptest.NewRequest(method, "http://fake"+path, nil)
		req.Header.Set("Authorization", "Bearer "+fake.AdminKey())
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		return exchange{req: req, reqBody: []byte(body), status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	}
	create := do("POST", "/v1/organization/projects/"+ProjectActive+"/service_accounts", `{"name":"a","expires_in_seconds":60}`)
	if _, errs := c.check(create); len(errs) != 0 {
		t.Fatalf("genuine exchange rejected: %s", scrub(errs))
	}
	edit := func(x exchange, f func(m map[string]any)) exchange {
		var m map[string]any
		if err := json.Unmarshal(x.body, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		x.body, _ = json.Marshal(m)
		return x
	}
	notFound := do("GET", "/v1/organization/projects/proj_missing", "")
	list := do("GET", "/v1/organization/projects/"+ProjectActive+"/service_accounts", "")

	cases := map[string]exchange{
		"role missing":        edit(create, func(m map[string]any) { delete(m, "role") }),
		"role not in enum":    edit(create, func(m map[string]any) { m["role"] = "admin" }),
		"created_at a string": edit(create, func(m map[string]any) { m["created_at"] = "yesterday" }),
		"key value missing":   edit(create, func(m map[string]any) { delete(m["api_key"].(map[string]any), "value") }),
		"misspelt field":      edit(create, func(m map[string]any) { m["create_at"] = 1 }),
		"has_more missing":    edit(list, func(m map[string]any) { delete(m, "has_more") }),
		"error code missing":  edit(notFound, func(m map[string]any) { delete(m["error"].(map[string]any), "code") }),
		"error not enveloped": edit(notFound, func(m map[string]any) { m["message"] = "x"; delete(m, "error") }),
		"created answered 201": func() exchange {
			x := create
			x.status = http.StatusCreated
			return x
		}(),
		"request without name": func() exchange {
			x := create
			x.reqBody = []byte(`{"nam":"a"}`)
			return x
		}(),
		"admin key expiry too long": func() exchange {
			x := do("POST", "/v1/organization/admin_api_keys", `{"name":"k"}`)
			x.reqBody = []byte(`{"name":"k","expires_in_seconds":31536001}`)
			return x
		}(),
	}
	for name, x := range cases {
		t.Run(name, func(t *testing.T) {
			if _, errs := c.check(x); len(errs) == 0 {
				t.Errorf("drifted exchange accepted: %s", scrub(string(x.body)))
			}
		})
	}
}

// TestContractCoversEveryRoute keeps the fake from growing an endpoint the
// contract does not describe.
func TestContractCoversEveryRoute(t *testing.T) {
	c := loadContract(t)
	for _, rt := range routes {
		path := "/v1/" + strings.ReplaceAll(strings.Join(rt.pattern, "/"), "*", "x_1")
		for method, op := range rt.methods {
			req := httptest.NewRequest(method, "https://api.openai.com"+path, nil)
			route, _, err := c.router.FindRoute(req)
			if err != nil {
				t.Errorf("%s %s (%s) is not in %s: %v", method, path, op, specFile, err)
				continue
			}
			if route.Operation.OperationID == "" {
				t.Errorf("%s %s has no operationId", method, path)
			}
		}
	}
}
