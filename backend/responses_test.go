package backend

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/testhelpers/schema"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
	"github.com/vault-plugin-openai/vault-plugin-openai/internal/operationids"
)

// schemaRun sends requests through HandleRequest and checks each success
// against the schema its operation declares (responses.go), strictly: a
// field the handler returns that is not declared, or a Required one it
// omits, fails. It records which operation of which path each request
// reached, so the test can demand that every operation was exercised.
type schemaRun struct {
	t    *testing.T
	e    *testEnv
	seen map[string]int
}

func opKey(pattern string, op logical.Operation) string { return pattern + " " + string(op) }

func (r *schemaRun) do(op logical.Operation, path string, data map[string]interface{}) *logical.Response {
	r.t.Helper()
	resp, err := r.e.do(op, path, data)
	if err != nil {
		r.t.Fatalf("%s %s: %v", op, path, err)
	}
	if resp != nil && resp.IsError() {
		r.t.Fatalf("%s %s: error response: %v", op, path, resp.Error())
	}
	route := r.e.b.Route(path)
	if route == nil {
		r.t.Fatalf("%s: no route", path)
	}
	r.seen[opKey(route.Pattern, op)]++
	checkResponseAgainstSchema(r.t, route, op, path, resp)
	return resp
}

// rawHTTPKeys are the data keys of a raw HTTP response, which Vault turns
// into status, content type and body rather than JSON fields.
var rawHTTPKeys = map[string]bool{logical.HTTPContentType: true, logical.HTTPRawBody: true, logical.HTTPStatusCode: true}

func checkResponseAgainstSchema(t *testing.T, route *framework.Path, op logical.Operation, path string, resp *logical.Response) {
	t.Helper()
	props := route.Operations[op].Properties()
	if len(props.Responses) == 0 {
		t.Fatalf("%s %s: the operation declares no responses", op, route.Pattern)
	}
	declared := schema.GetResponseSchema(t, route, op)
	schema.ValidateResponse(t, declared, resp, true)
	// ValidateResponse skips a schema without fields; such an operation
	// answers no data at all (204, or 200 with warnings only, or a raw body).
	if resp != nil && len(declared.Fields) == 0 {
		for k := range resp.Data {
			if !rawHTTPKeys[k] {
				t.Errorf("%s %s: returns field %q, but its declared %d response has no fields", op, path, k, firstStatus(props.Responses))
			}
		}
	}
	if resp != nil && resp.Data[logical.HTTPRawBody] != nil && declared.MediaType == "" {
		t.Errorf("%s %s: answers a raw HTTP body but declares a JSON response", op, path)
	}
	if resp == nil || (len(resp.Data) == 0 && resp.Secret == nil) {
		if _, ok := props.Responses[204]; !ok && len(declared.Fields) > 0 {
			t.Errorf("%s %s: answered no data, but declares fields and no 204", op, path)
		}
	}
}

func firstStatus(m map[int][]framework.Response) int {
	for _, s := range []int{200, 202, 204} {
		if _, ok := m[s]; ok {
			return s
		}
	}
	return 0
}

