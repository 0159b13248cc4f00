//go:build e2e

package e2e

// The tests' names for the harness (package e2e/harness). Vault wraps
// *harness.Vault so the tests keep the unexported helpers they use (redact).

import (
	"testing"
	"time"

	"github.com/vault-plugin-openai/vault-plugin-openai/e2e/harness"
)

type (
	VaultOptions = harness.VaultOptions
	Fake         = harness.Fake
	Creds        = harness.Creds
)

// Vault is one Vault server process owned by a test (see harness.Vault).
type Vault struct{ *harness.Vault }

// redact replaces every secret the harness knows with [REDACTED].
func (v *Vault) redact(s string) string { return v.Redact(s) }

func startVault(t testing.TB, opts VaultOptions) *Vault {
	return &Vault{harness.StartVault(t, opts)}
}

func setupEngine(t testing.TB, role map[string]any) (*Vault, *Fake) {
	v, f := harness.SetupEngine(t, role)
	return &Vault{v}, f
}

func registerPlugin(t testing.TB, v *Vault, env ...string) {
	harness.RegisterPlugin(t, v.Vault, env...)
}
func mountPlugin(t testing.TB, v *Vault, path string) { harness.MountPlugin(t, v.Vault, path) }
func writeConfig(t testing.TB, v *Vault, mount string, f *Fake, extra map[string]any) {
	harness.WriteConfig(t, v.Vault, mount, f, extra)
}
func writeRole(t testing.TB, v *Vault, mount, name string, data map[string]any) {
	harness.WriteRole(t, v.Vault, mount, name, data)
}
func issue(t testing.TB, v *Vault, mount, role string, data map[string]any) *Creds {
	return harness.Issue(t, v.Vault, mount, role, data)
}
func tryIssue(v *Vault, mount, role string, data map[string]any) (*Creds, error) {
	return harness.TryIssue(v.Vault, mount, role, data)
}
func leaseTTL(v *Vault, leaseID string) (time.Duration, time.Time, bool) {
	return harness.LeaseTTL(v.Vault, leaseID)
}
func leasesUnder(t testing.TB, v *Vault, prefix string) []string {
	return harness.LeasesUnder(t, v.Vault, prefix)
}
func enableFileAudit(t testing.TB, v *Vault) string { return harness.EnableFileAudit(t, v.Vault) }
func issueLoop(v *Vault, mount, role string, workers int, record func(*Creds, error)) (stop func()) {
	return harness.IssueLoop(v.Vault, mount, role, workers, record)
}

var (
	newFake       = harness.NewFake
	waitFor       = harness.WaitFor
	grepLines     = harness.GrepLines
	cleanEnv      = harness.CleanEnv
	responseError = harness.ResponseError
	figures       = harness.Figures
	dataString    = harness.DataString
)
