//go:build e2e

// Package e2e drives the real plugin binary through a real Vault server process.
//
// Run it with `make test-e2e` (or `go test -tags e2e ./e2e/...` with VAULT_BIN set;
// without VAULT_BIN, scripts/vault.sh finds or builds Vault). TestMain builds the
// plugin once; every test starts its own Vault and its own in-process fake Admin API,
// so tests run in parallel and assert against the fake's record of live accounts.
// The harness itself is the package e2e/harness (shared with the benchmark in
// bench/); harness_*_test.go files here adapt it to the tests' names.
package e2e

import (
	"testing"

	"github.com/vault-plugin-openai/vault-plugin-openai/e2e/harness"
)

const pluginName = harness.PluginName

// suite is harness.Suite, copied once by TestMain and read-only afterwards.
var suite struct {
	vaultBin   string
	repoRoot   string
	pluginDir  string // holds only the plugin binary, shared by Vaults that need no tampering
	pluginPath string
	pluginSHA  string
	version    string
}

func TestMain(m *testing.M) {
	// A race-enabled test binary builds a race-enabled plugin: the harness then fails
	// any test whose Vault log shows the plugin reporting a data race. Tag
	// crashpoints adds the stopping points crash_points_test.go kills Vault at;
	// they do nothing unless a test sets OPENAI_PLUGIN_CRASHPOINT.
	harness.Main(m, "..", harness.Build{Race: raceEnabled, Tags: "crashpoints"}, func() {
		s := &harness.Suite
		suite.vaultBin, suite.repoRoot, suite.pluginDir = s.VaultBin, s.RepoRoot, s.PluginDir
		suite.pluginPath, suite.pluginSHA, suite.version = s.PluginPath, s.PluginSHA, s.Version
	})
}
