// Package harness runs the real plugin binary under real Vault server processes,
// for the e2e suite (e2e/) and the benchmark (bench/). Main builds the plugin once
// per test binary; StartVault starts a Vault server (vault.go) and NewFake an
// in-process fake Admin API (engine.go), both owned by one test and stopped at its
// cleanup; engine.go also registers, mounts and drives the engine through Vault.
//
// It is an ordinary package rather than _test.go files so that the benchmark, in
// its own module, can use the same harness as the suite.
package harness

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// PluginName is the plugin's binary and catalog name.
const PluginName = "vault-plugin-openai"

// Suite is set up once by Main and read-only afterwards.
var Suite struct {
	VaultBin   string
	RepoRoot   string
	PluginDir  string // holds only the plugin binary, shared by Vaults that need no tampering
	PluginPath string
	PluginSHA  string
	Version    string // PLUGIN_VERSION, default v0.1.0
}

// Build says how Main builds the plugin.
type Build struct {
	// Race builds it with the race detector: the harness then fails any test
	// whose Vault log shows the plugin reporting a data race. A race-enabled
	// test binary should build a race-enabled plugin.
	Race bool
	// Tags are build tags for the plugin, e.g. "pprof" for its profiling listener.
	Tags string
}

// Main is the body of a TestMain: it builds the plugin from the repository at
// root, fills Suite, calls ready (if not nil), runs the tests and exits.
func Main(m *testing.M, root string, b Build, ready func()) {
	flag.Parse()
	// Listing tests (`go test -list`, which make test-e2e uses to count them)
	// needs neither Vault nor the plugin build.
	if f := flag.Lookup("test.list"); f != nil && f.Value.String() != "" {
		os.Exit(m.Run())
	}
	// The tests mostly wait on Vault and timers, so run more of them than there are CPUs.
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", "8")
	}
	code, err := setup(m, root, b, ready)
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness setup:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setup(m *testing.M, root string, b Build, ready func()) (int, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return 0, err
	}
	Suite.RepoRoot = root
	Suite.Version = os.Getenv("PLUGIN_VERSION")
	if Suite.Version == "" {
		Suite.Version = "v0.1.0"
	}

	// Always through scripts/vault.sh, which honours VAULT_BIN and refuses a
	// Vault other than the pinned version (VAULT_ALLOW_OTHER_VERSION=1 warns
	// instead): the suite's claims are about that version.
	cmd := exec.Command(filepath.Join(root, "scripts", "vault.sh"))
	cmd.Stderr = os.Stderr
	vaultPath, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("scripts/vault.sh: %w", err)
	}
	Suite.VaultBin = strings.TrimSpace(string(vaultPath))
	if Suite.VaultBin, err = filepath.Abs(Suite.VaultBin); err != nil {
		return 0, err
	}

	tmp, err := os.MkdirTemp("", "vault-plugin-openai-e2e-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	Suite.PluginDir = filepath.Join(tmp, "plugins")
	if err := os.Mkdir(Suite.PluginDir, 0o755); err != nil {
		return 0, err
	}
	Suite.PluginPath = filepath.Join(Suite.PluginDir, PluginName)

	args := []string{"build", "-trimpath"}
	if b.Race {
		args = append(args, "-race")
	}
	if b.Tags != "" {
		args = append(args, "-tags", b.Tags)
	}
	args = append(args,
		"-ldflags", "-X github.com/vault-plugin-openai/vault-plugin-openai/backend.Version="+Suite.Version,
		"-o", Suite.PluginPath, "./cmd/vault-plugin-openai")
	build := exec.Command("go", args...)
	build.Dir = root
	var out bytes.Buffer
	build.Stdout, build.Stderr = &out, &out
	if err := build.Run(); err != nil {
		return 0, fmt.Errorf("building the plugin: %w\n%s", err, out.String())
	}
	if Suite.PluginSHA, err = FileSHA256(Suite.PluginPath); err != nil {
		return 0, err
	}
	if ready != nil {
		ready()
	}
	return m.Run(), nil
}

// FileSHA256 is the hex SHA-256 of the file at path, as Vault's plugin catalog wants it.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
