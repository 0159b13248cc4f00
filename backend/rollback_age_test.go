package backend

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// Defect 9 of issue 9: no create outlasts the WAL rollback age.

func TestFactory_RefusesRollbackAgeShorterThanAnyCreate(t *testing.T) {
	for v, ok := range map[string]bool{"0s": false, "1s": false, "2s": false, "-5s": false, "soon": false, "3s": true, "5m": true} {
		t.Setenv(walRollbackMinAgeEnv, v)
		conf := logical.TestBackendConfig()
		conf.StorageView = &logical.InmemStorage{}
		conf.Logger = hclog.NewNullLogger()
		_, err := Factory(context.Background(), conf)
		switch {
		case ok && err != nil:
			t.Errorf("%s=%s refused: %v", walRollbackMinAgeEnv, v, err)
		case !ok && err == nil:
			t.Errorf("%s=%s accepted; a create can outlast it (Vault turns 0 into 10m)", walRollbackMinAgeEnv, v)
		case !ok && !strings.Contains(err.Error(), walRollbackMinAgeEnv):
			t.Errorf("%s=%s: error %q does not name the variable", walRollbackMinAgeEnv, v, err)
		}
	}
}

// With the default 5m age, a config whose worst-case create (retry_budget
// plus one request_timeout) reaches it is refused, naming both fields.
func TestConfig_RefusesCreatesThatCouldOutlastTheRollbackAge(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	for _, data := range []map[string]interface{}{
		{"request_timeout": "5m"},
		{"request_timeout": "4m", "retry_budget": "80s"},
	} {
		e.mustBadRequest(logical.UpdateOperation, "config", data, "request_timeout")
		e.mustBadRequest(logical.UpdateOperation, "config", data, "retry_budget")
	}
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{"request_timeout": "4m", "retry_budget": "30s"})
}

// A create is cut off below the rollback age even when stored config (say
// one written before the check existed) would let it run longer.
func TestIssue_CreateEndsBeforeTheRollbackAge(t *testing.T) {
	t.Setenv(walRollbackMinAgeEnv, "3s")
	e := newTestEnv(t)
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{
		"admin_api_key": e.fake.AdminKey(), "base_url": e.url, "request_timeout": "1s", "retry_budget": "1s",
	})
	e.writeRole("app", map[string]interface{}{})
	cfg := e.storedConfig()
	cfg.RequestTimeout = 30 * time.Second
	if err := putConfig(t.Context(), e.storage, cfg); err != nil {
		t.Fatal(err)
	}
	e.b.resetClient()
	e.fake.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{{
		Ops: []fakeopenai.Op{fakeopenai.OpCreateServiceAccount}, Kind: fakeopenai.FaultHold, Count: 1, Hold: 4 * time.Second,
	}}})
	start := time.Now()
	resp, err := e.do(logical.UpdateOperation, "creds/app", nil)
	took := time.Since(start)
	if err == nil && !resp.IsError() {
		t.Fatalf("issue returned after %s although its create ran past the 3s rollback age", took)
	}
	if took >= 3*time.Second {
		t.Fatalf("create ran %s, past the 3s rollback age", took)
	}
	t.Logf("create cut off after %s: %v", took.Round(time.Millisecond), err)
}
