package harness

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// VaultOptions selects how StartVault runs the server. The zero value is a dev server.
type VaultOptions struct {
	// FileStorage runs a non-dev server on file storage in the test's temp dir, which
	// the harness initialises and unseals, so Restart and Kill keep its data.
	FileStorage bool
	// PluginDir overrides the plugin directory (default: the suite's, holding the
	// plugin built by TestMain).
	PluginDir string
	// Env is added to the Vault process environment (and so its plugins').
	Env []string
}

// Vault is one Vault server process owned by a test.
type Vault struct {
	t    testing.TB
	opts VaultOptions
	dir  string

	Addr   string
	Token  string
	Client *api.Client

	unsealKey string
	logPath   string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current process has exited

	secretsMu sync.Mutex
	secrets   []string // values redacted from anything the harness prints
}

// StartVault starts a Vault server for t and stops it (and its plugins) at cleanup.
// On test failure the server log is printed, with known secrets redacted.
func StartVault(t testing.TB, opts VaultOptions) *Vault {
	t.Helper()
	if opts.PluginDir == "" {
		opts.PluginDir = Suite.PluginDir
	}
	v := &Vault{t: t, opts: opts, dir: t.TempDir()}
	v.logPath = filepath.Join(v.dir, "vault.log")
	v.Token = "root-" + RandHex(8)
	if opts.FileStorage {
		v.Token = "" // set by init
	}
	t.Cleanup(v.cleanup)
	v.start()
	if opts.FileStorage {
		v.initAndUnseal()
	} else {
		v.Client.SetToken(v.Token)
	}
	v.AddSecret(v.Token)
	return v
}

// AddSecret registers a value the harness must never print (it is replaced by
// [REDACTED] in dumped logs).
func (v *Vault) AddSecret(s string) {
	if s == "" {
		return
	}
	v.secretsMu.Lock()
	v.secrets = append(v.secrets, s)
	v.secretsMu.Unlock()
}

func (v *Vault) Redact(s string) string {
	v.secretsMu.Lock()
	defer v.secretsMu.Unlock()
	for _, sec := range v.secrets {
		s = strings.ReplaceAll(s, sec, "[REDACTED]")
	}
	return s
}

// start launches the server process on a fresh free port and waits for its API.
func (v *Vault) start() {
	v.t.Helper()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port := FreePort(v.t)
		v.Addr = "http://127.0.0.1:" + strconv.Itoa(port)
		if lastErr = v.launch(port); lastErr == nil {
			return
		}
		if !strings.Contains(lastErr.Error(), "address already in use") {
			break
		}
	}
	v.t.Fatalf("starting Vault: %v", lastErr)
}

