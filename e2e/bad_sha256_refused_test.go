//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/vault-plugin-openai/vault-plugin-openai/e2e/harness"
)

// Vault refuses to run a plugin binary whose SHA-256 differs from the registered
// one, and the user sees why: through the API and through the CLI.
func TestBadSHA256Refused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, pluginName)
	harness.CopyExecutable(t, suite.pluginPath, bin)
	v := startVault(t, VaultOptions{PluginDir: dir})

	// Registered as built, then the file on disk is swapped for a different one.
	registerPlugin(t, v)
	fh, err := os.OpenFile(bin, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.Write([]byte("tampered")); err != nil {
		t.Fatal(err)
	}
	fh.Close()

	err = v.Client.Sys().Mount("openai", &api.MountInput{Type: pluginName, Config: api.MountConfigInput{PluginVersion: suite.version}})
	if err == nil {
		t.Fatalf("Vault mounted a plugin whose binary does not match its SHA-256")
	}
	if _, msg := responseError(err); !strings.Contains(msg, "checksums did not match") {
		t.Errorf("mount error %q does not say the checksum did not match", msg)
	}
	_, stderr, code := v.CLI("secrets", "enable", "-path=openai-cli", "-plugin-version="+suite.version, pluginName)
	if code == 0 {
		t.Errorf("vault secrets enable succeeded with a tampered binary")
	}
	if !strings.Contains(stderr, "checksums did not match") {
		t.Errorf("vault secrets enable told the user %q, want the checksum mismatch", stderr)
	}
	t.Logf("the user sees: %s", strings.TrimSpace(stderr))

	// Registering with a SHA-256 that is not the binary's is refused the same way, at
	// registration or at the latest when mounting.
	_, stderr, code = v.CLI("plugin", "register", "-sha256="+strings.Repeat("ab", 32),
		"-version=v0.0.1", "-command="+pluginName, "secret", pluginName)
	if code == 0 {
		t.Logf("registration with a wrong -sha256 accepted; refusal expected at enable")
		_, stderr, code = v.CLI("secrets", "enable", "-path=openai-wrong", "-plugin-version=v0.0.1", pluginName)
	}
	if code == 0 || !strings.Contains(stderr, "checksums did not match") {
		t.Errorf("wrong -sha256: exit %d, stderr %q; want a refusal naming the checksum mismatch", code, stderr)
	}

	mounts, err := v.Client.Sys().ListMounts()
	if err != nil {
		t.Fatal(err)
	}
	for p := range mounts {
		if strings.HasPrefix(p, "openai") {
			t.Errorf("mount %s exists although the plugin was refused", p)
		}
	}
	// Vault keeps a mounted plugin's process running; a refused binary must
	// never have been started at all. (No fake is checked here: nothing could
	// configure a plugin that was never mounted, so its calls would be zero
	// whatever Vault did.)
	if pids := v.PluginPIDs(); len(pids) != 0 {
		t.Errorf("plugin processes %v run under Vault although the binary was refused", pids)
	}
}
