package harness

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

	client, err := NewClient(v.Addr)
	if err != nil {
		return err
	}
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

// NewClient is an API client for the Vault at addr: no retries (a test sees every
// failure) and no namespace from the environment.
func NewClient(addr string) (*api.Client, error) {
	cfg := api.DefaultConfig()
	cfg.Address = addr
	cfg.MaxRetries = 0
	cfg.Timeout = 2 * time.Minute
	client, err := api.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	client.ClearNamespace()
	return client, nil
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
