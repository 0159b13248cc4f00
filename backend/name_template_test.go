package backend

import (
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// Issue 11, item 8: a bad template variable is refused with the list of the
// valid ones, not an error naming the engine's internal Go type.
func TestNameTemplate_UnknownVariableListsTheValidOnes(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	for _, tmpl := range []string{`{{ .Nope }}`, `{{ .RoleName.Length }}`, `{{ $.Role }}`, `x-{{ .displayname }}`} {
		resp, err := e.do(logical.UpdateOperation, "roles/r", map[string]interface{}{"project_id": fakeopenai.ProjectActive, "name_template": tmpl})
		if err != nil || resp == nil || !resp.IsError() {
			t.Fatalf("%q: want a 400, got %v %v", tmpl, resp, err)
		}
		msg := resp.Error().Error()
		if !strings.Contains(msg, ".RoleName, .DisplayName, .MountAccessor") || strings.Contains(msg, "nameTemplateData") || strings.Contains(msg, "backend.") {
			t.Fatalf("%q: error %q does not list the valid variables (or names a Go type)", tmpl, msg)
		}
	}
	for _, tmpl := range []string{`{{ .RoleName }}-{{ .DisplayName }}-{{ .MountAccessor }}`, `{{ with $r := .RoleName }}{{ $r }}{{ end }}`, `{{ $.RoleName }}`} {
		e.writeRole("ok", map[string]interface{}{"name_template": tmpl})
	}
}

// Defect 1 of issue 9: names are unique by construction, and rollback finds
// exactly the accounts its own create made.

// An 84-character display name (a Kubernetes service-account token) and a
// 32-character role name: before the fix, shortening cut the template's
// random part away and every issue rendered the same name.
const (
	longDisplayName = "kubernetes-payments-production-namespace-payments-api-worker-sa-0123456789abcdefghij"
	longRoleName    = "payments-api-worker-role-abcdefg"
	issueTemplate   = `{{ .DisplayName }}-{{ random 8 }}-{{ .RoleName }}`
)

// tokenSuffix is the engine's unique part: "-" and 12 base62 characters.
var tokenSuffix = regexp.MustCompile(`-[0-9A-Za-z]{12}$`)

func TestNames_UniqueWhateverTheTemplateAndDisplayName(t *testing.T) {
	if len(longDisplayName) != 84 || len(longRoleName) != 32 {
		t.Fatalf("fixture lengths %d, %d", len(longDisplayName), len(longRoleName))
	}
	e := newTestEnv(t)
	e.configure()
	for _, tmpl := range []string{issueTemplate, `svc-{{ random 1 }}`, `{{ .RoleName }}`, `fixed-name`} {
		e.writeRole(longRoleName, map[string]interface{}{"name_template": tmpl})
		seen := map[string]bool{}
		const n = 20
		for i := 0; i < n; i++ {
			resp, err := e.issueAs(longRoleName, longDisplayName)
			if err != nil {
				t.Fatalf("template %q: issue: %v", tmpl, err)
			}
			name := resp.Data["service_account_name"].(string)
			assertAcceptableName(t, name)
			if !tokenSuffix.MatchString(name) {
				t.Fatalf("template %q: name %q does not end in the engine's token", tmpl, name)
			}
			seen[name] = true
		}
		if len(seen) != n {
			t.Fatalf("template %q: %d issues gave %d distinct names", tmpl, n, len(seen))
		}
		t.Logf("template %q: %d distinct names, e.g. %s", tmpl, len(seen), firstKey(seen))
	}
}
