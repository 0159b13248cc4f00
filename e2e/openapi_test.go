//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"io"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-plugin-openai/vault-plugin-openai/backend"
	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
	"github.com/vault-plugin-openai/vault-plugin-openai/internal/operationids"
)

// The engine's API as Vault publishes it: sys/internal/specs/openapi on a
// real Vault with the plugin mounted, and `vault path-help`.

// wantOpenAPI is every path of the mount, by its OpenAPI path, and the
// operation id of each method ("list" is the GET with list=true). The same
// table is checked against the backend in-process by
// backend.TestOpenAPIOperationIDs.
var wantOpenAPI = operationids.ByPath()

// concretePath turns an OpenAPI path into one request path of the mount.
func concretePath(p string) string {
	r := strings.NewReplacer("{name}", "r", "{api_key_id}", "key_abc123")
	return strings.TrimPrefix(r.Replace(p), "/")
}

type oasParam struct {
	Name string `json:"name"`
	In   string `json:"in"`
}

type oasSchemaRef struct {
	Ref        string                     `json:"$ref"`
	Properties map[string]json.RawMessage `json:"properties"`
}

type oasMedia struct {
	Schema oasSchemaRef `json:"schema"`
}

type oasResponse struct {
	Description string              `json:"description"`
	Content     map[string]oasMedia `json:"content"`
}

type oasOperation struct {
	OperationID string     `json:"operationId"`
	Parameters  []oasParam `json:"parameters"`
	RequestBody *struct {
		Content map[string]oasMedia `json:"content"`
	} `json:"requestBody"`
	Responses map[string]oasResponse `json:"responses"`
}

type oasPath struct {
	Parameters []oasParam    `json:"parameters"`
	Get        *oasOperation `json:"get"`
	Post       *oasOperation `json:"post"`
	Delete     *oasOperation `json:"delete"`
	Patch      *oasOperation `json:"patch"`
}

type oasDoc struct {
	Paths      map[string]oasPath `json:"paths"`
	Components struct {
		Schemas map[string]oasSchemaRef `json:"schemas"`
	} `json:"components"`
}

