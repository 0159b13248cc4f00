//go:build e2e

package e2e

import (
	"os/exec"
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
// renews the lease, renewal ends at max_ttl and the program reads a second key
// that works too, and on exit it revokes its token, so no account is left.
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
	if l := leasesUnder(t, v, "openai/creds/app/"); len(l) != 0 {
		t.Errorf("Vault still holds leases %v after the Go example revoked its token", l)
	}
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
	if l := leasesUnder(t, v, "openai/creds/app/"); len(l) != 0 {
		t.Errorf("Vault still holds leases %v after the Python example revoked its token", l)
	}
	t.Logf("account gone %s after the Python example exited", gone.Round(100*time.Millisecond))
}
