//go:build e2e

package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vault-plugin-openai/vault-plugin-openai/e2e/harness"
)

// An upgrade as the README describes it, on a real Vault: the plugin built
// twice (v0.1.0 and v0.2.0; the suite's own build, stamped PLUGIN_VERSION,
// serves as the one of them it names), v0.1.0 registered and mounted and issuing keys;
// then v0.2.0 registered, `vault secrets tune -plugin-version`, `vault plugin
// reload`. The mount then runs v0.2.0 (a new process of the new binary), the
// leases issued on v0.1.0 renew and revoke on it (their accounts gone at the
// fake), and it issues new keys.
func TestUpgradeKeepsLeases(t *testing.T) {
	t.Parallel()
	const v1, v2 = "v0.1.0", "v0.2.0"
	dir := t.TempDir()
	b := harness.Build{Race: raceEnabled, Tags: "crashpoints"} // as TestMain builds the suite's
	sha := map[string]string{}
	for _, ver := range []string{v1, v2} {
		path := filepath.Join(dir, pluginName+"_"+ver)
		if ver == suite.version {
			// TestMain built this one already, alike (race, tags, version
			// stamped): a copy saves a race-enabled link, a minute or more
			// on 2 shared cores.
			harness.CopyExecutable(t, suite.pluginPath, path)
			sum, err := harness.FileSHA256(path)
			if err != nil || sum != suite.pluginSHA {
				t.Fatalf("copy of the suite's plugin: sha %s, %v; want %s", sum, err, suite.pluginSHA)
			}
			sha[ver] = sum
			continue
		}
		sha[ver] = harness.BuildPlugin(t, path, ver, b)
	}
	if sha[v1] == sha[v2] {
		t.Fatalf("the two builds are identical: the version is not stamped")
	}
	v := startVault(t, VaultOptions{PluginDir: dir})
	f := newFake(t)
	cli := func(args ...string) string {
		t.Helper()
		out, stderr, code := v.CLI(args...)
		if code != 0 {
			t.Fatalf("vault %s: exit %d: %s", strings.Join(args, " "), code, v.redact(stderr))
		}
		return out + stderr
	}
	register := func(ver string) {
		cli("plugin", "register", "-sha256="+sha[ver], "-version="+ver, "-command="+pluginName+"_"+ver, "secret", pluginName)
	}
	running := func(want string) {
		t.Helper()
		m, err := v.Client.Sys().GetMount("openai")
		if err != nil {
			t.Fatal(err)
		}
		if m.RunningVersion != want || m.RunningSha256 != sha[want] {
			t.Errorf("openai/ runs %s (sha %.12s), want %s (sha %.12s)", m.RunningVersion, m.RunningSha256, want, sha[want])
		}
		exes := harness.ChildExes(v.PID(), pluginName)
		if len(exes) != 1 || exes[0] != pluginName+"_"+want {
			t.Errorf("Vault's plugin processes run %v, want one of the %s binary", exes, want)
		}
	}

	register(v1)
	cli("secrets", "enable", "-path=openai", "-plugin-version="+v1, pluginName)
	writeConfig(t, v, "openai", f, nil)
	writeRole(t, v, "openai", "r", map[string]any{"ttl": "1m", "max_ttl": "10m"})
	var old []*Creds
	for i := 0; i < 3; i++ {
		old = append(old, issue(t, v, "openai", "r", nil))
	}
	running(v1)

	start := time.Now()
	register(v2)
	cli("secrets", "tune", "-plugin-version="+v2, "openai/")
	cli("plugin", "reload", "-plugin="+pluginName)
	upgradeTook := time.Since(start)

	// Old leases renew on the new version.
	for _, c := range old {
		s, err := v.Client.Sys().Renew(c.LeaseID, 300)
		if err != nil {
			t.Fatalf("renewing %s (issued on %s) after the upgrade: %v", c.LeaseID, v1, err)
		}
		if s.LeaseDuration != 300 {
			t.Errorf("renewed %s for %ds, want 300", c.LeaseID, s.LeaseDuration)
		}
	}
	running(v2)
	// And revoke on it: each account gone at the fake.
	for _, c := range old[:2] {
		if !f.Has(c.ServiceAccountID) {
			t.Fatalf("account %s gone before its revocation", c.ServiceAccountID)
		}
		if err := v.Client.Sys().Revoke(c.LeaseID); err != nil {
			t.Fatalf("revoking %s (issued on %s) on %s: %v", c.LeaseID, v1, v2, err)
		}
		waitFor(t, 30*time.Second, "the revoked old lease's account to be deleted", func() bool { return !f.Has(c.ServiceAccountID) })
	}
	// New keys on v2, then everything revoked by prefix.
	c := issue(t, v, "openai", "r", nil)
	if !f.Has(c.ServiceAccountID) || modelsStatus(t, f.URL, c.APIKey) != 200 {
		t.Fatalf("a key issued on %s does not work at the fake", v2)
	}
	if err := v.Client.Sys().RevokePrefix("openai/creds/r"); err != nil {
		t.Fatalf("revoke-prefix: %v", err)
	}
	waitFor(t, 30*time.Second, "no live account after revoke-prefix on the new version", func() bool { return len(f.LiveAccounts()) == 0 })
	waitFor(t, 30*time.Second, "Vault to drop the revoked leases", func() bool {
		return len(leasesUnder(t, v, "openai/creds/r/")) == 0
	})
	running(v2)
	t.Logf("upgrade %s -> %s (register, tune, reload) took %s; 3 old leases renewed and revoked on %s",
		v1, v2, upgradeTook.Round(100*time.Millisecond), v2)
}
