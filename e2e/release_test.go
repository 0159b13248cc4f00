//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"debug/macho"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vault-plugin-openai/vault-plugin-openai/e2e/harness"
	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// scripts/release.sh (what `make release` runs) into a temporary dist/: four
// binaries and SHA256SUMS. Each sum matches its file; each binary is for its
// platform, static (CGO_ENABLED=0, no ELF interpreter), built with -trimpath
// and the version stamped; and the linux/amd64 binary, registered by the sum
// SHA256SUMS gives and the version, runs as the plugin on the real Vault:
// mounted, it reports that version, issues a key that works at the fake and
// revokes it.
//
// Parallel, but release.sh runs at a low CPU priority (nice 10, which its go
// build's compiler and linker processes inherit), so cross-compiling four
// binaries takes mostly CPU the other tests leave idle (they mostly wait on
// Vault's timers) rather than CPU from the timing-sensitive ones (agent
// renewals); and its output stays in memory (memTempDir). Run serially before
// the parallel tests, as it was, its minutes of mostly I/O-bound links added
// straight to the suite's wall time. With a warm Go build cache it is four
// links; a cold cache compiles the module four times over (minutes).
func TestReleaseScript(t *testing.T) {
	t.Parallel()
	const version = "v0.1.0" // the install block below names it
	work := memTempDir(t)
	dist := filepath.Join(work, "dist")
	gotmp := filepath.Join(work, "gotmp")
	if err := os.Mkdir(gotmp, 0o700); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, filepath.Join(suite.repoRoot, "scripts", "release.sh"))
	if nice, err := exec.LookPath("nice"); err == nil {
		cmd = exec.CommandContext(ctx, nice, "-n", "10", filepath.Join(suite.repoRoot, "scripts", "release.sh"))
	}
	cmd.Dir = suite.repoRoot
	// GOTMPDIR: the linker writes each ~90 MB binary there before it is
	// moved to dist/; both in memory, four binaries cost the shared disk
	// nothing (the other tests' Vaults fsync on it).
	cmd.Env = append(envWithout(), "VERSION="+version, "DIST="+dist, "GOTMPDIR="+gotmp)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/release.sh: %v\n%s", err, out)
	}
	took := time.Since(start)

	platforms := []struct{ os, arch string }{{"linux", "amd64"}, {"linux", "arm64"}, {"darwin", "arm64"}, {"darwin", "amd64"}}
	sums := map[string]string{}
	f, err := os.Open(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != 64 {
			t.Errorf("SHA256SUMS line %q is not \"<sha256>  <file>\"", sc.Text())
			continue
		}
		sums[name] = sum
	}
	f.Close()
	if len(sums) != len(platforms) {
		t.Errorf("SHA256SUMS lists %d files, want %d", len(sums), len(platforms))
	}
	entries, _ := os.ReadDir(dist)
	if len(entries) != len(platforms)+1 {
		t.Errorf("dist/ holds %d files, want the %d binaries and SHA256SUMS", len(entries), len(platforms))
	}
	for _, p := range platforms {
		name := pluginName + "_" + version + "_" + p.os + "_" + p.arch
		path := filepath.Join(dist, name)
		got, err := harness.FileSHA256(path)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if sums[name] != got {
			t.Errorf("%s: SHA256SUMS says %q, the file's is %s", name, sums[name], got)
		}
		info, err := exec.Command("go", "version", "-m", path).Output()
		if err != nil {
			t.Errorf("go version -m %s: %v", name, err)
			continue
		}
		for _, want := range []string{
			"\tCGO_ENABLED=0\n", "\t-trimpath=true\n", "\tGOOS=" + p.os + "\n", "\tGOARCH=" + p.arch + "\n",
		} {
			if !strings.Contains(string(info), want) {
				t.Errorf("%s: build info lacks %q", name, strings.TrimSpace(want))
			}
		}
		// -trimpath leaves -ldflags out of the build info: look for the
		// stamped version in the binary itself (linux/amd64's is also
		// checked below as the version Vault reports running), and for the
		// checkout's path, which -trimpath removes.
		bin, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(bin, []byte(version)) {
			t.Errorf("%s does not contain its version %s", name, version)
		}
		if bytes.Contains(bin, []byte(suite.repoRoot+"/")) {
			t.Errorf("%s holds the checkout's path %s: not built with -trimpath", name, suite.repoRoot)
		}
		switch p.os {
		case "linux":
			e, err := elf.Open(path)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			wantMachine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[p.arch]
			if e.Machine != wantMachine {
				t.Errorf("%s: ELF machine %v, want %v", name, e.Machine, wantMachine)
			}
			for _, prog := range e.Progs {
				if prog.Type == elf.PT_INTERP {
					t.Errorf("%s has an ELF interpreter: not a static binary", name)
				}
			}
			e.Close()
		case "darwin":
			m, err := macho.Open(path)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			wantCPU := map[string]macho.Cpu{"amd64": macho.CpuAmd64, "arm64": macho.CpuArm64}[p.arch]
			if m.Cpu != wantCPU {
				t.Errorf("%s: Mach-O cpu %v, want %v", name, m.Cpu, wantCPU)
			}
			m.Close()
		}
	}
	figures(t, "release", "build", took)
	if t.Failed() {
		return
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skipf("the linux/amd64 binary cannot run as a plugin on %s/%s", runtime.GOOS, runtime.GOARCH)
	}

	// The linux/amd64 binary as a plugin: the install-from-release commands
	// (README.md's block readme-test:install-release when it has one, else
	// the same commands here) check the sum, copy the binary, register it by
	// the sum SHA256SUMS gives and the version, and enable it.
	pluginDir := t.TempDir()
	name := pluginName + "_" + version + "_linux_amd64"
	v := startVault(t, VaultOptions{PluginDir: pluginDir})
	fake := newFake(t)
	block := installFromRelease
	if raw, _ := os.ReadFile(filepath.Join(suite.repoRoot, "README.md")); strings.Contains(string(raw), "<!-- readme-test:install-release -->") {
		block = readmeBlock(t, "install-release")
		t.Log("running README.md's install-release block")
	}
	out = []byte(runScript(t, v, block, work, withVaultOnPath(envWithout(
		"VAULT_ADDR="+v.Addr, "VAULT_TOKEN="+v.Token, "VAULT_PLUGIN_DIR="+pluginDir)), time.Minute))
	if !strings.Contains(string(out), name+": OK") {
		t.Errorf("the install commands did not verify the binary's sum:\n%s", out)
	}
	m, err := v.Client.Sys().GetMount("openai")
	if err != nil {
		t.Fatal(err)
	}
	if m.RunningVersion != version || m.RunningSha256 != sums[name] {
		t.Errorf("openai/ runs %s (sha %s), want the release's %s (%s)", m.RunningVersion, m.RunningSha256, version, sums[name])
	}
	writeConfig(t, v, "openai", fake, nil)
	writeRole(t, v, "openai", "r", map[string]any{"ttl": "1m"})
	c := issue(t, v, "openai", "r", nil)
	if code := modelsStatus(t, fake.URL, c.APIKey); code != 200 || c.ProjectID != fakeopenai.ProjectActive {
		t.Fatalf("the release binary's key: GET /v1/models -> %d (project %s)", code, c.ProjectID)
	}
	if err := v.Client.Sys().Revoke(c.LeaseID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the release binary to delete the revoked key's account", func() bool { return len(fake.LiveAccounts()) == 0 })
	t.Logf("release.sh built 4 binaries in %s; the linux/amd64 one runs as plugin %s on Vault", took.Round(100*time.Millisecond), version)
}

// installFromRelease installs dist/'s linux/amd64 binary on a Vault whose
// plugin_directory is $VAULT_PLUGIN_DIR, from the repository root after
// `make release` (or from a directory holding a downloaded dist/).
const installFromRelease = `(cd dist && sha256sum -c --ignore-missing SHA256SUMS)
cp dist/vault-plugin-openai_v0.1.0_linux_amd64 "$VAULT_PLUGIN_DIR/vault-plugin-openai"
vault plugin register -sha256="$(grep '_v0.1.0_linux_amd64$' dist/SHA256SUMS | cut -d' ' -f1)" \
    -version=v0.1.0 -command=vault-plugin-openai secret vault-plugin-openai
vault secrets enable -path=openai -plugin-version=v0.1.0 vault-plugin-openai
`

// memTempDir is a temporary directory in memory (/dev/shm) where there is
// one, else t.TempDir(); removed at the test's cleanup.
func memTempDir(t *testing.T) string {
	t.Helper()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "vault-plugin-openai-e2e-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}
