package backend

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

func TestRoles_CRUDAndList(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("alpha", map[string]interface{}{"ttl": "1h", "max_ttl": "2h"})
	e.writeRole("beta", map[string]interface{}{"name_template": "app-{{ random 10 }}"})

	resp := e.mustOK(logical.ReadOperation, "roles/alpha", nil)
	if resp.Data["project_id"] != fakeopenai.ProjectActive || resp.Data["ttl"] != int64(3600) || resp.Data["max_ttl"] != int64(7200) || resp.Data["name_template"] != defaultNameTemplate {
		t.Fatalf("role alpha = %v", resp.Data)
	}

	list := e.mustOK(logical.ListOperation, "roles/", nil)
	keys := list.Data["keys"].([]string)
	sort.Strings(keys)
	if strings.Join(keys, ",") != "alpha,beta" {
		t.Fatalf("list = %v", keys)
	}

	// An update changes only what it names.
	e.mustOK(logical.UpdateOperation, "roles/alpha", map[string]interface{}{"ttl": "30m"})
	resp = e.mustOK(logical.ReadOperation, "roles/alpha", nil)
	if resp.Data["ttl"] != int64(1800) || resp.Data["max_ttl"] != int64(7200) {
		t.Fatalf("after update: %v", resp.Data)
	}

	e.mustOK(logical.DeleteOperation, "roles/alpha", nil)
	if resp := e.mustOK(logical.ReadOperation, "roles/alpha", nil); resp != nil {
		t.Fatalf("deleted role still readable: %v", resp.Data)
	}
}

func TestRoles_ProjectCheckedOnlyWhenItChanges(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("r", map[string]interface{}{})
	e.fake.ResetCalls()
	e.mustOK(logical.UpdateOperation, "roles/r", map[string]interface{}{"ttl": "5m"})
	if n := e.fake.Calls()[fakeopenai.OpGetProject]; n != 0 {
		t.Fatalf("unchanged project was checked %d times", n)
	}
	e.fake.AddProject("proj_second", "Second", "active")
	e.mustOK(logical.UpdateOperation, "roles/r", map[string]interface{}{"project_id": "proj_second"})
	if n := e.fake.Calls()[fakeopenai.OpGetProject]; n != 1 {
		t.Fatalf("changed project checked %d times, want 1", n)
	}
}

func TestRoles_BadInput(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	cases := []struct {
		name string
		path string
		data map[string]interface{}
		want string
	}{
		{"missing project", "roles/r", map[string]interface{}{}, "project_id"},
		{"unknown project", "roles/r", map[string]interface{}{"project_id": "proj_missing"}, `project_id "proj_missing" was not found`},
		{"archived project", "roles/r", map[string]interface{}{"project_id": fakeopenai.ProjectArchived}, "archived"},
		{"path in project", "roles/r", map[string]interface{}{"project_id": "proj_x/../../admin_api_keys"}, "project_id"},
		{"bad template syntax", "roles/r", map[string]interface{}{"project_id": fakeopenai.ProjectActive, "name_template": "{{ .RoleName"}, "name_template"},
		{"unknown template field", "roles/r", map[string]interface{}{"project_id": fakeopenai.ProjectActive, "name_template": "{{ .Nope }}-{{ random 5 }}"}, "name_template"},
		{"template renders empty", "roles/r", map[string]interface{}{"project_id": fakeopenai.ProjectActive, "name_template": "!!!"}, "name_template"},
		{"ttl over max", "roles/r", map[string]interface{}{"project_id": fakeopenai.ProjectActive, "ttl": "2h", "max_ttl": "1h"}, "ttl"},
		{"negative ttl", "roles/r", map[string]interface{}{"project_id": fakeopenai.ProjectActive, "ttl": -10}, "ttl"},
		{"max_ttl over a year", "roles/r", map[string]interface{}{"project_id": fakeopenai.ProjectActive, "max_ttl": "9000h"}, "max_ttl"},
		{"ttl not a duration", "roles/r", map[string]interface{}{"project_id": fakeopenai.ProjectActive, "ttl": "forever"}, "ttl"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.t = t
			e.mustBadRequest(logical.UpdateOperation, c.path, c.data, c.want)
			if r, _ := getRole(t.Context(), e.storage, "r"); r != nil {
				t.Fatal("a refused role write stored something")
			}
		})
	}
}

func TestRoles_RequireConfigForProjectCheck(t *testing.T) {
	e := newTestEnv(t)
	e.mustBadRequest(logical.UpdateOperation, "roles/r", map[string]interface{}{"project_id": fakeopenai.ProjectActive}, "not configured")
}

func TestRoles_InvalidNamesDoNotRoute(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	for _, name := range []string{"{{bad}}", "a b", "-lead", "x/y"} {
		resp, err := e.do(logical.UpdateOperation, "roles/"+name, map[string]interface{}{"project_id": fakeopenai.ProjectActive})
		if err == nil && (resp == nil || !resp.IsError()) {
			t.Errorf("role name %q accepted", name)
		}
	}
}

