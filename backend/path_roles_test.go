package backend

import (
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
		{"template not unique", "roles/r", map[string]interface{}{"project_id": fakeopenai.ProjectActive, "name_template": "{{ .RoleName }}"}, "unique"},
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
