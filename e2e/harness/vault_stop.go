package harness

// Stopping, killing and restarting a test's Vault, and cleaning up after it.

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

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
		n := logLinesOnFailure()
		text := strings.TrimRight(string(logText), "\n")
		if lines := strings.Split(text, "\n"); n > 0 && len(lines) > n {
			text = fmt.Sprintf("[... %d earlier lines ...]\n", len(lines)-n) + strings.Join(lines[len(lines)-n:], "\n")
		}
		v.t.Logf("---- Vault server log, secrets redacted ----\n%s\n---- end of Vault log ----", v.Redact(text))
	}
}

// logLinesOnFailure is how much of a Vault log a failed test prints: the tail is
// where a failure shows; E2E_VAULT_LOG_LINES=0 prints all of it.
func logLinesOnFailure() int {
	n := 300
	if s := os.Getenv("E2E_VAULT_LOG_LINES"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	return n
}
