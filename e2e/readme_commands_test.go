//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// The README's commands are run here verbatim: each block the README marks with
// `<!-- readme-test:NAME -->` (the next fenced code block) is read from README.md
// at test time, so an edit that breaks a command breaks this test.

// readmeBlock returns the body of the fenced code block that follows the marker
// `<!-- readme-test:name -->` in README.md.
func readmeBlock(t testing.TB, name string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(suite.repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	marker := "<!-- readme-test:" + name + " -->"
	text := string(raw)
	i := strings.Index(text, marker)
	if i < 0 {
		t.Fatalf("README.md has no %s marker", marker)
	}
	lines := strings.Split(text[i+len(marker):], "\n")
	var body []string
	in := false
	for _, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			if in {
				return strings.Join(body, "\n") + "\n"
			}
			in = true
			continue
		}
		if in {
			body = append(body, l)
		} else if strings.TrimSpace(l) != "" {
			t.Fatalf("README.md: %s is not followed by a code block (found %q)", marker, l)
		}
	}
	t.Fatalf("README.md: the code block after %s is not closed", marker)
	return ""
}

// readmeCommand returns the command in block name that starts with prefix,
// backslash continuations joined and a trailing "# comment" removed.
func readmeCommand(t testing.TB, name, prefix string) string {
	t.Helper()
	joined := strings.ReplaceAll(readmeBlock(t, name), "\\\n", " ")
	for _, l := range strings.Split(joined, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, prefix) {
			if i := strings.Index(l, " #"); i >= 0 {
				l = strings.TrimSpace(l[:i])
			}
			return l
		}
	}
	t.Fatalf("README.md block %s has no command starting %q", name, prefix)
	return ""
}

// runBlock runs a README block with bash (-e: the first failing command fails
// the block, as it would stop a reader) in dir with env, and returns its output.
// The output may hold issued keys: it is only shown, redacted, on failure.
func runBlock(t testing.TB, v *Vault, name, dir string, env []string) string {
	t.Helper()
	block := readmeBlock(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-eu", "-o", "pipefail", "-c", block)
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		text := string(out)
		if v != nil {
			text = v.redact(text)
		}
		t.Fatalf("README block %q failed: %v\n---- block ----\n%s---- output ----\n%s", name, err, block, text)
	}
	return string(out)
}