// TestResponseSchemas exercises every operation of every path, with the
// responses' optional fields present, and validates each actual response
// against the operation's declared schema.
func TestResponseSchemas(t *testing.T) {
	e := newTestEnv(t)
	r := &schemaRun{t: t, e: e, seen: map[string]int{}}

	// config: create, read, update (a key with an expiry: the write warns
	// and the read shows admin_api_key_expires_at), rotate (the supplied
	// key kept: old_admin_api_key_kept).
	r.do(logical.CreateOperation, "config", map[string]interface{}{
		"admin_api_key": e.fake.AdminKey(), "base_url": e.url, "max_retries": 2, "delete_supplied_key_on_rotate": false,
	})
	r.do(logical.ReadOperation, "config", nil)
	rot := r.do(logical.UpdateOperation, "config/rotate-root", nil)
	if rot.Data["old_admin_api_key_kept"] == nil {
		t.Fatalf("rotate-root of a supplied key kept does not name it: %v", rot.Data)
	}
	r.do(logical.UpdateOperation, "config", map[string]interface{}{"admin_api_key_ttl": "720h"})
	r.do(logical.UpdateOperation, "config/rotate-root", nil)
	if read := r.do(logical.ReadOperation, "config", nil); read.Data["admin_api_key_expires_at"] == nil {
		t.Fatalf("config read after rotation with admin_api_key_ttl shows no admin_api_key_expires_at: %v", read.Data)
	}
	if w := r.do(logical.UpdateOperation, "config", map[string]interface{}{"max_retries": 3}); w == nil || len(w.Warnings) == 0 {
		t.Fatalf("config write with an expiring key did not warn: %#v", w)
	}

	// roles: create (one with a warning), update, read, list, delete.
	r.do(logical.CreateOperation, "roles/app", map[string]interface{}{"project_id": fakeopenai.ProjectActive, "max_tokens_per_key": 1000})
	r.do(logical.UpdateOperation, "roles/app", map[string]interface{}{"ttl": "1h"})
	if w := r.do(logical.CreateOperation, "roles/long", map[string]interface{}{"project_id": fakeopenai.ProjectActive, "max_ttl": "48h"}); w == nil || len(w.Warnings) == 0 {
		t.Fatalf("role write past the mount's max TTL did not warn: %#v", w)
	}
	r.do(logical.CreateOperation, "roles/scoped", map[string]interface{}{"project_id": fakeopenai.ProjectActive, "scopes": "api.model.read"})
	r.do(logical.ReadOperation, "roles/app", nil)
	r.do(logical.ReadOperation, "roles/scoped", nil)
	r.do(logical.ListOperation, "roles/", nil)

	// creds: read and update (scoped, narrowed).
	issued := r.do(logical.ReadOperation, "creds/app", nil)
	r.do(logical.UpdateOperation, "creds/scoped", map[string]interface{}{"scopes": "api.model.read", "ttl": "10m"})
	r.do(logical.ReadOperation, "creds/long", nil)
	keyID := issued.Data["api_key_id"].(string)
	key := issued.Data["api_key"].(string)

	// keys: a page with next_after, a last page, one entry, lookups.
	if page := r.do(logical.ListOperation, "keys/", map[string]interface{}{"limit": 1}); page.Data["next_after"] == nil {
		t.Fatalf("keys/ limit=1 of 3 keys has no next_after: %v", page.Data)
	}
	r.do(logical.ListOperation, "keys/", map[string]interface{}{"state": "live", "role": "app"})
	r.do(logical.ReadOperation, "keys/"+keyID, nil)
	r.do(logical.UpdateOperation, "keys/lookup", map[string]interface{}{"api_key": key})
	r.do(logical.ReadOperation, "keys/lookup", map[string]interface{}{"redacted_value": "sk-svcacct-..." + key[len(key)-4:]})
	r.do(logical.ReadOperation, "keys/lookup", map[string]interface{}{"redacted_value": "sk-proj-...abcd"})

	// usage: per role and for the mount, with usage at the fake.
	if err := e.fake.AddUsage(fakeopenai.Usage{APIKeyID: keyID, InputTokens: 10, OutputTokens: 5, Requests: 1}); err != nil {
		t.Fatal(err)
	}
	r.do(logical.ReadOperation, "usage/app", nil)
	r.do(logical.ReadOperation, "usage/", nil)
	r.do(logical.ReadOperation, "usage", nil)

	// metrics: a raw body.
	r.do(logical.ReadOperation, "metrics", nil)

	// tidy, dry run and real.
	r.do(logical.UpdateOperation, "tidy", map[string]interface{}{"dry_run": true})
	r.do(logical.UpdateOperation, "tidy", nil)

	// static roles: create (on a period, and on a schedule), update, read,
	// list, rotate (so the previous key is present), static-creds with
	// rotation_period and with rotation_schedule, delete.
	r.do(logical.CreateOperation, "static-roles/st", map[string]interface{}{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "1h", "overlap": "10m",
	})
	r.do(logical.UpdateOperation, "static-roles/st", map[string]interface{}{"overlap": "5m"})
	r.do(logical.CreateOperation, "static-roles/cron", map[string]interface{}{
		"project_id": fakeopenai.ProjectActive, "rotation_schedule": "0 3 * * SAT", "scopes": "api.model.read",
	})
	if rot := r.do(logical.UpdateOperation, "static-roles/st/rotate", nil); rot.Data["previous_api_key_id"] == "" {
		t.Fatalf("static rotate shows no previous key: %v", rot.Data)
	}
	if sr := r.do(logical.ReadOperation, "static-roles/st", nil); sr.Data["previous_api_key_ends_at"] == "" {
		t.Fatalf("static role read after a rotation shows no previous key: %v", sr.Data)
	}
	r.do(logical.ReadOperation, "static-roles/cron", nil)
	r.do(logical.ListOperation, "static-roles/", nil)
	if sc := r.do(logical.ReadOperation, "static-creds/st", nil); sc.Data["rotation_period"] == nil || sc.Data["previous_api_key_id"] == "" {
		t.Fatalf("static-creds of a period role after a rotation: %v", sc.Data)
	}
	// A static key's ledger entry and its listing, against the same
	// declared fields as an issued key's.
	if sc := r.do(logical.ReadOperation, "static-creds/st", nil); r.do(logical.ReadOperation, "keys/"+sc.Data["api_key_id"].(string), nil).Data["static_role"] != "st" {
		t.Fatal("the static key's ledger entry does not name its static role")
	}
	r.do(logical.ListOperation, "keys/", map[string]interface{}{"static_role": "st"})
	if sc := r.do(logical.ReadOperation, "static-creds/cron", nil); sc.Data["rotation_schedule"] == nil {
		t.Fatalf("static-creds of a schedule role shows no rotation_schedule: %v", sc.Data)
	}
	r.do(logical.DeleteOperation, "static-roles/st", nil)
	r.do(logical.DeleteOperation, "static-roles/cron", nil)

	// Revoke every lease so config may be deleted, then delete.
	r.do(logical.DeleteOperation, "roles/long", nil)
	r.do(logical.DeleteOperation, "roles/app", nil)
	r.do(logical.DeleteOperation, "config", map[string]interface{}{"force": true})

	// Every operation of every path was exercised.
	var missing []string
	for _, p := range e.b.Paths {
		for op := range p.Operations {
			if r.seen[opKey(p.Pattern, op)] == 0 {
				missing = append(missing, opKey(p.Pattern, op))
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("operations this test never exercised (add them, with their optional fields present): %s", strings.Join(missing, ", "))
	}
}

// wantOperationIDs are the operation ids Vault's OpenAPI document gives
// each path of the mount; the e2e test (e2e/openapi_test.go) checks the same
// table against a real Vault.
var wantOperationIDs = operationids.ByPath()

// TestOpenAPIOperationIDs generates the backend's OpenAPI document as Vault
// does (a help request on the root) and checks its paths and operation ids.
func TestOpenAPIOperationIDs(t *testing.T) {
	e := newTestEnv(t, withSystemView(&logical.StaticSystemView{
		DefaultLeaseTTLVal: testDefaultLeaseTTL, MaxLeaseTTLVal: testMaxLeaseTTL,
		PluginEnvironment: &logical.PluginEnvironment{VaultVersion: "test"},
	}))
	resp, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.HelpOperation, Path: "", Storage: e.storage})
	if err != nil {
		t.Fatal(err)
	}
	doc, ok := resp.Data["openapi"].(*framework.OASDocument)
	if !ok {
		t.Fatalf("help response carries no OpenAPI document: %T", resp.Data["openapi"])
	}
	got := map[string]map[string]string{}
	for path, item := range doc.Paths {
		ops := map[string]string{}
		for method, op := range map[string]*framework.OASOperation{"get": item.Get, "post": item.Post, "delete": item.Delete, "patch": item.Patch} {
			if op != nil {
				ops[method] = op.OperationID
			}
		}
		if strings.HasSuffix(path, "/") && item.Get != nil {
			// a list operation is a GET with list=true
			ops = map[string]string{"list": item.Get.OperationID}
		}
		got[path] = ops
	}
	if fmt.Sprint(got) != fmt.Sprint(wantOperationIDs) {
		t.Errorf("OpenAPI operation ids:\n got %v\nwant %v", got, wantOperationIDs)
	}
}
