//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The example role's lease TTL and max_ttl (examples/README.md, set-up block).
const (
	exampleTTL    = 10 * time.Second
	exampleMaxTTL = 30 * time.Second
)

const agentReadme = "examples/agent/README.md"

// startExampleAgent runs the agent README's credential and run commands in
// a copy of examples/agent; the agent has only its AppRole files and the
// environment (VAULT_ADDR, OPENAI_BASE_URL), no token.
func startExampleAgent(t *testing.T, v *Vault, root string, env []string, mode string) (*process, string) {
	t.Helper()
	dir := filepath.Join(root, "examples", "agent")
	runScript(t, v, exampleBlock(t, agentReadme, "agent-creds"), dir, env, time.Minute)
	for _, f := range []string{"role-id", "secret-id"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || strings.TrimSpace(string(b)) == "" {
			t.Fatalf("the agent-creds commands wrote no %s: %v", f, err)
		}
		if st, _ := os.Stat(filepath.Join(dir, f)); st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is readable by others: %v", f, st.Mode())
		}
		v.AddSecret(strings.TrimSpace(string(b)))
	}
	return startProcess(t, v, dir, withoutToken(env), exampleCommand(t, agentReadme, mode)), dir
}

// stopExampleAgent runs the README's stop commands (SIGTERM to the agent,
// then `vault token revoke -self` with the agent's token) and returns how
// long until the fake holds no live account.
func stopExampleAgent(t *testing.T, v *Vault, f *Fake, agent *process, dir string, env []string) time.Duration {
	t.Helper()
	if tok, err := os.ReadFile(filepath.Join(dir, "vault-token")); err == nil {
		v.AddSecret(strings.TrimSpace(string(tok)))
	} else {
		t.Fatalf("the agent's file sink: %v", err)
	}
	start := time.Now()
	runScript(t, v, exampleBlock(t, agentReadme, "agent-stop"), dir, withoutToken(env), time.Minute)
	if !agent.exited(30 * time.Second) {
		t.Fatalf("the agent did not exit within 30s of SIGTERM")
	}
	if code := agent.exitCode(); code != 0 {
		t.Errorf("the agent exited with %d after SIGTERM, want 0", code)
	}
	waitFor(t, time.Minute, "no live account at the fake after stopping the agent and revoking its token", func() bool {
		return len(f.LiveAccounts()) == 0
	})
	gone := time.Since(start)
	// Vault deletes a lease just after the engine's revoke returns: wait for it.
	waitFor(t, 30*time.Second, "Vault to drop the agent's leases", func() bool {
		return len(leasesUnder(t, v, "openai/creds/app/")) == 0
	})
	return gone
}

// renderedEnv reads the agent's openai.env; ok once every field is there.
func renderedEnv(path string) (m map[string]string, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	m = map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, val, found := strings.Cut(strings.TrimSpace(l), "="); found {
			m[k] = val
		}
	}
	return m, m["OPENAI_API_KEY"] != "" && m["OPENAI_LEASE_ID"] != "" && m["OPENAI_BASE_URL"] != ""
}

// lastRenewal is Vault's last_renewal of a lease (zero if never renewed or
// gone).
func lastRenewal(v *Vault, leaseID string) time.Time {
	s, err := v.Client.Sys().Lookup(leaseID)
	if err != nil || s == nil || s.Data["last_renewal"] == nil {
		return time.Time{}
	}
	at, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(s.Data["last_renewal"]))
	return at
}

