//go:build scale

package bench

// TestBenchScale is `make bench-scale`: 50,000 live leases on a single Raft
// node and on a 3-node HA cluster (scripts/cluster.sh), each with the memory
// of Vault and the plugin and the Raft storage at 1k, 10k, 25k and 50k live
// leases, issue throughput at 0 and 100 ms upstream against live leases, the
// sweep over every account, revocation of all of them by prefix, and
// restart or failover with them to restore, next to the same Vault figures
// for as many tokens with a TTL (Vault's own lease workload). It writes
// bench/results/scale.{json,md} and scale-*.png (BENCH_SCALE_OUT overrides
// the directory).

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/vault-plugin-openai/vault-plugin-openai/e2e/harness"
	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// scaleConfig sizes one run.
type scaleConfig struct {
	Name        string `json:"name"` // full, or custom when shrunk
	Leases      int    `json:"leases"`
	Checkpoints []int  `json:"checkpoints"` // live leases at which memory and issue cells are measured
	Topologies  []int  `json:"topologies"`  // node counts, run one after the other
	Latencies   []int  `json:"upstream_latencies_ms"`
	Clients     []int  `json:"clients"` // per latency, same order
	Reps        int    `json:"repetitions"`
	// Each issue cell: up to CellRequests requests or CellDuration.
	CellRequests int           `json:"cell_requests"`
	CellDuration time.Duration `json:"cell_duration"`
	FillClients  int           `json:"fill_clients"`
	FillChunk    int           `json:"fill_chunk"`
	Tokens       bool          `json:"tokens"` // the token workload of the same size
	// MaxDegradation is the issue's limit on throughput lost from the
	// first to the last checkpoint (0.20: at most 20% fewer issues/s).
	MaxDegradation float64 `json:"max_degradation"`
}

func scaleConfigFromEnv() scaleConfig {
	cfg := scaleConfig{
		Name: "full", Leases: 50000, Topologies: []int{1, 3},
		Latencies: []int{0, 100}, Clients: []int{16, 32}, Reps: 3,
		CellRequests: 1500, CellDuration: 4 * time.Second,
		FillClients: 64, Tokens: true, MaxDegradation: 0.20,
	}
	if n, err := strconv.Atoi(os.Getenv("BENCH_SCALE_LEASES")); err == nil && n > 0 {
		cfg.Leases, cfg.Name = n, "custom"
	}
	if v := os.Getenv("BENCH_SCALE_NODES"); v != "" {
		cfg.Topologies, cfg.Name = nil, "custom"
		for _, f := range strings.Split(v, ",") {
			if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
				cfg.Topologies = append(cfg.Topologies, n)
			}
		}
	}
	if os.Getenv("BENCH_SCALE_TOKENS") == "0" {
		cfg.Tokens, cfg.Name = false, "custom"
	}
	// 1k, 10k, 25k and 50k of 50,000: the same fractions of a smaller run.
	for _, f := range []float64{0.02, 0.2, 0.5, 1} {
		cfg.Checkpoints = append(cfg.Checkpoints, max(int(f*float64(cfg.Leases)), 1))
	}
	cfg.Checkpoints = slices.Compact(cfg.Checkpoints)
	cfg.FillChunk = max(cfg.Leases/25, 100)
	cfg.CellRequests = min(cfg.CellRequests, max(cfg.Leases/10, 100))
	return cfg
}

// topologyResult is everything measured on one cluster.
type topologyResult struct {
	Nodes        int              `json:"nodes"`
	StartSeconds float64          `json:"start_seconds"` // cluster.sh start
	Memory       []memPoint       `json:"memory"`
	Fill         []fillChunk      `json:"fill"`
	Cells        []scaleCell      `json:"issue_cells"`
	Tidy         tidyResult       `json:"sweep"`
	Failover     []failoverResult `json:"failover"`
	Revoke       revokeResult     `json:"revoke_prefix"`
	TokenFill    []fillChunk      `json:"token_fill,omitempty"`
	Degradation  []degradation    `json:"degradation"`
	Seconds      float64          `json:"seconds"`
}