func TestSanitizeName(t *testing.T) {
	cases := map[string]string{
		"vault-app-token-1-abc":   "vault-app-token-1-abc",
		"  spaces and ünïcode ✓ ": "spaces-and-n-code",
		"{{x}}/..//":              "x",
		"---":                     "",
		"a..b":                    "a..b",
	}
	for in, want := range cases {
		if got := sanitizeName(in); got != want {
			t.Errorf("sanitizeName(%q) = %q, want %q", in, got, want)
		}
	}
	long := strings.Repeat("x", 300) + "-TAILrandom"
	got := sanitizeName(long)
	if len(got) > maxNameLength || !strings.HasSuffix(got, "TAILrandom") {
		t.Fatalf("long name shortened to %q (%d)", got, len(got))
	}
}

func TestNameTemplate_DefaultRenders(t *testing.T) {
	tmpl, err := parseNameTemplate(defaultNameTemplate)
	if err != nil {
		t.Fatal(err)
	}
	name, err := tmpl.render(nameTemplateData{RoleName: "app", DisplayName: "userpass-alice", MountAccessor: "m"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(name, "vault-app-userpass-alice-") || len(name) > maxNameLength {
		t.Fatalf("default name %q", name)
	}
}

// Names the path pattern admits but Vault's storage refuses ("..": relative
// paths not supported) or that no storage backend can hold (over 128
// characters) are a 400 naming the field on every path that takes a role name,
// never a 500. Storage is wrapped in a logical.StorageView, which refuses ".."
// keys as Vault's barrier does (the bare in-memory storage accepts them).
func TestRoles_UnstorableNamesAre400(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.storage = logical.NewStorageView(e.storage, "")
	long := strings.Repeat("n", maxRoleNameLength+1)
	names := []string{"bad..name", "a..b", "x...y", "BAD..Name", long}
	ops := []struct {
		op   logical.Operation
		path string
		data map[string]interface{}
	}{
		{logical.UpdateOperation, "roles/", map[string]interface{}{"project_id": fakeopenai.ProjectActive}},
		{logical.CreateOperation, "roles/", map[string]interface{}{"project_id": fakeopenai.ProjectActive}},
		{logical.ReadOperation, "roles/", nil},
		{logical.DeleteOperation, "roles/", nil},
		{logical.ReadOperation, "creds/", nil},
		{logical.UpdateOperation, "creds/", map[string]interface{}{"ttl": "5m"}},
	}
	for _, name := range names {
		for _, o := range ops {
			path := o.path + name
			label := fmt.Sprintf("%s %s", o.op, path)
			if len(label) > 60 {
				label = label[:60] + "..."
			}
			req := &logical.Request{Operation: o.op, Path: path, Data: o.data, Storage: e.storage}
			// Vault runs the existence check before create/update; an error there
			// is a 500 of its own.
			if o.op == logical.UpdateOperation || o.op == logical.CreateOperation {
				if _, _, err := e.b.HandleExistenceCheck(context.Background(), req); err != nil {
					t.Errorf("%s: existence check failed: %v", label, err)
				}
			}
			resp, err := e.b.HandleRequest(context.Background(), req)
			code, rerr := logical.RespondErrorCommon(req, resp, err)
			if code != http.StatusBadRequest || rerr == nil {
				t.Errorf("%s: status %d (%v), want 400", label, code, rerr)
				continue
			}
			if !strings.Contains(rerr.Error(), "name") {
				t.Errorf("%s: error %q does not name the field", label, rerr)
			}
		}
	}
	if n := len(e.fake.LiveAccounts()); n != 0 {
		t.Fatalf("%d accounts created for unstorable role names", n)
	}
	// The longest allowed name still works end to end.
	ok := strings.Repeat("n", maxRoleNameLength)
	e.writeRole(ok, map[string]interface{}{})
	e.mustOK(logical.ReadOperation, "creds/"+ok, nil)
}

// Names the pattern does not admit at all ("..", "a/..", "../x") never reach a
// handler: Vault answers them as unsupported paths (404), not 500.
func TestRoles_DotDotPathsDoNotRoute(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	for _, path := range []string{"roles/..", "roles/a/..", "roles/../config", "creds/..", "creds/a/..", "creds/../roles/x"} {
		for _, op := range []logical.Operation{logical.ReadOperation, logical.UpdateOperation, logical.DeleteOperation} {
			req := &logical.Request{Operation: op, Path: path, Data: map[string]interface{}{"project_id": fakeopenai.ProjectActive}, Storage: logical.NewStorageView(e.storage, "")}
			resp, err := e.b.HandleRequest(context.Background(), req)
			code, _ := logical.RespondErrorCommon(req, resp, err)
			if code < 400 || code >= 500 {
				t.Errorf("%s %s: status %d (%v), want 4xx", op, path, code, err)
			}
		}
	}
}
