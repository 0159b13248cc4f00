package harness

// A Vault HA cluster on Raft storage, started, killed and restarted through
// scripts/cluster.sh (the supported path, make cluster) so that what the tests
// prove is what an operator runs. The engine is mounted at "openai", configured
// against the test's in-process fake, with role "demo".

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// ClusterOptions selects how StartCluster runs the cluster. The zero value is
// three nodes against fake, default config and role ttls.
type ClusterOptions struct {
	Nodes int // CLUSTER_NODES; default 3
	// Env is added to the script's environment, which the nodes and so the plugin
	// inherit (e.g. "OPENAI_PLUGIN_WAL_ROLLBACK_MIN_AGE=20s").
	Env []string
	// ConfigArgs are more key=value fields for openai/config (CLUSTER_CONFIG_ARGS),
	// e.g. "retry_budget=8s request_timeout=5s".
	ConfigArgs string
	// RoleTTL and RoleMaxTTL set role "demo" (CLUSTER_ROLE_TTL, CLUSTER_ROLE_MAX_TTL).
	RoleTTL, RoleMaxTTL string
	// PluginPath is the binary registered on every node (default: the suite's build,
	// with -race when the test binary has it).
	PluginPath string
	// Version is the plugin version it is registered and mounted at (default the suite's).
	Version string
}

// Cluster is one cluster owned by a test, stopped at its cleanup (cluster.sh stop).
// On test failure every node's log is printed, secrets redacted; a data race the
// plugin reports in any node's log fails the test.
type Cluster struct {
	t        testing.TB
	Dir      string // the script's state dir: node<i>/{node.hcl,vault.log,data,plugins}
	BasePort int
	Token    string // root token
	Fake     *Fake
	// Nodes[i-1] is node i. Each is a *Vault for Issue, LeasesUnder, CLI...; its
	// address (and so Client) stays the same across Kill and Restart. Do not call
	// its Stop/Kill/Restart: the script owns the processes.
	Nodes []*Vault

	env     []string
	scriptL string // the script's output, appended per command
	// pending: secrets known before (or without) the nodes. Load clients
	// register the keys they are issued from their own goroutines.
	pendingMu sync.Mutex
	pending   []string
}

// StartCluster starts a cluster through scripts/cluster.sh start, against f.
func StartCluster(t testing.TB, f *Fake, opts ClusterOptions) *Cluster {
	t.Helper()
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.PluginPath == "" {
		opts.PluginPath = Suite.PluginPath
	}
	if opts.Version == "" {
		opts.Version = Suite.Version
	}
	c := &Cluster{t: t, Dir: filepath.Join(t.TempDir(), "cluster"), Fake: f, pending: []string{f.AdminKey()}}
	c.scriptL = filepath.Join(filepath.Dir(c.Dir), "cluster-script.log")
	t.Cleanup(c.cleanup)
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		c.BasePort = FreePortRun(t, 2*opts.Nodes)
		c.env = append(CleanEnv(),
			"VAULT_BIN="+Suite.VaultBin,
			"VAULT_PLUGIN_OPENAI_CLUSTER_DIR="+c.Dir,
			"CLUSTER_NODES="+strconv.Itoa(opts.Nodes),
			"CLUSTER_BASE_PORT="+strconv.Itoa(c.BasePort),
			"PLUGIN_BIN="+opts.PluginPath,
			"PLUGIN_VERSION="+opts.Version,
			"OPENAI_BASE_URL="+f.URL,
			"OPENAI_ADMIN_KEY="+f.AdminKey(),
			"OPENAI_PROJECT_ID="+fakeopenai.ProjectActive,
			"CLUSTER_CONFIG_ARGS="+opts.ConfigArgs,
			// Vault logs a plugin's plain stderr (where a race report goes) at debug.
			"VAULT_LOG_LEVEL=debug",
		)
		if opts.RoleTTL != "" {
			c.env = append(c.env, "CLUSTER_ROLE_TTL="+opts.RoleTTL)
		}
		if opts.RoleMaxTTL != "" {
			c.env = append(c.env, "CLUSTER_ROLE_MAX_TTL="+opts.RoleMaxTTL)
		}
		c.env = append(c.env, opts.Env...)
		var out string
		if out, err = c.Script("start"); err == nil {
			break
		}
		// Another process took one of the ports between the check and the bind.
		if !strings.Contains(out, "in use") && !strings.Contains(out, "address already in use") {
			break
		}
	}
	if err != nil {
		t.Fatalf("scripts/cluster.sh start: %v (output in the log printed at cleanup)", err)
	}
	envFile := c.readEnv()
	c.Token = envFile["VAULT_TOKEN"]
	for i := 1; i <= opts.Nodes; i++ {
		addr := envFile["VAULT_ADDR_"+strconv.Itoa(i)]
		v := &Vault{t: t, Addr: addr, Token: c.Token,
			logPath: filepath.Join(c.Dir, "node"+strconv.Itoa(i), "vault.log")}
		if v.Client, err = NewClient(addr); err != nil {
			t.Fatal(err)
		}
		v.Client.SetToken(c.Token)
		c.Nodes = append(c.Nodes, v)
	}
	c.collectSecrets()
	return c
}

