//go:build scale

package bench

// The Vault cluster the scale benchmark runs on: scripts/cluster.sh (1 node =
// a single Raft node, 3 = the HA cluster), driven from the test, with the
// in-process fake as its OpenAI. The script starts, kills and restarts nodes;
// this file finds their processes, their plugin processes and their Raft
// directories, and which node is active.

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/vault-plugin-openai/vault-plugin-openai/e2e/harness"
	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// scaleCluster is one running cluster.sh cluster.
type scaleCluster struct {
	t     *testing.T
	nodes int
	dir   string   // VAULT_PLUGIN_OPENAI_CLUSTER_DIR
	env   []string // the script's environment
	token string
	addrs []string // node i's API address at addrs[i-1]
	pprof string   // the active node's plugin pprof base URL
	// fake is the Admin API every node's plugin calls; gauge counts its
	// deletes in flight (benchEnv.gaugedFake).
	fake  *harness.Fake
	gauge *benchEnv
}

// startCluster runs `cluster.sh start` with nodes nodes against a fresh fake,
// the suite's plugin (built with its pprof listener) and the pinned Vault,
// and stops it at cleanup.
func startCluster(t *testing.T, nodes int) (*scaleCluster, time.Duration) {
	t.Helper()
	c := &scaleCluster{t: t, nodes: nodes, dir: t.TempDir(), gauge: &benchEnv{t: t}}
	c.fake = c.gauge.gaugedFake(false)
	pprofAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	c.pprof = "http://" + pprofAddr
	c.env = append(harness.CleanEnv(),
		"VAULT_PLUGIN_OPENAI_CLUSTER_DIR="+c.dir,
		"CLUSTER_NODES="+strconv.Itoa(nodes),
		"CLUSTER_BASE_PORT="+strconv.Itoa(harness.FreePortRun(t, 4*nodes+4)),
		"VAULT_BIN="+harness.Suite.VaultBin,
		"PLUGIN_BIN="+harness.Suite.PluginPath,
		"PLUGIN_VERSION="+harness.Suite.Version,
		"OPENAI_BASE_URL="+c.fake.URL,
		"OPENAI_ADMIN_KEY="+c.fake.AdminKey(),
		"OPENAI_PROJECT_ID="+fakeopenai.ProjectActive,
		// Nodes inherit the script's environment and plugins their node's
		// (Vault's default env layering), so the active node's plugin
		// serves its heap here. Only the active node runs the plugin.
		"OPENAI_PLUGIN_PPROF_ADDR="+pprofAddr,
	)
	t0 := time.Now()
	t.Cleanup(c.stop)
	c.script("start")
	took := time.Since(t0)
	c.readEnv()
	return c, took
}

// script runs scripts/cluster.sh with args and returns its stdout.
func (c *scaleCluster) script(args ...string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(harness.Suite.RepoRoot, "scripts", "cluster.sh"), args...)
	cmd.Env = c.env
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		c.t.Fatalf("cluster.sh %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, c.redact(out.String()), c.redact(errb.String()))
	}
	return out.String()
}

func (c *scaleCluster) redact(s string) string {
	for _, sec := range []string{c.token, c.fake.AdminKey()} {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[REDACTED]")
		}
	}
	return s
}

func (c *scaleCluster) stop() {
	cmd := exec.Command(filepath.Join(harness.Suite.RepoRoot, "scripts", "cluster.sh"), "stop")
	cmd.Env = c.env
	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Errorf("cluster.sh stop: %v\n%s", err, c.redact(string(out)))
	}
}

// readEnv reads the token and every node's address from $DIR/env.
func (c *scaleCluster) readEnv() {
	c.t.Helper()
	vars := harness.ReadClusterEnv(c.t, c.dir)
	c.token = vars["VAULT_TOKEN"]
	c.addrs = nil
	for i := 1; i <= c.nodes; i++ {
		a := vars["VAULT_ADDR_"+strconv.Itoa(i)]
		if a == "" && c.nodes == 1 {
			a = vars["VAULT_ADDR"]
		}
		if a == "" {
			c.t.Fatalf("cluster env has no address for node %d", i)
		}
		c.addrs = append(c.addrs, a)
	}
	if c.token == "" {
		c.t.Fatal("cluster env has no VAULT_TOKEN")
	}
}

// leader is the index (1-based) of the active node, from `cluster.sh leader`.
func (c *scaleCluster) leader() int {
	c.t.Helper()
	out := strings.TrimSpace(c.script("leader"))
	n, err := strconv.Atoi(out)
	if err != nil || n < 1 || n > c.nodes {
		c.t.Fatalf("cluster.sh leader: %q", out)
	}
	return n
}

// client is an API client for node i (1-based) with the root token.
func (c *scaleCluster) client(i int) *api.Client {
	c.t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = c.addrs[i-1]
	cfg.MaxRetries = 0
	cfg.Timeout = 5 * time.Minute
	cfg.Limiter = nil
	tr := cfg.HttpClient.Transport.(*http.Transport)
	tr.MaxIdleConnsPerHost = 64
	cl, err := api.NewClient(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	cl.ClearNamespace()
	cl.SetToken(c.token)
	return cl
}

// nodeDir is node i's state directory (raft data, log, config).
func (c *scaleCluster) nodeDir(i int) string { return filepath.Join(c.dir, "node"+strconv.Itoa(i)) }

// vaultPID is node i's server process, from the script's state file (0 if
// it is not running).
func (c *scaleCluster) vaultPID(i int) int {
	b, err := os.ReadFile(filepath.Join(c.dir, "state"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "NODE_PID_"+strconv.Itoa(i)+"="); ok {
			if pid, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && !procZombie(pid) {
				return pid
			}
		}
	}
	return 0
}

func procZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) == 0 || f[0] == "Z"
}

// pluginPIDs lists the plugin processes whose parent is pid.
func pluginPIDs(pid int) []int { return harness.ChildPIDsNamed(pid, harness.PluginName) }

// dirMB is the size on disk of the files under dir (Raft's log store and FSM).
func dirMB(dir string) float64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return float64(total) / (1 << 20)
}

// raftDir is node i's Raft storage path (raft/raft.db, the log store, and
// vault.db, the FSM), as cluster.sh renders it.
func (c *scaleCluster) raftDir(i int) string { return filepath.Join(c.nodeDir(i), "data") }

// nodeLog is node i's server log.
func (c *scaleCluster) nodeLog(i int) string { return filepath.Join(c.nodeDir(i), "vault.log") }

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}