func (v *Vault) launch(port int) error {
	var args []string
	if v.opts.FileStorage {
		cfg := map[string]any{
			"storage":          map[string]any{"file": map[string]any{"path": filepath.Join(v.dir, "data")}},
			"listener":         map[string]any{"tcp": map[string]any{"address": fmt.Sprintf("127.0.0.1:%d", port), "tls_disable": true}},
			"plugin_directory": v.opts.PluginDir,
			"api_addr":         v.Addr,
			"disable_mlock":    true,
		}
		b, _ := json.Marshal(cfg)
		path := filepath.Join(v.dir, "config.json")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return err
		}
		args = []string{"server", "-config=" + path}
	} else {
		args = []string{"server", "-dev",
			"-dev-root-token-id=" + v.Token,
			fmt.Sprintf("-dev-listen-address=127.0.0.1:%d", port),
			"-dev-plugin-dir=" + v.opts.PluginDir,
			"-dev-plugin-init=false", // register explicitly, by SHA-256 and version
			"-dev-no-store-token",
		}
	}
	// Debug, because Vault logs a plugin's plain stderr (where a race report goes) at debug.
	args = append(args, "-log-level=debug")

	logf, err := os.OpenFile(v.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "==== harness: %s %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(args, " "))
	cmd := exec.Command(Suite.VaultBin, args...)
	cmd.Dir = v.dir
	cmd.Env = append(CleanEnv(), v.opts.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: Kill takes the plugin processes down with Vault, as a crash
	// of the host would, and cleanup never leaves a stray plugin behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	v.mu.Lock()
	v.cmd, v.exited = cmd, exited
	v.mu.Unlock()

	cfg := api.DefaultConfig()
	cfg.Address = v.Addr
	cfg.MaxRetries = 0
	cfg.Timeout = 2 * time.Minute
	client, err := api.NewClient(cfg)
	if err != nil {
		return err
	}
	client.ClearNamespace()
	if v.Client != nil {
		client.SetToken(v.Client.Token())
	}
	v.Client = client

	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("vault exited during start-up: %s", v.lastLogLines(5))
		default:
		}
		// Any answer from seal-status means the listener is up (sealed or not).
		if _, err := client.Sys().SealStatus(); err == nil {
			if v.opts.FileStorage {
				return nil
			}
			if h, err := client.Sys().Health(); err == nil && h.Initialized && !h.Sealed {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("vault did not answer within 60s")
}

func (v *Vault) initAndUnseal() {
	v.t.Helper()
	resp, err := v.Client.Sys().Init(&api.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		v.t.Fatalf("vault operator init: %v", err)
	}
	v.unsealKey = resp.Keys[0]
	v.AddSecret(v.unsealKey)
	v.AddSecret(resp.RootToken)
	v.Token = resp.RootToken
	v.Client.SetToken(v.Token)
	v.unseal()
}

func (v *Vault) unseal() {
	v.t.Helper()
	st, err := v.Client.Sys().Unseal(v.unsealKey)
	if err != nil {
		v.t.Fatalf("unseal: %v", err)
	}
	if st.Sealed {
		v.t.Fatalf("still sealed after unseal")
	}
	// Unsealed is not yet active: wait until requests are served.
	WaitFor(v.t, 60*time.Second, "vault active after unseal", func() bool {
		h, err := v.Client.Sys().Health()
		return err == nil && !h.Sealed && !h.Standby
	})
}

// Stop shuts Vault down gracefully (SIGTERM) and waits for it.
func (v *Vault) Stop() {
	v.t.Helper()
	v.signal(syscall.SIGTERM, false)
	if !v.wait(60 * time.Second) {
		v.t.Errorf("vault did not stop within 60s of SIGTERM; killing it")
		v.signal(syscall.SIGKILL, true)
		v.wait(10 * time.Second)
	}
	// Vault stops its plugins on the way down; anything left in the group is stray.
	v.signal(syscall.SIGKILL, true)
}

// Kill is kill -9 of Vault and every plugin process it started.
func (v *Vault) Kill() {
	v.t.Helper()
	v.signal(syscall.SIGKILL, true)
	if !v.wait(10 * time.Second) {
		v.t.Fatalf("vault survived SIGKILL")
	}
}

// Restart starts the server again on its existing storage (FileStorage only), on a
// new port, and unseals it. Client follows the new address.
func (v *Vault) Restart() {
	v.t.Helper()
	if !v.opts.FileStorage {
		v.t.Fatalf("Restart needs VaultOptions.FileStorage (dev storage is in memory)")
	}
	v.mu.Lock()
	running := v.cmd != nil && !isClosed(v.exited)
	v.mu.Unlock()
	if running {
		v.Stop()
	}
	v.start()
	v.unseal()
}

// PID is the current server process id.
func (v *Vault) PID() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.cmd.Process.Pid
}

func (v *Vault) signal(sig syscall.Signal, group bool) {
	v.mu.Lock()
	cmd := v.cmd
	v.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	if group {
		_ = syscall.Kill(-cmd.Process.Pid, sig)
	} else {
		_ = cmd.Process.Signal(sig)
	}
}

func (v *Vault) wait(d time.Duration) bool {
	v.mu.Lock()
	exited := v.exited
	v.mu.Unlock()
	if exited == nil {
		return true
	}
	select {
	case <-exited:
		return true
	case <-time.After(d):
		return false
	}
}

func (v *Vault) cleanup() {
	v.mu.Lock()
	running := v.cmd != nil && !isClosed(v.exited)
	v.mu.Unlock()
	if running {
		v.signal(syscall.SIGTERM, false)
		if !v.wait(30 * time.Second) {
			v.signal(syscall.SIGKILL, true)
			v.wait(10 * time.Second)
		}
	}
	v.signal(syscall.SIGKILL, true)

	logText, _ := os.ReadFile(v.logPath)
	if i := strings.Index(string(logText), "WARNING: DATA RACE"); i >= 0 {
		v.t.Errorf("the plugin reported a data race (Vault log follows)")
	}
	if v.t.Failed() {
		// The tail is where a failure shows; E2E_VAULT_LOG_LINES=0 prints all of it.
		n := 300
		if s := os.Getenv("E2E_VAULT_LOG_LINES"); s != "" {
			n, _ = strconv.Atoi(s)
		}
		text := strings.TrimRight(string(logText), "\n")
		if lines := strings.Split(text, "\n"); n > 0 && len(lines) > n {
			text = fmt.Sprintf("[... %d earlier lines ...]\n", len(lines)-n) + strings.Join(lines[len(lines)-n:], "\n")
		}
		v.t.Logf("---- Vault server log, secrets redacted ----\n%s\n---- end of Vault log ----", v.Redact(text))
	}
}

// Log returns the server log so far.
func (v *Vault) Log() string {
	b, _ := os.ReadFile(v.logPath)
	return string(b)
}

func (v *Vault) lastLogLines(n int) string {
	lines := strings.Split(strings.TrimSpace(v.Log()), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return v.Redact(strings.Join(lines, "\n"))
}

// PluginPIDs lists the live plugin processes Vault started (Linux: reads /proc).
func (v *Vault) PluginPIDs() []int {
	v.t.Helper()
	if runtime.GOOS != "linux" {
		v.t.Skip("PluginPIDs reads /proc")
	}
	parent := v.PID()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		v.t.Fatalf("reading /proc: %v", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'.
		s := string(stat)
		close := strings.LastIndexByte(s, ')')
		open := strings.IndexByte(s, '(')
		if open < 0 || close < open {
			continue
		}
		fields := strings.Fields(s[close+1:])
		if len(fields) < 2 || fields[0] == "Z" {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		if ppid != parent {
			continue
		}
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil &&
			filepath.Base(exe) == PluginName {
			pids = append(pids, pid)
		}
	}
	return pids
}

// CLI runs the vault CLI against this server and returns stdout, stderr and the exit
// code, for assertions on what a person at a terminal would see.
func (v *Vault) CLI(args ...string) (stdout, stderr string, code int) {
	v.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, Suite.VaultBin, args...)
	cmd.Env = append(CleanEnv(), "VAULT_ADDR="+v.Addr, "VAULT_TOKEN="+v.Client.Token())
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		v.t.Fatalf("running vault %s: %v", strings.Join(args, " "), err)
	}
	return o.String(), e.String(), code
}

// CleanEnv is the test's environment without VAULT_* variables, so a developer's
// shell (VAULT_ADDR, VAULT_DEV_LISTEN_ADDRESS, VAULT_NAMESPACE ...) cannot steer the
// servers or the CLI.
func CleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VAULT_") {
			env = append(env, kv)
		}
	}
	return env
}

func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func isClosed(ch chan struct{}) bool {
	if ch == nil {
		return true
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func RandHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// WaitFor polls cond every 100ms until it holds or timeout passes (then fails t).
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// GrepLines returns the lines of text containing sub.
func GrepLines(text, sub string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1024*1024), 16*1024*1024)
	for sc.Scan() {
		if strings.Contains(sc.Text(), sub) {
			out = append(out, sc.Text())
		}
	}
	return out
}
