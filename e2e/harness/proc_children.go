package harness

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ChildProc is one live child process: its pid and its executable's base name.
type ChildProc struct {
	PID int
	Exe string
}

// ChildProcs lists the live (not zombie) child processes of parent (Linux:
// reads /proc; nil elsewhere or for pid 0). Every lookup of the plugin
// processes a Vault node started goes through it.
func ChildProcs(parent int) []ChildProc {
	entries, err := os.ReadDir("/proc")
	if err != nil || parent == 0 {
		return nil
	}
	var out []ChildProc
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
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) < 2 || fields[0] == "Z" || fields[1] != strconv.Itoa(parent) {
			continue
		}
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil {
			out = append(out, ChildProc{PID: pid, Exe: filepath.Base(exe)})
		}
	}
	return out
}

// ChildPIDsNamed lists the pids of parent's live children run from a binary
// called name.
func ChildPIDsNamed(parent int, name string) []int {
	var pids []int
	for _, c := range ChildProcs(parent) {
		if c.Exe == name {
			pids = append(pids, c.PID)
		}
	}
	return pids
}
