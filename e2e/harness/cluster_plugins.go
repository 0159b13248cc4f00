package harness

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// What runs where in a cluster: each node's server process, the plugin
// binaries it started, and its plugin directory (for an upgrade, every node
// needs the new binary before the catalog names it).

// NodePID is node i's server process id, from the pid file cluster.sh writes
// (0 if there is none).
func (c *Cluster) NodePID(i int) int {
	b, err := os.ReadFile(filepath.Join(c.Dir, "node"+strconv.Itoa(i), "pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// PluginDir is node i's plugin directory (plugin_directory in its config).
func (c *Cluster) PluginDir(i int) string {
	return filepath.Join(c.Dir, "node"+strconv.Itoa(i), "plugins")
}

// PluginExes lists the executables (base names) of the live plugin processes
// node i started: on Community Edition only the active node runs the engine.
func (c *Cluster) PluginExes(i int) []string {
	return ChildExes(c.NodePID(i), PluginName)
}

// ChildExes lists the executables (base names starting with prefix) of the
// live child processes of pid (Linux: reads /proc).
func ChildExes(pid int, prefix string) []string {
	entries, err := os.ReadDir("/proc")
	if err != nil || pid == 0 {
		return nil
	}
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) < 2 || fields[0] == "Z" || fields[1] != strconv.Itoa(pid) {
			continue
		}
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil &&
			strings.HasPrefix(filepath.Base(exe), prefix) {
			out = append(out, filepath.Base(exe))
		}
	}
	return out
}