func readOpenAPI(t *testing.T, v *Vault) *oasDoc {
	t.Helper()
	resp, err := v.Client.Logical().ReadRawWithContext(context.Background(), "sys/internal/specs/openapi")
	if err != nil {
		t.Fatalf("reading sys/internal/specs/openapi: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var doc oasDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("OpenAPI document: %v", err)
	}
	return &doc
}

// methods maps the OpenAPI methods of a path to our table's names.
func (p oasPath) methods(listPath bool) map[string]*oasOperation {
	m := map[string]*oasOperation{}
	if p.Get != nil {
		if listPath {
			m["list"] = p.Get
		} else {
			m["get"] = p.Get
		}
	}
	for name, op := range map[string]*oasOperation{"post": p.Post, "delete": p.Delete, "patch": p.Patch} {
		if op != nil {
			m[name] = op
		}
	}
	return m
}

// declaredFields is what an operation's success response documents: the
// properties of its 200 response schema, and whether it has a 204.
func (d *oasDoc) declaredFields(t *testing.T, op *oasOperation) (fields map[string]bool, mediaTypes []string, noContent bool) {
	t.Helper()
	fields = map[string]bool{}
	_, noContent = op.Responses["204"]
	ok, has200 := op.Responses["200"]
	if !has200 {
		return fields, nil, noContent
	}
	for mt := range ok.Content {
		mediaTypes = append(mediaTypes, mt)
	}
	// Vault's document names the schema after the operation id, but the
	// served document drops the $ref to it: look it up by that name.
	if len(ok.Content) > 0 {
		if s, found := d.Components.Schemas[titleCase(op.OperationID)+"Response"]; found {
			for name := range s.Properties {
				fields[name] = true
			}
		}
	}
	return fields, mediaTypes, noContent
}

// engineFields are the request fields of the framework path serving each
// request path, from the plugin's own code (built in-process).
func engineFields(t *testing.T) func(path string) map[string]*framework.FieldSchema {
	t.Helper()
	conf := logical.TestBackendConfig()
	conf.StorageView = &logical.InmemStorage{}
	b, err := backend.Factory(context.Background(), conf)
	if err != nil {
		t.Fatal(err)
	}
	fb := reflect.ValueOf(b).Elem().FieldByName("Backend").Interface().(*framework.Backend)
	return func(path string) map[string]*framework.FieldSchema {
		p := fb.Route(path)
		if p == nil {
			t.Fatalf("the engine has no path for %q", path)
		}
		return p.Fields
	}
}

// titleCase is Vault's name for an operation's schemas: openai-read-role
// is OpenaiReadRole(Request|Response).
func titleCase(operationID string) string {
	parts := strings.Split(operationID, "-")
	for i, p := range parts {
		if p != "" {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestOpenAPIDocument: every path of the mount is in Vault's OpenAPI
// document with the expected operation ids and no other; each path's
// parameters (path, query and body) are exactly the engine's fields; every
// operation declares a success response; and every field a real response
// carries is declared.
func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	v, _ := setupEngine(t, nil)
	doc := readOpenAPI(t, v)
	fieldsOf := engineFields(t)

	// Paths and operation ids.
	got := map[string]map[string]string{}
	for p, item := range doc.Paths {
		rel, ok := strings.CutPrefix(p, "/openai/")
		if !ok {
			continue
		}
		rel = "/" + rel
		ops := map[string]string{}
		for m, op := range item.methods(strings.HasSuffix(rel, "/")) {
			ops[m] = op.OperationID
		}
		got[rel] = ops
	}
	for _, p := range sortedKeys(wantOpenAPI) {
		if !reflect.DeepEqual(got[p], wantOpenAPI[p]) {
			t.Errorf("OpenAPI /openai%s: operation ids %v, want %v", p, got[p], wantOpenAPI[p])
		}
	}
	for _, p := range sortedKeys(got) {
		if _, ok := wantOpenAPI[p]; !ok {
			t.Errorf("OpenAPI has /openai%s (%v), which the test does not know: add it to wantOpenAPI", p, got[p])
		}
	}

	// Parameters: per path, the union of path parameters, GET/DELETE query
	// parameters (list=true aside) and POST body properties is exactly the
	// engine's fields for that path.
	for _, p := range sortedKeys(wantOpenAPI) {
		item, ok := doc.Paths["/openai"+p]
		if !ok {
			continue // reported above
		}
		documented := map[string]bool{}
		for _, prm := range item.Parameters {
			documented[prm.Name] = true
		}
		for m, op := range item.methods(strings.HasSuffix(p, "/")) {
			for _, prm := range op.Parameters {
				if prm.In == "query" && prm.Name != "list" {
					documented[prm.Name] = true
				}
			}
			if op.RequestBody != nil {
				s, found := doc.Components.Schemas[titleCase(op.OperationID)+"Request"]
				if !found {
					t.Errorf("/openai%s %s: request body without a %sRequest schema", p, m, titleCase(op.OperationID))
				}
				for name := range s.Properties {
					documented[name] = true
				}
			}
			if len(op.Responses) == 0 {
				t.Errorf("/openai%s %s: no responses", p, m)
			}
			if _, ok := op.Responses["200"]; !ok {
				if _, ok := op.Responses["204"]; !ok {
					t.Errorf("/openai%s %s (%s): neither a 200 nor a 204 response is declared", p, m, op.OperationID)
				}
			}
		}
		want := map[string]bool{}
		for name := range fieldsOf(concretePath(p)) {
			want[name] = true
		}
		if !reflect.DeepEqual(documented, want) {
			t.Errorf("/openai%s: documented parameters %v, the engine's fields %v", p, sortedKeys(documented), sortedKeys(want))
		}
	}

	// Real responses carry only declared fields. Each call names the
	// OpenAPI path and method whose declaration it is checked against.
	opOf := func(p, method string) *oasOperation {
		item := doc.Paths["/openai"+p]
		op := item.methods(strings.HasSuffix(p, "/"))[method]
		if op == nil {
			t.Fatalf("/openai%s has no %s operation", p, method)
		}
		return op
	}
	checked := map[string]bool{}
	var checkResp func(p, method string, s *api.Secret, err error) *api.Secret
	check := func(p, method string) func(*api.Secret, error) *api.Secret {
		return func(s *api.Secret, err error) *api.Secret { return checkResp(p, method, s, err) }
	}
	checkResp = func(p, method string, s *api.Secret, err error) *api.Secret {
		t.Helper()
		if err != nil {
			t.Fatalf("%s /openai%s: %v", method, p, err)
		}
		op := opOf(p, method)
		checked[op.OperationID] = true
		declared, _, noContent := doc.declaredFields(t, op)
		if s == nil || len(s.Data) == 0 {
			if !noContent && len(declared) > 0 && (s == nil || s.LeaseID == "") {
				t.Errorf("%s (%s): answered no data, but declares fields %v and no 204", op.OperationID, method, sortedKeys(declared))
			}
			return s
		}
		for k := range s.Data {
			if !declared[k] {
				t.Errorf("%s: the response carries %q, which its OpenAPI response does not declare (declared: %v)", op.OperationID, k, sortedKeys(declared))
			}
		}
		return s
	}
	l := v.Client.Logical()
	read := func(path string, q map[string][]string) (*api.Secret, error) {
		return l.ReadWithDataWithContext(context.Background(), "openai/"+path, q)
	}

	check("/config", "get")(read("config", nil))
	check("/config", "post")(l.Write("openai/config", map[string]any{"max_retries": 3}))
	check("/roles/{name}", "post")(l.Write("openai/roles/s", map[string]any{"project_id": fakeopenai.ProjectActive, "scopes": "api.model.read"}))
	check("/roles/{name}", "get")(read("roles/r", nil))
	check("/roles/", "list")(l.List("openai/roles/"))
	c := check("/creds/{name}", "get")(read("creds/r", nil))
	v.AddSecret(c.Data["api_key"].(string))
	c2 := check("/creds/{name}", "post")(l.Write("openai/creds/s", map[string]any{"ttl": "10m", "scopes": "api.model.read"}))
	v.AddSecret(c2.Data["api_key"].(string))
	keyID, key := c.Data["api_key_id"].(string), c.Data["api_key"].(string)
	check("/keys/", "list")(l.ReadWithData("openai/keys/", map[string][]string{"list": {"true"}, "limit": {"1"}}))
	check("/keys/{api_key_id}", "get")(read("keys/"+keyID, nil))
	check("/keys/lookup", "post")(l.Write("openai/keys/lookup", map[string]any{"api_key": key}))
	check("/keys/lookup", "get")(read("keys/lookup", map[string][]string{"redacted_value": {"sk-svcacct-..." + key[len(key)-4:]}}))
	check("/usage/{name}", "get")(read("usage/r", nil))
	check("/usage", "get")(read("usage", nil))
	check("/tidy", "post")(l.Write("openai/tidy", map[string]any{"dry_run": true}))
	check("/config/rotate-root", "post")(l.Write("openai/config/rotate-root", nil))
	check("/roles/{name}", "delete")(l.Delete("openai/roles/s"))

	// static roles: one on a 1h period with a 10m overlap, rotated once so
	// the previous key shows, read, listed, its key read, deleted.
	check("/static-roles/{name}", "post")(l.Write("openai/static-roles/st", map[string]any{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "1h", "overlap": "10m",
	}))
	first := check("/static-creds/{name}", "get")(read("static-creds/st", nil))
	v.AddSecret(first.Data["api_key"].(string))
	if rot := check("/static-roles/{name}/rotate", "post")(l.Write("openai/static-roles/st/rotate", nil)); rot.Data["previous_api_key_id"] != first.Data["api_key_id"] {
		t.Errorf("static rotate: previous_api_key_id %v, want %v", rot.Data["previous_api_key_id"], first.Data["api_key_id"])
	}
	check("/static-roles/{name}", "get")(read("static-roles/st", nil))
	check("/static-roles/", "list")(l.List("openai/static-roles/"))
	sc := check("/static-creds/{name}", "get")(read("static-creds/st", nil))
	v.AddSecret(sc.Data["api_key"].(string))
	check("/static-roles/{name}", "delete")(l.Delete("openai/static-roles/st"))

	// metrics: a raw text body, declared as such.
	mop := opOf("/metrics", "get")
	checked[mop.OperationID] = true
	// Vault's document shows a media type only with an example, so the
	// declaration shows as a 200 with no JSON body and a description
	// naming the format; the answer itself must then be that text.
	if fields, types, _ := doc.declaredFields(t, mop); len(fields) != 0 || len(types) != 0 ||
		!strings.Contains(mop.Responses["200"].Description, "Prometheus text exposition format") {
		t.Errorf("%s: declared 200 %+v, fields %v, media types %v; want no JSON body and a description naming the text format",
			mop.OperationID, mop.Responses["200"], fields, types)
	}
	resp, err := v.Client.Logical().ReadRawWithContext(context.Background(), "openai/metrics")
	if err != nil {
		t.Fatalf("GET openai/metrics: %v", err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("openai/metrics answers Content-Type %q, declared text/plain", ct)
	}

	// Last: config delete (forced: keys are live), then nothing is left to call.
	check("/config", "delete")(l.DeleteWithData("openai/config", map[string][]string{"force": {"true"}}))
	for _, ids := range wantOpenAPI {
		for _, id := range ids {
			if !checked[id] {
				t.Errorf("operation %s was never called against its declaration", id)
			}
		}
	}
}

// TestPathHelpShowsFields: `vault path-help` of every path of the mount
// succeeds and names each of the path's fields.
func TestPathHelpShowsFields(t *testing.T) {
	t.Parallel()
	v, _ := setupEngine(t, nil)
	fieldsOf := engineFields(t)
	for _, p := range sortedKeys(wantOpenAPI) {
		path := concretePath(p)
		out, stderr, code := v.CLI("path-help", "openai/"+path)
		if code != 0 {
			t.Errorf("vault path-help openai/%s: exit %d: %s", path, code, stderr)
			continue
		}
		fields := fieldsOf(path)
		for name := range fields {
			if !strings.Contains(out, name) {
				t.Errorf("vault path-help openai/%s does not mention its field %q:\n%s", path, name, out)
			}
		}
		t.Logf("path-help openai/%s: %d fields shown", path, len(fields))
	}
}
