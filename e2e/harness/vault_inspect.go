package harness

// What a test reads from a running Vault: its log, its plugin processes, the CLI.

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Log returns the server log so far.
func (v *Vault) Log() string {
	b, _ := os.ReadFile(v.logPath)
	return string(b)
}

func (v *Vault) lastLogLines(n int) string {
	lines := strings.Split(strings.TrimSpace(v.Log()), "\n")
	if n > 0 && len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return v.Redact(strings.Join(lines, "\n"))
}

// PluginPIDs lists the live plugin processes Vault started (Linux: reads /proc).
func (v *Vault) PluginPIDs() []int {
	v.t.Helper()
	return v.PluginPIDsNamed(PluginName)
}

// PluginPIDsNamed lists the live processes Vault started from a binary called
// name, for a Vault running more than one build of the plugin under different
// catalog names.
func (v *Vault) PluginPIDsNamed(name string) []int {
	v.t.Helper()
	if runtime.GOOS != "linux" {
		v.t.Skip("PluginPIDs reads /proc")
	}
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		v.t.Fatalf("reading /proc: %v", err)
	}
	return ChildPIDsNamed(v.PID(), name)
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