// Script runs scripts/cluster.sh with args in this cluster's environment and
// returns its combined output (also appended to the script log, printed redacted
// if the test fails).
func (c *Cluster) Script(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(Suite.RepoRoot, "scripts", "cluster.sh"), args...)
	cmd.Dir = Suite.RepoRoot
	cmd.Env = c.env
	out, err := cmd.CombinedOutput()
	if f, ferr := os.OpenFile(c.scriptL, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); ferr == nil {
		fmt.Fprintf(f, "==== %s cluster.sh %s\n%s", time.Now().Format(time.RFC3339Nano), strings.Join(args, " "), out)
		f.Close()
	}
	return string(out), err
}

// Node is node i (1-based).
func (c *Cluster) Node(i int) *Vault { return c.Nodes[i-1] }

// Leader is the index of the active node (cluster.sh leader); ok is false while
// there is none (an election in progress).
func (c *Cluster) Leader() (int, bool) {
	out, err := c.Script("leader")
	if err != nil {
		return 0, false
	}
	i, err := strconv.Atoi(strings.TrimSpace(out))
	return i, err == nil
}

// WaitLeader waits for an active node and returns its index.
func (c *Cluster) WaitLeader(timeout time.Duration) int {
	c.t.Helper()
	var i int
	WaitFor(c.t, timeout, "an active node", func() bool {
		var ok bool
		i, ok = c.Leader()
		return ok
	})
	return i
}

// Active is the active node (waiting up to a minute for one).
func (c *Cluster) Active() *Vault { return c.Node(c.WaitLeader(time.Minute)) }

// Standby is the index of a live node other than the active one.
func (c *Cluster) Standby() int {
	c.t.Helper()
	active := c.WaitLeader(time.Minute)
	for i := range c.Nodes {
		if i+1 != active {
			if h, err := c.Nodes[i].Client.Sys().Health(); err == nil && h.Standby {
				return i + 1
			}
		}
	}
	c.t.Fatalf("no live standby (node %d is active)", active)
	return 0
}

// Kill is kill -9 of node i and its plugin processes (cluster.sh kill).
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	if out, err := c.Script("kill", strconv.Itoa(i)); err != nil {
		c.t.Fatalf("cluster.sh kill %d: %v\n%s", i, err, c.Redact(out))
	}
}

// Restart starts node i again on its data and unseals it; it returns once the node
// is a standby that forwards requests and autopilot counts every node a voter.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	if out, err := c.Script("restart", strconv.Itoa(i)); err != nil {
		c.t.Fatalf("cluster.sh restart %d: %v\n%s", i, err, c.Redact(out))
	}
}