// The agent in file mode, its config and commands as the README gives them, on
// a real Vault with the example role (ttl 10s, max_ttl 30s): the rendered key
// works at the fake; the agent renews the lease (so the key outlives its first
// TTL); near max_ttl it fetches a new key and re-renders the file, and the old
// key is refused (401) within one TTL of that (it is gone when Vault expires
// the old lease at max_ttl); stopping the agent and revoking its token leaves
// no live account.
func TestExampleAgentFile(t *testing.T) {
	t.Parallel()
	v, f, root, env := exampleEngine(t)
	agent, dir := startExampleAgent(t, v, root, env, "agent-file")
	rendered := filepath.Join(dir, "openai.env")

	var first map[string]string
	waitFor(t, time.Minute, "the agent to render openai.env", func() bool {
		var ok bool
		first, ok = renderedEnv(rendered)
		if agent.exited(0) {
			t.Fatalf("the agent exited (%v)", agent.err)
		}
		return ok
	})
	v.AddSecret(first["OPENAI_API_KEY"])
	if st, _ := os.Stat(rendered); st.Mode().Perm() != 0o600 {
		t.Errorf("openai.env has mode %v, want 0600", st.Mode().Perm())
	}
	if first["OPENAI_BASE_URL"] != f.URL {
		t.Errorf("rendered OPENAI_BASE_URL %q, want the fake's %q", first["OPENAI_BASE_URL"], f.URL)
	}
	issued, _, ok := leaseTimes(t, v, first["OPENAI_LEASE_ID"])
	if !ok {
		t.Fatalf("the rendered lease %s is not in Vault", first["OPENAI_LEASE_ID"])
	}
	if code := modelsStatus(t, first["OPENAI_BASE_URL"], first["OPENAI_API_KEY"]); code != 200 {
		t.Fatalf("the rendered key: GET /v1/models -> %d, want 200", code)
	}

	// Watch until the file names another lease: renewals of the first lease on
	// Vault's clock, and the key still working after its first TTL.
	var renewals []time.Time
	workedPastTTL := false
	var second map[string]string
	waitFor(t, exampleMaxTTL+30*time.Second, "the agent to render a new key", func() bool {
		if r := lastRenewal(v, first["OPENAI_LEASE_ID"]); !r.IsZero() && (len(renewals) == 0 || !r.Equal(renewals[len(renewals)-1])) {
			renewals = append(renewals, r)
		}
		if !workedPastTTL && time.Since(issued) > exampleTTL+2*time.Second {
			if code := modelsStatus(t, f.URL, first["OPENAI_API_KEY"]); code != 200 {
				t.Fatalf("the first key %s after issue: GET /v1/models -> %d, want 200 (the agent renews its lease)",
					time.Since(issued).Round(time.Second), code)
			}
			workedPastTTL = true
		}
		m, ok := renderedEnv(rendered)
		if ok && m["OPENAI_LEASE_ID"] != first["OPENAI_LEASE_ID"] {
			second = m
			return true
		}
		return false
	})
	rerendered := time.Now()
	rerenderAfter := rerendered.Sub(issued)
	v.AddSecret(second["OPENAI_API_KEY"])
	if !workedPastTTL {
		t.Errorf("re-rendered %s after issue, before the first TTL (%s) had passed", rerenderAfter, exampleTTL)
	}
	if len(renewals) < 2 {
		t.Errorf("Vault saw %d renewals of the first lease, want at least 2 (ttl %s, max_ttl %s)", len(renewals), exampleTTL, exampleMaxTTL)
		if len(renewals) == 0 {
			renewals = append(renewals, issued) // keep the figures below printable
		}
	}
	if rerenderAfter >= exampleMaxTTL {
		t.Errorf("the new key was rendered %s after the first was issued, not before the first expired (max_ttl %s)", rerenderAfter, exampleMaxTTL)
	}
	if code := modelsStatus(t, f.URL, second["OPENAI_API_KEY"]); code != 200 {
		t.Fatalf("the re-rendered key: GET /v1/models -> %d, want 200", code)
	}
	// The agent never revokes the old lease; Vault expires it at max_ttl and
	// the engine deletes its account: the old key is refused from then on.
	var refusedAfter time.Duration
	waitFor(t, exampleMaxTTL, "the fake to refuse the old key", func() bool {
		if modelsStatus(t, f.URL, first["OPENAI_API_KEY"]) == 401 {
			refusedAfter = time.Since(rerendered)
			return true
		}
		return false
	})
	if refusedAfter > exampleTTL {
		t.Errorf("the old key was refused %s after the new one was rendered, want within one renewal interval (< ttl %s)", refusedAfter, exampleTTL)
	}
	// The 401 may come from the key's OpenAI-side expiry (also max_ttl); the
	// account itself goes when Vault revokes the expired lease.
	accountGone := waitFor(t, exampleMaxTTL, "the old key's account to be deleted", func() bool {
		return len(f.LiveAccounts()) == 1
	}) + refusedAfter
	// Vault drops the lease once the plugin's revoke has returned, which is
	// after the account's delete: an event to wait for, not a moment later.
	waitFor(t, 30*time.Second, "Vault to drop the old lease after its account was deleted", func() bool {
		_, _, ok := leaseTimes(t, v, first["OPENAI_LEASE_ID"])
		return !ok
	})

	intervals := make([]string, 0, len(renewals))
	prev := issued
	for _, r := range renewals {
		intervals = append(intervals, r.Sub(prev).Round(100*time.Millisecond).String())
		prev = r
	}
	gone := stopExampleAgent(t, v, f, agent, dir, env)
	t.Logf("first lease: renewals at intervals %v (from issue); new key rendered %s after issue; old key refused %s and its account deleted %s after that; all accounts gone %s after the stop commands",
		intervals, rerenderAfter.Round(100*time.Millisecond), refusedAfter.Round(100*time.Millisecond),
		accountGone.Round(100*time.Millisecond), gone.Round(100*time.Millisecond))
	figures(t, "agent-file", "renewals", len(renewals), "first_renewal_after_issue", renewals[0].Sub(issued),
		"rerender_after_issue", rerenderAfter, "old_key_401_after_rerender", refusedAfter,
		"old_account_gone_after_rerender", accountGone, "accounts_gone_after_stop", gone)
}

