//go:build e2e

// Package e2e drives the real plugin binary through a real Vault server process.
//
// Run it with `make test-e2e` (or `go test -tags e2e ./e2e/...` with VAULT_BIN set;
// without VAULT_BIN, scripts/vault.sh finds or builds Vault). TestMain builds the
// plugin once; every test starts its own Vault and its own in-process fake Admin API,
// so tests run in parallel and assert against the fake's record of live accounts.
package e2e

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

const pluginName = "vault-plugin-openai"

// suite is set up once by TestMain and read-only afterwards.
var suite struct {
	vaultBin   string
	repoRoot   string
	pluginDir  string // holds only the plugin binary, shared by Vaults that need no tampering
	pluginPath string
	pluginSHA  string
	version    string
}

func TestMain(m *testing.M) {
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
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	root, err := filepath.Abs("..")
	if err != nil {
		return 0, err
	}
	suite.repoRoot = root
	suite.version = os.Getenv("PLUGIN_VERSION")
	if suite.version == "" {
		suite.version = "v0.1.0"
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
	suite.vaultBin = strings.TrimSpace(string(vaultPath))
	if suite.vaultBin, err = filepath.Abs(suite.vaultBin); err != nil {
		return 0, err
	}

	tmp, err := os.MkdirTemp("", "vault-plugin-openai-e2e-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	suite.pluginDir = filepath.Join(tmp, "plugins")
	if err := os.Mkdir(suite.pluginDir, 0o755); err != nil {
		return 0, err
	}
	suite.pluginPath = filepath.Join(suite.pluginDir, pluginName)

	// A race-enabled test binary builds a race-enabled plugin: the harness then fails
	// any test whose Vault log shows the plugin reporting a data race.
	args := []string{"build", "-trimpath"}
	if raceEnabled {
		args = append(args, "-race")
	}
	if pluginBuildTags != "" {
		args = append(args, "-tags", pluginBuildTags)
	}
	args = append(args,
		"-ldflags", "-X github.com/vault-plugin-openai/vault-plugin-openai/backend.Version="+suite.version,
		"-o", suite.pluginPath, "./cmd/vault-plugin-openai")
	build := exec.Command("go", args...)
	build.Dir = root
	var out bytes.Buffer
	build.Stdout, build.Stderr = &out, &out
	if err := build.Run(); err != nil {
		return 0, fmt.Errorf("building the plugin: %w\n%s", err, out.String())
	}
	if suite.pluginSHA, err = fileSHA256(suite.pluginPath); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

func fileSHA256(path string) (string, error) {
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
