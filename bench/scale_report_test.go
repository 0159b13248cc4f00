//go:build scale

package bench

// The scale benchmark's report: scale.md and scale.json, the table printed
// with PASS or FAIL, and the two plots (scale_plot_test.go).

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func topologyName(n int) string {
	if n == 1 {
		return "single Raft node"
	}
	return fmt.Sprintf("%d-node HA cluster", n)
}

func scaleNotes(rep *scaleReport) []string {
	return []string{
		fmt.Sprintf("Everything shares this machine's %d CPUs and one disk: every Vault node, the plugin, the load generator and the fake (in the test process). Machine busy before the run: %.0f%%; each cell and fill chunk shows the machine's busy share during it.", rep.Machine.CPUs, 100*rep.Machine.BusyBefore),
		"The cluster is scripts/cluster.sh: Raft storage, performance_multiplier 1, a file audit device (every request is audited, as in production), the plugin built with its pprof listener; one loopback host, so Raft replication costs CPU and fsyncs but no network.",
		"Live leases are counted at the fake: one account per live lease, checked exactly after every fill. Issue cells add leases as they run; 'live' is the count when the cell started.",
		"Vault heap after GC: HeapAlloc from sys/pprof/heap?gc=1&debug=1 on the active node. Plugin heap after GC: its pprof listener's /debug/memstats. RSS from /proc (VmRSS). Raft: the active node's storage directory on disk (raft.db and vault.db; BoltDB files never shrink).",
		"Failover: kill -9 of the active node (its process group, plugin included) through cluster.sh; times are from the kill. On one node the node is restarted and unsealed by the script at once, so its times include the restart. 'Restore complete' is the new active node's log line 'lease restore complete' (Vault's expiration manager has loaded every lease; until then a lease loads when first used).",
		"Tokens: orphan tokens with a 1h TTL (auth/token/create-orphan), each a lease in Vault's expiration manager: the same figures for a workload that is Vault's alone.",
	}
}