var (
	appStarted = regexp.MustCompile(`app: started \(pid (\d+)\) with lease (\S+)`)
	appCalled  = regexp.MustCompile(`app: GET /v1/models -> (\d+) \(lease (\S+)\)`)
)

// The agent in exec (process supervisor) mode, as the README gives it (with
// its exec-mode role, ttl 25s, max_ttl 60s): app.sh starts with the key in
// its environment and calls the fake with it (200, every call while it holds
// that key); near max_ttl the agent fetches a new key and restarts the app
// with it before the old one expires; the old key's account is gone when
// Vault expires its lease; stopping the agent and revoking its token leaves
// no live account.
func TestExampleAgentExec(t *testing.T) {
	t.Parallel()
	v, f, root, env := exampleEngine(t)
	// Exec mode restarts the app 2s after a render: the README's longer TTL.
	runScript(t, v, exampleBlock(t, agentReadme, "agent-exec-role"), root, env, time.Minute)
	const ttl, maxTTL = 25 * time.Second, 60 * time.Second
	agent, dir := startExampleAgent(t, v, root, env, "agent-exec")

	// started returns the leases the app was started with, in order, and
	// called the statuses of its calls per lease.
	started := func() (leases []string, pids []string) {
		for _, m := range appStarted.FindAllStringSubmatch(agent.stdout.String(), -1) {
			pids, leases = append(pids, m[1]), append(leases, m[2])
		}
		return leases, pids
	}
	called := func(lease string) (codes []string) {
		for _, m := range appCalled.FindAllStringSubmatch(agent.stdout.String(), -1) {
			if m[2] == lease {
				codes = append(codes, m[1])
			}
		}
		return codes
	}
	var first string
	waitFor(t, time.Minute, "the agent to start the app with a key that works", func() bool {
		if agent.exited(0) {
			t.Fatalf("the agent exited (%v)", agent.err)
		}
		leases, _ := started()
		if len(leases) == 0 {
			return false
		}
		first = leases[0]
		return len(called(first)) > 0
	})
	if codes := called(first); codes[0] != "200" {
		t.Fatalf("the app's first call with its key: %s, want 200", codes[0])
	}
	issued, _, ok := leaseTimes(t, v, first)
	if !ok {
		t.Fatalf("the app's lease %s is not in Vault", first)
	}
	live := f.LiveAccounts()
	if len(live) != 1 {
		t.Fatalf("%d live accounts at the fake, want 1 (the env templates share one secret)", len(live))
	}
	firstAccount := live[0].ID

	var second string
	if left, _, _ := leaseTTL(v, first); left <= exampleTTL || left > ttl {
		t.Errorf("the app's lease has %s left, want up to the README's exec-mode ttl %s", left, ttl)
	}
	waitFor(t, maxTTL+30*time.Second, "the agent to restart the app with a new key", func() bool {
		leases, _ := started()
		if len(leases) > 1 {
			second = leases[1]
			return true
		}
		return false
	})
	restartAfter := time.Since(issued)
	restarted := time.Now()
	if second == first {
		t.Fatalf("the app was restarted with the same lease %s", first)
	}
	if n := len(called(first)); n < 3 {
		t.Errorf("the app made %d calls with its first key, want several", n)
	}
	for _, c := range called(first) {
		if c != "200" {
			t.Errorf("a call with the first key answered %s while the app held it", c)
		}
	}
	waitFor(t, 30*time.Second, "the restarted app's first call", func() bool { return len(called(second)) > 0 })
	if c := called(second)[0]; c != "200" {
		t.Errorf("the restarted app's first call: %s, want 200", c)
	}
	var goneAfter time.Duration
	waitFor(t, maxTTL, "the first key's account to be deleted", func() bool {
		if f.Has(firstAccount) {
			return false
		}
		goneAfter = time.Since(restarted)
		return true
	})
	if goneAfter > ttl {
		t.Errorf("the first key's account was deleted %s after the app's restart, want within one renewal interval (< ttl %s)", goneAfter, ttl)
	}
	if restartAfter > maxTTL {
		t.Errorf("the app was restarted %s after its key was issued, after the key's max_ttl %s", restartAfter, maxTTL)
	}
	if _, pids := started(); len(pids) != 2 || pids[0] == pids[1] {
		t.Errorf("app processes %v, want two (one per key)", pids)
	}
	gone := stopExampleAgent(t, v, f, agent, dir, env)
	if !strings.Contains(agent.stdout.String(), "app: stopping") {
		t.Errorf("the app was not stopped with SIGTERM")
	}
	t.Logf("app restarted with a new key %s after the first was issued; first key's account gone %s after the restart; all accounts gone %s after the stop commands",
		restartAfter.Round(100*time.Millisecond), goneAfter.Round(100*time.Millisecond), gone.Round(100*time.Millisecond))
	figures(t, "agent-exec", "restart_after_issue", restartAfter, "old_account_gone_after_restart", goneAfter, "accounts_gone_after_stop", gone)
}
