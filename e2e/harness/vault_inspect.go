package harness

// What a test reads from a running Vault: its log, its plugin processes, the CLI.

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
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
			filepath.Base(exe) == name {
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
