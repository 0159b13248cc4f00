package backend

import (
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
