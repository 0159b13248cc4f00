package backend

import (
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestTidy_ConfigField(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	if got := e.mustOK(logical.ReadOperation, "config", nil).Data["tidy_interval"]; got != int64(3600) {
		t.Fatalf("default tidy_interval %v, want 3600", got)
	}
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{"tidy_interval": "15m"})
	if got := e.mustOK(logical.ReadOperation, "config", nil).Data["tidy_interval"]; got != int64(900) {
		t.Fatalf("tidy_interval %v, want 900", got)
	}
	e.mustBadRequest(logical.UpdateOperation, "config", map[string]interface{}{"tidy_interval": "-1s"}, "tidy_interval")
	e.mustBadRequest(logical.UpdateOperation, "config", map[string]interface{}{"tidy_interval": "soon"}, "tidy_interval")
}