// degradation compares issue throughput at the first and the last
// checkpoint at one upstream latency: medians over the repetitions.
type degradation struct {
	LatencyMS  int     `json:"upstream_latency_ms"`
	Clients    int     `json:"clients"`
	LiveLow    int     `json:"live_low"`
	LiveHigh   int     `json:"live_high"`
	PerSecLow  float64 `json:"per_second_low"`
	PerSecHigh float64 `json:"per_second_high"`
	Ratio      float64 `json:"ratio"` // high ÷ low
	Pass       bool    `json:"pass"`
	// The KV v2 control at the same checkpoints and clients (0 ms): how much
	// of the change is Vault's and the disk's with no plugin and no lease.
	KVLow   float64 `json:"kv_per_second_low"`
	KVHigh  float64 `json:"kv_per_second_high"`
	KVRatio float64 `json:"kv_ratio"`
}

type scaleReport struct {
	Config      scaleConfig      `json:"config"`
	Machine     machineInfo      `json:"machine"`
	StartedAt   time.Time        `json:"started_at"`
	WallSeconds float64          `json:"wall_seconds"`
	Topologies  []topologyResult `json:"topologies"`
	Notes       []string         `json:"notes"`
}

func TestBenchScale(t *testing.T) {
	if raceEnabled {
		t.Fatal("run the scale benchmark without -race: the plugin would be built with the race detector")
	}
	dir := os.Getenv("BENCH_SCALE_OUT")
	if dir == "" {
		dir = filepath.Join(harness.Suite.RepoRoot, "bench", "results")
	}
	cfg := scaleConfigFromEnv()
	start := time.Now()
	rep := &scaleReport{Config: cfg, StartedAt: start.UTC(), Machine: machine()}
	b0, _, t0 := machineTicks()
	time.Sleep(2 * time.Second)
	if b1, _, t1 := machineTicks(); t1 > t0 {
		rep.Machine.BusyBefore = (b1 - b0) / (t1 - t0)
	}
	logf := func(format string, args ...any) {
		t.Logf("[scale %6.1fs] %s", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	logf("machine busy before the run: %.0f%%", 100*rep.Machine.BusyBefore)
	// The report is written even when a phase fails: what was measured
	// up to it is kept (a fatal failure ends the run at once).
	defer func() {
		rep.WallSeconds = time.Since(start).Seconds()
		rep.Machine.Vault = vaultVersion
		rep.Notes = scaleNotes(rep)
		writeScaleReport(t, rep, dir)
	}()
	for _, n := range cfg.Topologies {
		rep.Topologies = append(rep.Topologies, topologyResult{Nodes: n})
		runScale(t, cfg, &rep.Topologies[len(rep.Topologies)-1], logf)
		if t.Failed() {
			break
		}
	}
}

// vaultVersion is `vault version` of the binary the clusters run.
var vaultVersion string

// runScale runs every phase on one cluster of n nodes.
func runScale(t *testing.T, cfg scaleConfig, res *topologyResult, logf func(string, ...any)) {
	t0 := time.Now()
	n := res.Nodes
	defer func() { res.Seconds = time.Since(t0).Seconds() }()
	c, took := startCluster(t, n)
	res.StartSeconds = took.Seconds()
	if out, err := exec.Command(harness.Suite.VaultBin, "version").Output(); err == nil {
		vaultVersion = strings.TrimSpace(string(out))
	}
	logf("%d-node cluster up in %.1fs (leader node %d)", n, took.Seconds(), c.leader())
	cl := c.client(c.leader())
	if _, err := cl.Logical().Write("openai/roles/"+scaleRole, map[string]any{"project_id": fakeopenai.ProjectActive, "ttl": "1h", "max_ttl": "2h"}); err != nil {
		t.Fatalf("writing role %s: %v", scaleRole, err)
	}
	if ok, err := cl.Logical().Read("openai/creds/" + scaleRole); err != nil || ok == nil {
		t.Fatalf("first issue: %v", err)
	}
	// KV v2 for the control cells (kv_write at each checkpoint).
	if err := cl.Sys().Mount("kv", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatalf("mounting kv v2: %v", err)
	}
	kvReady(t, cl)
	live := 1

	issueProbe := func(cl *api.Client) error {
		_, err := cl.Logical().Read("openai/creds/" + scaleRole)
		if err == nil {
			live++
		}
		return err
	}
	// Failover with nothing to restore: Vault's own election and start-up.
	if n > 1 {
		old := c.issueSample(&live, 1)
		f := c.failover("none", live, 0, issueProbe, renewLease(old[0]))
		res.Failover = append(res.Failover, f)
		logf("failover with %d leases: active after %.2fs, first issue %.2fs, renewal %.2fs, restore complete %.2fs; killed node back as standby in %.1fs",
			live, f.ActiveSeconds, f.IssueSeconds, f.RenewSeconds, f.RestoreSeconds, f.RejoinSeconds)
	}

	for _, cp := range cfg.Checkpoints {
		res.Fill = append(res.Fill, c.fill("issue", &live, cp, cfg.FillChunk, cfg.FillClients, logf)...)
		m := c.measureMemory(live, 0)
		res.Memory = append(res.Memory, m)
		logf("%6d live leases: Vault RSS %.0f MB, heap after GC %.0f MB (runtime alloc %.0f MB); plugin RSS %.1f MB, heap after GC %.1f MB; Raft %.1f MB on disk",
			live, m.VaultRSSMB, m.VaultHeapGCMB, m.VaultAllocMB, m.PluginRSSMB, m.PluginHeapGCMB, m.RaftMB)
		// The first and last checkpoints are the comparison the issue asks
		// for: every repetition there, one in between (the plot's points).
		reps := 1
		if cp == cfg.Checkpoints[0] || cp == cfg.Checkpoints[len(cfg.Checkpoints)-1] {
			reps = cfg.Reps
		}
		for r := 1; r <= reps; r++ {
			// The KV control first, at the first latency's clients, then
			// every issue cell: interleaved, so both see the same machine.
			kv := c.issueCell(cfg, opKV, cp, &live, 0, cfg.Clients[0], r)
			res.Cells = append(res.Cells, kv)
			logf("kv_write    c=%d at %6d live (rep %d): %.0f/s, p50 %.1f ms; Vault CPU ms/write %.2f; machine busy %.0f%%; %s",
				kv.Clients, live, r, kv.PerSecond, kv.P50MS, kv.VaultCPUMS, 100*kv.Busy, kv.Disk)
			for i, lat := range cfg.Latencies {
				cell := c.issueCell(cfg, opIssue, cp, &live, time.Duration(lat)*time.Millisecond, cfg.Clients[i], r)
				res.Cells = append(res.Cells, cell)
				logf("issue %3d ms c=%d at %6d live (rep %d): %.0f/s, p50 %.1f ms, p99 %.1f ms; CPU ms/issue Vault %.2f plugin %.2f; machine busy %.0f%%; %s",
					lat, cell.Clients, cell.LiveAtStart, r, cell.PerSecond, cell.P50MS, cell.P99MS, cell.VaultCPUMS, cell.PluginCPUMS, 100*cell.Busy, cell.Disk)
			}
		}
	}
	res.Degradation = degradations(cfg, res.Cells)

	res.Tidy = c.tidy(live)
	logf("sweep (openai/tidy) over %d accounts: %.2fs (engine %d ms), %d records, %d projects listed, upstream calls %v",
		live, res.Tidy.Seconds, res.Tidy.EngineMS, res.Tidy.Records, res.Tidy.Projects, res.Tidy.UpstreamCalls)

	old := c.issueSample(&live, 1)
	f := c.failover("openai leases", live, 0, issueProbe, renewLease(old[0]))
	res.Failover = append(res.Failover, f)
	logf("%s with %d leases: active after %.2fs, first issue %.2fs, renewal %.2fs, restore complete %.2fs (restore itself %.2fs); rejoin %.1fs",
		failoverWord(n), live, f.ActiveSeconds, f.IssueSeconds, f.RenewSeconds, f.RestoreSeconds, f.RestoreLogSeconds, f.RejoinSeconds)

	res.Revoke = c.revokeAll(live, logf)
	logf("revoke-prefix of %d leases: %.1fs to zero accounts at the fake, %.1fs until Vault lists none (%d delete calls, max %d in flight)",
		live, res.Revoke.SecondsToZero, res.Revoke.SecondsToNoLeases, res.Revoke.DeleteCalls, res.Revoke.MaxInFlight)
	live = 0
	m := c.measureMemory(0, 0)
	res.Memory = append(res.Memory, m)
	logf("after revoking them: Vault RSS %.0f MB, heap after GC %.0f MB; plugin heap after GC %.1f MB; Raft %.1f MB", m.VaultRSSMB, m.VaultHeapGCMB, m.PluginHeapGCMB, m.RaftMB)

	// Tokens are the comparison for what is Vault's: its restore on failover
	// above all, so they run on the cluster (on one node too if it is the
	// only topology of the run).
	if cfg.Tokens && (n > 1 || len(cfg.Topologies) == 1) {
		tokens := 0
		res.TokenFill = c.fill("token", &tokens, cfg.Leases, cfg.FillChunk, cfg.FillClients, logf)
		m := c.measureMemory(0, tokens)
		res.Memory = append(res.Memory, m)
		logf("%d tokens with a TTL: Vault RSS %.0f MB, heap after GC %.0f MB; Raft %.1f MB", tokens, m.VaultRSSMB, m.VaultHeapGCMB, m.RaftMB)
		sample := c.tokenSample(&tokens)
		f := c.failover("tokens", 0, tokens, func(cl *api.Client) error {
			_, err := cl.Auth().Token().CreateOrphan(&api.TokenCreateRequest{TTL: "1h", Policies: []string{"default"}})
			if err == nil {
				tokens++
			}
			return err
		}, func(cl *api.Client) error {
			cl.SetToken(sample)
			_, err := cl.Auth().Token().RenewSelf(0)
			return err
		})
		res.Failover = append(res.Failover, f)
		logf("%s with %d tokens: active after %.2fs, first token %.2fs, token renewal %.2fs, restore complete %.2fs (restore itself %.2fs)",
			failoverWord(n), tokens, f.ActiveSeconds, f.IssueSeconds, f.RenewSeconds, f.RestoreSeconds, f.RestoreLogSeconds)
	}
}

func failoverWord(n int) string {
	if n == 1 {
		return "kill -9 and restart"
	}
	return "failover"
}

// issueSample issues n keys through the API and returns their lease ids.
func (c *scaleCluster) issueSample(live *int, n int) []string {
	c.t.Helper()
	var ids []string
	cl := c.client(c.leader())
	for range n {
		s, err := cl.Logical().Read("openai/creds/" + scaleRole)
		if err != nil || s == nil || s.LeaseID == "" {
			c.t.Fatalf("issuing a sample key: %v", err)
		}
		ids = append(ids, s.LeaseID)
		*live++
	}
	return ids
}

// tokenSample creates one token with a TTL and returns it (never printed).
func (c *scaleCluster) tokenSample(tokens *int) string {
	c.t.Helper()
	s, err := c.client(c.leader()).Auth().Token().CreateOrphan(&api.TokenCreateRequest{TTL: "1h", Policies: []string{"default"}})
	if err != nil || s == nil || s.Auth == nil {
		c.t.Fatalf("creating a sample token: %v", err)
	}
	*tokens++
	return s.Auth.ClientToken
}

func renewLease(id string) func(*api.Client) error {
	return func(cl *api.Client) error {
		_, err := cl.Sys().Renew(id, 0)
		return err
	}
}

func degradations(cfg scaleConfig, cells []scaleCell) []degradation {
	lo, hi := cfg.Checkpoints[0], cfg.Checkpoints[len(cfg.Checkpoints)-1]
	var out []degradation
	kvAt := func(cp int) float64 {
		var xs []float64
		for _, c := range cells {
			if c.Op == opKV && c.Checkpoint == cp {
				xs = append(xs, c.PerSecond)
			}
		}
		return median(xs)
	}
	for i, lat := range cfg.Latencies {
		at := func(cp int) (float64, int) {
			var xs []float64
			live := 0
			for _, c := range cells {
				if c.Op != opKV && c.Checkpoint == cp && c.LatencyMS == lat && c.Clients == cfg.Clients[i] {
					xs = append(xs, c.PerSecond)
					if live == 0 {
						live = c.LiveAtStart
					}
				}
			}
			return median(xs), live
		}
		l, ll := at(lo)
		h, lh := at(hi)
		d := degradation{LatencyMS: lat, Clients: cfg.Clients[i], LiveLow: ll, LiveHigh: lh, PerSecLow: l, PerSecHigh: h}
		if l > 0 {
			d.Ratio = h / l
		}
		d.Pass = d.Ratio >= 1-cfg.MaxDegradation
		if d.KVLow, d.KVHigh = kvAt(lo), kvAt(hi); d.KVLow > 0 {
			d.KVRatio = d.KVHigh / d.KVLow
		}
		out = append(out, d)
	}
	return out
}
