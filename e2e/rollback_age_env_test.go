//go:build e2e

package e2e

import (
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"
)

// Vault turns a WALRollbackMinAge of 0 into ten minutes,
// and any age shorter than a create lets rollback act on an issue in flight.
// Such a value must stop the plugin at start, and the operator enabling the
// mount must see which variable is wrong.
func TestRollbackAgeTooShortRefusedAtPluginStart(t *testing.T) {
	t.Parallel()
	v := startVault(t, VaultOptions{})
	registerPlugin(t, v, "OPENAI_PLUGIN_WAL_ROLLBACK_MIN_AGE=0s")
	err := v.Client.Sys().Mount("openai", &api.MountInput{
		Type:   pluginName,
		Config: api.MountConfigInput{PluginVersion: suite.version},
	})
	if err == nil {
		t.Fatal("the plugin mounted with OPENAI_PLUGIN_WAL_ROLLBACK_MIN_AGE=0s")
	}
	if !strings.Contains(err.Error(), "OPENAI_PLUGIN_WAL_ROLLBACK_MIN_AGE") {
		t.Fatalf("enable failed without naming the variable: %v", err)
	}
	t.Logf("secrets enable: %v", err)
}
