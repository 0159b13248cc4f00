//go:build e2e

package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// examples/go as its README runs it (`go run ./examples/go -role=app -keys=2`
// after exporting its AppRole credentials), against a real Vault with the
// example role (ttl 10s, max_ttl 30s) and the fake: it logs in with AppRole,
// its first key works with openai-go at the fake, vault/api's LifetimeWatcher
// renews the lease, renewal ends near max_ttl (before it) and the program
// reads a second key that works too, and on exit it revokes its token, so no
// account is left.
func TestExampleGoApp(t *testing.T) {
	t.Parallel()
	v, f, _, env := exampleEngine(t)
	start := time.Now()
	// From the repository root: `go run` needs the module; it writes nothing there.
	out := runScript(t, v, exampleBlock(t, "examples/go/README.md", "go-run"), suite.repoRoot, env, 3*time.Minute)
	took := time.Since(start)
	for _, want := range []string{
		"logged in with AppRole",
		"key 1: GET /v1/models -> 200, 2 models",
		"key 1: renewed lease openai/creds/app/",
		"key 1: renewal ended (lease at max_ttl); reading a new key",
		"key 2: GET /v1/models -> 200, 2 models",
		"revoked the Vault token and with it its leases",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the Go example's output lacks %q", want)
		}
	}
	if strings.Contains(out, "sk-") {
		t.Errorf("the Go example printed something key-shaped")
	}
	leases := regexp.MustCompile(`key \d: lease (\S+) \(`).FindAllStringSubmatch(out, -1)
	if len(leases) != 2 || leases[0][1] == leases[1][1] {
		t.Errorf("the Go example used leases %v, want two different ones", leases)
	}
	if n := f.Calls()[fakeopenai.OpCreateServiceAccount]; n != 2 {
		t.Errorf("%d service accounts created, want 2 (one per key)", n)
	}
	gone := waitFor(t, time.Minute, "no live account after the Go example exits", func() bool { return len(f.LiveAccounts()) == 0 })
	// Vault deletes a lease just after the engine's revoke returns: wait for it.
	waitFor(t, 30*time.Second, "Vault to drop the Go example's leases", func() bool {
		return len(leasesUnder(t, v, "openai/creds/app/")) == 0
	})
	renewed := strings.Count(out, "key 1: renewed lease")
	t.Logf("the Go example ran %s (go run included); key 1 renewed %d times; accounts gone %s after exit",
		took.Round(100*time.Millisecond), renewed, gone.Round(100*time.Millisecond))
	figures(t, "example-go", "run", took, "key1_renewals", renewed, "accounts_gone_after_exit", gone)
}

// examples/python as its README runs it, standard library only: AppRole
// login, one key read, GET /v1/models answered 200 by the fake with it, and
// the token (so the lease) revoked on exit: no account left.
func TestExamplePythonApp(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed: examples/python cannot run here")
	}
	v, f, _, env := exampleEngine(t)
	out := runScript(t, v, exampleBlock(t, "examples/python/README.md", "python-run"), suite.repoRoot, env, time.Minute)
	for _, want := range []string{
		"lease openai/creds/app/",
		"GET /v1/models -> 200: gpt-4o-mini, gpt-4.1",
		"revoked the Vault token and with it the lease",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the Python example's output lacks %q", want)
		}
	}
	if n := f.Calls()[fakeopenai.OpCreateServiceAccount]; n != 1 {
		t.Errorf("%d service accounts created, want 1", n)
	}
	gone := waitFor(t, time.Minute, "no live account after the Python example exits", func() bool { return len(f.LiveAccounts()) == 0 })
	// Vault deletes a lease just after the engine's revoke returns: wait for it.
	waitFor(t, 30*time.Second, "Vault to drop the Python example's leases", func() bool {
		return len(leasesUnder(t, v, "openai/creds/app/")) == 0
	})
	t.Logf("account gone %s after the Python example exited", gone.Round(100*time.Millisecond))
}

// A newcomer's path, as examples/README.md gives it: `make dev`
// (scripts/dev.sh start), source its environment file, point OPENAI_BASE_URL
// at its fake, the examples' set-up, then the Go example: it gets keys from
// the dev Vault and calls the dev fake with them.
func TestExamplesAgainstMakeDev(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "dev")
	base := envWithout("VAULT_BIN="+suite.vaultBin, "VAULT_PLUGIN_OPENAI_DEV_DIR="+dir, "PLUGIN_VERSION="+suite.version)
	dev := func(arg string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(suite.repoRoot, "scripts", "dev.sh"), arg)
		cmd.Dir = suite.repoRoot
		cmd.Env = base
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("scripts/dev.sh %s: %v\n%s", arg, err, out)
		}
	}
	t.Cleanup(func() { dev("stop") })
	var devTook time.Duration
	func() {
		devStart.Lock() // one dev.sh start at a time: see devStart
		defer devStart.Unlock()
		start := time.Now()
		dev("start")
		devTook = time.Since(start)
	}()
	start := time.Now()

	script := ". " + filepath.Join(dir, "env") + "\n" +
		exampleBlock(t, "examples/README.md", "dev-base-url") +
		exampleBlock(t, "examples/README.md", "setup") +
		exampleBlock(t, "examples/go/README.md", "go-run")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-eu", "-o", "pipefail", "-c", script)
	cmd.Dir = suite.repoRoot
	cmd.Env = envWithout()
	out, err := cmd.CombinedOutput()
	if err != nil {
		// The output holds no key (the example never prints one), but the
		// set-up's may hold ids: show it, it is a dev Vault's.
		t.Fatalf("make dev + the examples' commands: %v\n%s", err, out)
	}
	for _, want := range []string{"key 1: GET /v1/models -> 200", "key 2: GET /v1/models -> 200", "revoked the Vault token"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the Go example against make dev: output lacks %q", want)
		}
	}
	t.Logf("scripts/dev.sh start took %s; the set-up and the Go example %s",
		devTook.Round(100*time.Millisecond), time.Since(start).Round(100*time.Millisecond))
}
