package backend

import (
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// name_template of a static role names the account the engine creates,
// with the dynamic roles' template code and conventions.
func TestStatic_NameTemplate(t *testing.T) {
	e := newStaticEnv(t)
	e.mustOK(logical.UpdateOperation, "static-roles/plain", map[string]interface{}{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "2h",
	})
	if r := e.staticRole("plain"); !strings.HasPrefix(r.ServiceAccountName, "vault-static-plain-") || !nameHasToken(r.ServiceAccountName, r.ServiceAccountName[len(r.ServiceAccountName)-uniqueTokenLength:]) || r.NameTemplate != defaultStaticNameTemplate {
		t.Fatalf("default name: %q (template %q)", r.ServiceAccountName, r.NameTemplate)
	}

	e.mustOK(logical.UpdateOperation, "static-roles/billing", map[string]interface{}{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "2h",
		"name_template": "team-ml-{{ .RoleName | uppercase }}",
	})
	r := e.staticRole("billing")
	if !strings.HasPrefix(r.ServiceAccountName, "team-ml-BILLING-") || len(r.ServiceAccountName) != len("team-ml-BILLING-")+uniqueTokenLength {
		t.Fatalf("templated name: %q", r.ServiceAccountName)
	}
	if got := e.mustOK(logical.ReadOperation, "static-roles/billing", nil).Data["name_template"]; got != "team-ml-{{ .RoleName | uppercase }}" {
		t.Fatalf("read name_template: %v", got)
	}
	found := false
	for _, a := range e.fake.LiveAccounts() {
		found = found || (a.ID == r.ServiceAccountID && a.Name == r.ServiceAccountName)
	}
	if !found {
		t.Fatal("the account at the fake does not carry the templated name")
	}

	before := len(e.fake.LiveAccounts())
	e.mustBadRequest(logical.UpdateOperation, "static-roles/billing", map[string]interface{}{"name_template": "x"}, "name_template: names the account the engine creates, so it is taken only when the role is created")
	e.mustBadRequest(logical.UpdateOperation, "static-roles/own", map[string]interface{}{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "2h", "service_account_id": r.ServiceAccountID, "name_template": "x",
	}, "name_template: names the account the engine creates; not with service_account_id")
	e.mustBadRequest(logical.UpdateOperation, "static-roles/bad", map[string]interface{}{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "2h", "name_template": "{{ .Nope }}",
	}, "name_template:")
	e.mustBadRequest(logical.UpdateOperation, "static-roles/empty", map[string]interface{}{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "2h", "name_template": "{{ \"\" }}",
	}, "name_template:")
	if n := len(e.fake.LiveAccounts()); n != before {
		t.Fatalf("refused writes created accounts: %d, was %d", n, before)
	}
}
