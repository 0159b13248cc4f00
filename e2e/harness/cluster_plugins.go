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
	var out []string
	for _, c := range ChildProcs(pid) {
		if strings.HasPrefix(c.Exe, prefix) {
			out = append(out, c.Exe)
		}
	}
	return out
}
