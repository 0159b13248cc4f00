//go:build e2e

package e2e

// Helpers for the tests of examples/: the commands in the examples' READMEs
// are read from the files (the fenced block after `<!-- example-test:NAME -->`)
// and run as written, and long-running ones (vault agent) are started as
// processes the test owns.

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// exampleBlock returns the body of the fenced code block after
// `<!-- example-test:name -->` in file (relative to the repository root).
func exampleBlock(t testing.TB, file, name string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(suite.repoRoot, file))
	if err != nil {
		t.Fatal(err)
	}
	marker := "<!-- example-test:" + name + " -->"
	text := string(raw)
	i := strings.Index(text, marker)
	if i < 0 {
		t.Fatalf("%s has no %s marker", file, marker)
	}
	if strings.Contains(text[i+len(marker):], marker) {
		t.Fatalf("%s has %s twice", file, marker)
	}
	var body []string
	in := false
	for _, l := range strings.Split(text[i+len(marker):], "\n") {
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
			t.Fatalf("%s: %s is not followed by a code block (found %q)", file, marker, l)
		}
	}
	t.Fatalf("%s: the code block after %s is not closed", file, marker)
	return ""
}

// exampleCommand is the one command of a one-line block.
func exampleCommand(t testing.TB, file, name string) string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(exampleBlock(t, file, name)), "\n")
	if len(lines) != 1 {
		t.Fatalf("%s block %s: want one command, found %d lines", file, name, len(lines))
	}
	return lines[0]
}

// runScript runs script with bash -eu -o pipefail in dir and returns its
// combined output; a failure fails the test, the output redacted.
func runScript(t testing.TB, v *Vault, script, dir string, env []string, timeout time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-eu", "-o", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n---- script ----\n%s---- output ----\n%s", err, script, v.redact(string(out)))
	}
	return string(out)
}

// exampleEngine is a dev Vault with the engine mounted at openai/ and
// configured against a fake, then the examples' set-up block run as written
// (role app, policy openai-app, AppRole role openai-app). root is a copy of
// the repository's examples/ (as root/examples), so commands that write files
// leave the checkout alone; env is the reader's shell: VAULT_ADDR, the root
// token, OPENAI_PROJECT_ID, OPENAI_BASE_URL, vault on PATH.
func exampleEngine(t *testing.T) (v *Vault, f *Fake, root string, env []string) {
	t.Helper()
	v = startVault(t, VaultOptions{})
	f = newFake(t)
	registerPlugin(t, v)
	mountPlugin(t, v, "openai")
	writeConfig(t, v, "openai", f, nil)

	root = t.TempDir()
	copyTree(t, filepath.Join(suite.repoRoot, "examples"), filepath.Join(root, "examples"))
	env = withVaultOnPath(envWithout(
		"VAULT_ADDR="+v.Addr, "VAULT_TOKEN="+v.Token,
		"OPENAI_PROJECT_ID="+fakeopenai.ProjectActive,
		"OPENAI_BASE_URL="+f.URL,
	))
	runScript(t, v, exampleBlock(t, "examples/README.md", "setup"), root, env, time.Minute)
	return v, f, root, env
}

// withoutToken drops VAULT_TOKEN: what an app has is its AppRole credentials.
func withoutToken(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "VAULT_TOKEN=") {
			out = append(out, kv)
		}
	}
	return out
}

func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatalf("copying %s: %v", src, err)
	}
}

// modelsStatus is the HTTP status of GET <baseURL>/models with key.
func modelsStatus(t testing.TB, baseURL, key string) int {
	t.Helper()
	req, err := http.NewRequest("GET", strings.TrimRight(baseURL, "/")+"/models", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /v1/models at the fake: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// process is a long-running command a test owns (vault agent), in its own
// process group; cleanup stops the group and, on failure, prints its output
// with the Vault's secrets redacted.
type process struct {
	cmd    *exec.Cmd
	stdout lockedBuffer
	stderr lockedBuffer
	done   chan struct{}
	err    error
}

// startProcess runs line (one shell command, from a README) with bash's exec,
// so the process is the command itself (its pid is the command's).
func startProcess(t *testing.T, v *Vault, dir string, env []string, line string) *process {
	t.Helper()
	p := &process{done: make(chan struct{})}
	p.cmd = exec.Command("bash", "-c", "exec "+line)
	p.cmd.Dir = dir
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", line, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited(0) {
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
			if !p.exited(15 * time.Second) {
				_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
				p.exited(5 * time.Second)
			}
		}
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) // children left behind
		if t.Failed() {
			t.Logf("---- %s: stdout ----\n%s\n---- stderr ----\n%s\n---- end ----",
				line, v.redact(p.stdout.String()), v.redact(p.stderr.String()))
		}
	})
	return p
}

// exited waits up to d for the process to exit.
func (p *process) exited(d time.Duration) bool {
	if d == 0 {
		select {
		case <-p.done:
			return true
		default:
			return false
		}
	}
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// exitCode is the process's exit status (-1 if killed by a signal).
func (p *process) exitCode() int {
	if p.err == nil {
		return 0
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}