func writeScaleReport(t *testing.T, rep *scaleReport, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	md := scaleMarkdown(rep)
	for name, data := range map[string][]byte{"scale.json": append(b, '\n'), "scale.md": []byte(md)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := plotScaleThroughput(rep, filepath.Join(dir, "scale-throughput.png")); err != nil {
		t.Fatalf("plot: %v", err)
	}
	if err := plotScaleMemory(rep, filepath.Join(dir, "scale-memory.png")); err != nil {
		t.Fatalf("plot: %v", err)
	}
	fmt.Println(md)
	for _, tr := range rep.Topologies {
		for _, d := range tr.Degradation {
			fmt.Printf("TARGET %s  %s: issue throughput at %d ms upstream, %d clients, with %d vs %d live leases: want >= %.2f x; got %.0f/s vs %.0f/s = %.2f x\n",
				passFail(d.Pass), topologyName(tr.Nodes), d.LatencyMS, d.Clients, d.LiveHigh, d.LiveLow, 1-rep.Config.MaxDegradation, d.PerSecHigh, d.PerSecLow, d.Ratio)
		}
	}
	t.Logf("wrote %s/{scale.json,scale.md,scale-throughput.png,scale-memory.png}", dir)
}

func scaleMarkdown(rep *scaleReport) string {
	var sb strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&sb, format, args...) }
	m := rep.Machine
	w("# Scale benchmark: %s run, %s\n\n", rep.Config.Name, rep.StartedAt.Format("2006-01-02 15:04 MST"))
	w("%d CPUs (%s), %s, %s, plugin %s. %d leases. Wall time %.0fs. Machine busy before the run: %.0f%%.\n\n",
		m.CPUs, m.CPUModel, m.GoVersion, m.Vault, m.Plugin, rep.Config.Leases, rep.WallSeconds, 100*m.BusyBefore)

	w("## Issue throughput with few and many live leases\n\n")
	w("Median of %d repetitions at the first and last checkpoint; the issue's limit: at most %.0f%% lower with many.\n\n", rep.Config.Reps, 100*rep.Config.MaxDegradation)
	w("Every cell starts after a sync(2) (the fill's dirty pages written back) and is preceded by a KV v2 write cell at the same checkpoint (16 clients): the control, Vault's request and Raft write with no plugin and no lease.\n\n")
	w("| cluster | upstream | clients | live (low) | issues/s | live (high) | issues/s | high ÷ low | | KV writes/s low / high | KV high ÷ low |\n|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|\n")
	for _, tr := range rep.Topologies {
		for _, d := range tr.Degradation {
			w("| %s | %d ms | %d | %d | %.0f | %d | %.0f | %.2f | %s | %.0f / %.0f | %.2f |\n", topologyName(tr.Nodes), d.LatencyMS, d.Clients, d.LiveLow, d.PerSecLow, d.LiveHigh, d.PerSecHigh, d.Ratio, passFail(d.Pass), d.KVLow, d.KVHigh, d.KVRatio)
		}
	}

	w("\n## Memory and storage against live leases\n\n")
	w("| cluster | live leases | tokens | Vault RSS MB | Vault heap after GC MB | Vault runtime alloc / sys MB | standby RSS MB | plugin RSS MB | plugin heap after GC MB | Raft on disk MB (active / largest) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, tr := range rep.Topologies {
		for _, p := range tr.Memory {
			w("| %s | %d | %d | %.0f | %.1f | %.0f / %.0f | %.0f | %.1f | %.2f | %.1f / %.1f |\n", topologyName(tr.Nodes), p.LiveLeases, p.Tokens, p.VaultRSSMB, p.VaultHeapGCMB,
				p.VaultAllocMB, p.VaultSysMB, p.StandbyRSSMB, p.PluginRSSMB, p.PluginHeapGCMB, p.RaftMB, p.RaftMaxMB)
		}
	}
	w("\nPer live lease, between the first and the last checkpoint:\n\n| cluster | Vault heap after GC | Vault RSS | plugin heap after GC | Raft on disk |\n|---|---:|---:|---:|---:|\n")
	for _, tr := range rep.Topologies {
		if lo, hi, ok := leaseSpan(tr); ok {
			n := float64(hi.LiveLeases - lo.LiveLeases)
			kb := func(a, b float64) string { return fmt.Sprintf("%.2f KB", (b-a)*1024/n) }
			w("| %s | %s | %s | %s | %s |\n", topologyName(tr.Nodes), kb(lo.VaultHeapGCMB, hi.VaultHeapGCMB), kb(lo.VaultRSSMB, hi.VaultRSSMB), kb(lo.PluginHeapGCMB, hi.PluginHeapGCMB), kb(lo.RaftMB, hi.RaftMB))
		}
		for _, p := range tr.Memory {
			if p.Tokens > 0 {
				var zero memPoint
				for _, q := range tr.Memory {
					if q.LiveLeases == 0 && q.Tokens == 0 {
						zero = q
					}
				}
				n := float64(p.Tokens)
				w("| %s, per token (from no leases to %d tokens) | %.2f KB | %.2f KB | | %.2f KB |\n", topologyName(tr.Nodes), p.Tokens,
					(p.VaultHeapGCMB-zero.VaultHeapGCMB)*1024/n, (p.VaultRSSMB-zero.VaultRSSMB)*1024/n, (p.RaftMB-zero.RaftMB)*1024/n)
			}
		}
	}

	w("\n## Issue cells\n\nIn run order. Disk: the dirty page cache before the cell's sync and how long the sync took; the probe's 8 KB write + fdatasync every 50 ms during the cell (the disk's own latency, not Vault's).\n\n")
	w("| cluster | op | checkpoint | live at start | upstream | clients | rep | per second | p50 ms | p99 ms | Vault CPU ms/req | plugin CPU ms/req | machine busy | dirty MB / sync s | fsync p50 / p99 / max ms |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, tr := range rep.Topologies {
		for _, c := range tr.Cells {
			op := c.Op
			if op == "" {
				op = opIssue
			}
			w("| %s | %s | %d | %d | %d ms | %d | %d | %.0f | %.1f | %.1f | %.2f | %.2f | %.0f%% | %.0f / %.1f | %.1f / %.1f / %.0f |\n", topologyName(tr.Nodes), op, c.Checkpoint, c.LiveAtStart, c.LatencyMS, c.Clients, c.Rep,
				c.PerSecond, c.P50MS, c.P99MS, c.VaultCPUMS, c.PluginCPUMS, 100*c.Busy, c.Disk.DirtyMBBefore, c.Disk.SyncSeconds, c.Disk.FsyncP50MS, c.Disk.FsyncP99MS, c.Disk.FsyncMaxMS)
		}
	}
	w("\n## Fills: issue rate at %d clients, 0 ms upstream, against live leases (and the same for tokens)\n\n| cluster | kind | live before | live after | per second | p50 ms | machine busy |\n|---|---|---:|---:|---:|---:|---:|\n", rep.Config.FillClients)
	for _, tr := range rep.Topologies {
		for _, f := range append(append([]fillChunk{}, tr.Fill...), tr.TokenFill...) {
			w("| %s | %s | %d | %d | %.0f | %.1f | %.0f%% |\n", topologyName(tr.Nodes), f.Kind, f.LiveBefore, f.LiveAfter, f.PerSecond, f.P50MS, 100*f.Busy)
		}
	}

	w("\n## Sweep, revocation, failover\n\n| cluster | sweep (openai/tidy) accounts | seconds | engine ms | records read | projects listed | upstream calls |\n|---|---:|---:|---:|---:|---:|---|\n")
	for _, tr := range rep.Topologies {
		s := tr.Tidy
		w("| %s | %d | %.2f | %d | %d | %d | %v |\n", topologyName(tr.Nodes), s.Accounts, s.Seconds, s.EngineMS, s.Records, s.Projects, s.UpstreamCalls)
	}
	w("\n| cluster | revoke-prefix (sync=false) of leases | seconds to zero accounts at the fake | seconds until Vault lists none | delete calls | max deletes in flight | machine busy | revoke-prefix requests failed (Vault's 90s request limit) |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, tr := range rep.Topologies {
		r := tr.Revoke
		w("| %s | %d | %.1f | %.1f | %d | %d | %.0f%% | %d |\n", topologyName(tr.Nodes), r.Leases, r.SecondsToZero, r.SecondsToNoLeases, r.DeleteCalls, r.MaxInFlight, 100*r.Busy, len(r.Errors))
	}
	w("\n| cluster | event | workload | leases | tokens | active s | first issue / token s | first renewal s | restore complete s | restore (log) s | killed node back as standby s |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, tr := range rep.Topologies {
		for _, f := range tr.Failover {
			w("| %s | %s | %s | %d | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.1f |\n", topologyName(tr.Nodes), failoverWord(tr.Nodes), f.Workload, f.Leases, f.Tokens,
				f.ActiveSeconds, f.IssueSeconds, f.RenewSeconds, f.RestoreSeconds, f.RestoreLogSeconds, f.RejoinSeconds)
		}
	}
	w("\n")
	for _, n := range rep.Notes {
		w("- %s\n", n)
	}
	return sb.String()
}

// leaseSpan is the first and the last checkpoint's memory reading.
func leaseSpan(tr topologyResult) (lo, hi memPoint, ok bool) {
	var ps []memPoint
	for _, p := range tr.Memory {
		if p.Tokens == 0 && p.LiveLeases > 0 {
			ps = append(ps, p)
		}
	}
	if len(ps) < 2 {
		return lo, hi, false
	}
	return ps[0], ps[len(ps)-1], true
}