// envWithout is the test's environment without VAULT_* and OPENAI_* variables
// (a developer's shell must not steer the run), plus extra.
func envWithout(extra ...string) []string {
	var env []string
	for _, kv := range cleanEnv() {
		if !strings.HasPrefix(kv, "OPENAI_") && !strings.HasPrefix(kv, "VAULT_PLUGIN_OPENAI") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

func withVaultOnPath(env []string) []string {
	for i, kv := range env {
		if p, ok := strings.CutPrefix(kv, "PATH="); ok {
			env[i] = "PATH=" + filepath.Dir(suite.vaultBin) + ":" + p
			return env
		}
	}
	return append(env, "PATH="+filepath.Dir(suite.vaultBin)+":/usr/bin:/bin")
}

// The install guide on a Vault that has only a plugin directory, as a new
// operator's does: place the binary, register by SHA-256 and version, enable,
// tune the audit keys; then the "Using it" commands and the operations examples
// (rotate-root, tidy) as written. The one thing not from the README is the
// fake's base_url, written first the way `make dev` writes it, because the
// README's commands talk to api.openai.com by default.
func TestReadmeInstallAndUsingCommands(t *testing.T) {
	t.Parallel()
	pluginDir := t.TempDir()
	v := startVault(t, VaultOptions{PluginDir: pluginDir})
	f := newFake(t)
	v.AddSecret(f.AdminKey())

	// The reader's checkout: bin/vault-plugin-openai as `make build` leaves it.
	work := t.TempDir()
	if err := os.Mkdir(filepath.Join(work, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(suite.pluginPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "bin", pluginName), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	env := withVaultOnPath(envWithout(
		"VAULT_ADDR="+v.Addr, "VAULT_TOKEN="+v.Token,
		"VAULT_PLUGIN_DIR="+pluginDir,
		"OPENAI_ADMIN_KEY="+f.AdminKey(),
		"OPENAI_PROJECT_ID="+fakeopenai.ProjectActive,
	))

	out := runBlock(t, v, "install", work, env)
	for _, line := range strings.Split(strings.TrimSpace(readmeBlock(t, "install-output")), "\n") {
		if !strings.Contains(out, line) {
			t.Errorf("the install commands did not print %q, as the README shows", line)
		}
	}
	m, err := v.Client.Sys().GetMount("openai")
	if err != nil {
		t.Fatalf("after the install commands: %v", err)
	}
	if m.Type != pluginName || m.RunningVersion != suite.version {
		t.Fatalf("after the install commands openai/ is %s %s, want %s %s", m.Type, m.RunningVersion, pluginName, suite.version)
	}
	if got := strings.Join(m.Config.AuditNonHMACResponseKeys, ","); got != "api_key_id,service_account_id,service_account_name,project_id" {
		t.Errorf("after the install commands audit_non_hmac_response_keys = %q", got)
	}

	writeConfig(t, v, "openai", f, nil) // base_url: the fake stands in for api.openai.com
	out = runBlock(t, v, "using", work, env)
	for _, want := range []string{"api_key", "sk-svcacct-", "revocation operations queued successfully"} {
		if !strings.Contains(out, want) {
			t.Errorf("the \"Using it\" output lacks %q", want)
		}
	}
	if n := f.Calls()[fakeopenai.OpCreateServiceAccount]; n < 2 {
		t.Errorf("the \"Using it\" commands created %d service accounts, want at least 2", n)
	}
	// `vault lease revoke` queues the revocation: wait for it to reach OpenAI.
	waitFor(t, time.Minute, "no live accounts after the README's revoke commands", func() bool { return len(f.LiveAccounts()) == 0 })

	out = runBlock(t, v, "operate", work, env)
	// The fields the README's example outputs show are what Vault prints.
	for _, want := range []string{"admin_api_key_id", "last_rotated", "records", "deleted", "incomplete", "duration_ms"} {
		if !strings.Contains(out, want) {
			t.Errorf("the rotate-root/tidy output lacks %q", want)
		}
	}
	if strings.Contains(out, "Must supply data or use -force") {
		t.Error("the README's tidy command is refused without -force")
	}
}

// devStart is held around `scripts/dev.sh start` by the tests that run it
// (here and in example_apps_test.go). Its first step builds bin/'s plugin and
// fake; two at once would both link them (tens of CPU seconds each on 2 shared
// cores), while the second of two in turn finds them up to date and links
// nothing. Each test still runs the script, builds included, as a reader would.
var devStart sync.Mutex

// `make dev` (scripts/dev.sh start) then the README's "Using it" commands exactly
// as written, in a shell that sourced the environment file make dev names.
func TestReadmeUsingCommandsAgainstMakeDev(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "dev")
	base := envWithout("VAULT_BIN="+suite.vaultBin, "VAULT_PLUGIN_OPENAI_DEV_DIR="+dir, "PLUGIN_VERSION="+suite.version)
	dev := func(arg string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(suite.repoRoot, "scripts", "dev.sh"), arg)
		cmd.Dir = suite.repoRoot
		cmd.Env = base
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("scripts/dev.sh %s: %v\n%s", arg, err, out)
		}
		return string(out)
	}
	t.Cleanup(func() { dev("stop") })
	var started string
	func() {
		devStart.Lock() // released by the deferred call even if dev fails the test
		defer devStart.Unlock()
		started = dev("start")
	}()
	envFile := filepath.Join(dir, "env")
	if !strings.Contains(started, envFile) {
		t.Errorf("make dev does not name its environment file %s", envFile)
	}
	raw, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatalf("make dev's environment file: %v", err)
	}
	if st, _ := os.Stat(envFile); st != nil && st.Mode().Perm()&0o077 != 0 {
		t.Errorf("%s is readable by others: %v", envFile, st.Mode())
	}
	for _, v := range []string{"VAULT_ADDR", "VAULT_TOKEN", "OPENAI_ADMIN_KEY", "OPENAI_PROJECT_ID", "OPENAI_FAKE_URL"} {
		if !strings.Contains(string(raw), "export "+v+"=") {
			t.Errorf("%s does not export %s", envFile, v)
		}
	}

	// The reader's shell: it sourced the file, then typed the README's commands.
	script := ". " + envFile + "\n" + readmeBlock(t, "using")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-eu", "-o", "pipefail", "-c", script)
	cmd.Dir = suite.repoRoot
	cmd.Env = envWithout()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README's \"Using it\" commands against make dev: %v (output withheld: it holds keys; rerun by hand)", err)
	}
	if !strings.Contains(string(out), "revocation operations queued successfully") {
		t.Error("the \"Using it\" output lacks the revocation")
	}
	// Every account the commands created is gone from the dev fake once Vault has
	// worked through the queued revocations.
	var fakeURL string
	for _, l := range strings.Split(string(raw), "\n") {
		if u, ok := strings.CutPrefix(l, "export OPENAI_FAKE_URL="); ok {
			fakeURL = u
		}
	}
	var live []fakeopenai.Account
	waitFor(t, time.Minute, "no live accounts at the dev fake after the README's revoke commands", func() bool {
		out, err := exec.Command(filepath.Join(suite.repoRoot, "bin", "fake-openai"), "accounts", "-json", "-url", fakeURL).Output()
		if err != nil {
			t.Fatalf("fake-openai accounts: %v", err)
		}
		live = nil
		return json.Unmarshal(out, &live) == nil && len(live) == 0
	})
	// And they were created: two issue responses in the dev audit log, with the
	// service account in clear (make dev applies the README's audit tuning).
	audit, err := os.ReadFile(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	issued := 0
	for _, line := range strings.Split(string(audit), "\n") {
		var e auditEntry
		if json.Unmarshal([]byte(line), &e) == nil && e.Type == "response" && e.Request.Path == "openai/creds/app" {
			if id, _ := e.Response.Data["service_account_id"].(string); strings.HasPrefix(id, "svc_acct_") {
				issued++
			}
		}
	}
	if issued < 2 {
		t.Errorf("the dev audit log shows %d issues from openai/creds/app with the account id in clear, want at least 2", issued)
	}
}