// Voters lists the voters autopilot counts, asked through node i.
func (c *Cluster) Voters(i int) []string {
	c.t.Helper()
	s, err := c.Node(i).Client.Logical().Read("sys/storage/raft/autopilot/state")
	if err != nil || s == nil {
		c.t.Fatalf("reading autopilot state through node %d: %v", i, err)
	}
	raw, _ := s.Data["voters"].([]any)
	var out []string
	for _, v := range raw {
		out = append(out, fmt.Sprint(v))
	}
	return out
}

// AddSecret registers a value never to be printed, on every node.
func (c *Cluster) AddSecret(s string) {
	if s == "" {
		return
	}
	c.pendingMu.Lock()
	c.pending = append(c.pending, s)
	c.pendingMu.Unlock()
	for _, v := range c.Nodes {
		v.AddSecret(s)
	}
}

// collectSecrets registers the root token and unseal key the script wrote, which
// its own output (and Vault's logs) may show.
func (c *Cluster) collectSecrets() {
	if b, err := os.ReadFile(filepath.Join(c.Dir, "unseal-key")); err == nil {
		c.AddSecret(strings.TrimSpace(string(b)))
	}
	if b, err := os.ReadFile(filepath.Join(c.Dir, "state")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if tok, ok := strings.CutPrefix(line, "VAULT_TOKEN="); ok {
				c.AddSecret(tok)
			}
		}
	}
}

// Redact removes every secret any node has seen (keys issued through it included).
func (c *Cluster) Redact(s string) string {
	c.pendingMu.Lock()
	for _, sec := range c.pending {
		s = strings.ReplaceAll(s, sec, "[REDACTED]")
	}
	c.pendingMu.Unlock()
	for _, v := range c.Nodes {
		s = v.Redact(s)
	}
	return s
}

// readEnv parses the script's env file.
func (c *Cluster) readEnv() map[string]string {
	c.t.Helper()
	return ReadClusterEnv(c.t, c.Dir)
}

// ReadClusterEnv parses the env file scripts/cluster.sh writes in its state
// dir ("export K=V" lines; surrounding quotes dropped), for the tests and
// the scale bench alike.
func ReadClusterEnv(t testing.TB, dir string) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "env"))
	if err != nil {
		t.Fatalf("the cluster's env file: %v", err)
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "="); ok && !strings.HasPrefix(k, "#") {
			m[k] = strings.Trim(v, `"'`)
		}
	}
	return m
}

func (c *Cluster) cleanup() {
	c.collectSecrets()
	if _, err := os.Stat(filepath.Join(c.Dir, "state")); err == nil {
		if out, err := c.Script("stop"); err != nil {
			c.t.Errorf("cluster.sh stop: %v\n%s", err, c.Redact(out))
		}
	}
	for i, v := range c.Nodes {
		if strings.Contains(v.Log(), "WARNING: DATA RACE") {
			c.t.Errorf("node %d: the plugin reported a data race (its log follows)", i+1)
		}
	}
	if !c.t.Failed() {
		return
	}
	if b, err := os.ReadFile(c.scriptL); err == nil {
		c.t.Logf("---- cluster.sh output, secrets redacted ----\n%s---- end ----", c.Redact(string(b)))
	}
	for i, v := range c.Nodes {
		c.t.Logf("---- node %d log (tail), secrets redacted ----\n%s\n---- end of node %d log ----",
			i+1, c.Redact(v.lastLogLines(logLinesOnFailure())), i+1)
	}
}

// FreePortRun finds n consecutive free loopback ports and returns the first.
func FreePortRun(t testing.TB, n int) int {
	t.Helper()
	for attempt := 0; attempt < 100; attempt++ {
		base := 20000 + 2*rand.IntN(15000)
		free := true
		for p := base; p < base+n && free; p++ {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				free = false
				continue
			}
			l.Close()
		}
		if free {
			return base
		}
	}
	t.Fatalf("no run of %d free loopback ports found", n)
	return 0
}
