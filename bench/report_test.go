package bench

// The report: ratios to the floors, the targets met or not, and bench.md.

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// findCell finds the cell at upstream latency latMS (any, for KV writes) and
// n clients; with op, only a cell of that op.
func findCell(cells []cellResult, latMS, n int, op ...string) (cellResult, bool) {
	for _, c := range cells {
		if len(op) > 0 && c.Op != op[0] {
			continue
		}
		if (c.LatencyMS == latMS || c.Op == "kv_write") && c.Concurrency == n {
			return c, true
		}
	}
	return cellResult{}, false
}

func ratios(rep *benchReport) []ratioRow {
	var out []ratioRow
	for _, is := range rep.Issue {
		kv, ok1 := findCell(rep.KVFloor, 0, is.Concurrency)
		sdk, ok2 := findCell(rep.SDKFloor, is.LatencyMS, is.Concurrency)
		if !ok1 || !ok2 {
			continue
		}
		serial := kv.P50MS + sdk.P50MS
		ideal := math.Min(kv.PerSecond, float64(is.Concurrency)/(serial/1000))
		out = append(out, ratioRow{
			LatencyMS: is.LatencyMS, Concurrency: is.Concurrency,
			ThrVsKV: is.PerSecond / kv.PerSecond, ThrVsSDK: is.PerSecond / sdk.PerSecond,
			P50VsKV: (is.P50MS - sdk.P50MS) / kv.P50MS, P50VsSum: is.P50MS / serial,
			ThrVsIdeal: is.PerSecond / ideal, IdealPerSec: ideal,
		})
	}
	return out
}

// targets evaluates the benchmark's targets (issue 13) on this run's own
// floors, from the medians over the repetitions. They are reported, met or
// not, never asserted: a timed figure on a shared machine is no test.
func targets(rep *benchReport) []targetResult {
	var out []targetResult
	add := func(name, want, got string, pass bool) {
		out = append(out, targetResult{Name: name, Want: want, Got: got, Pass: pass})
	}
	rng := func(c cellResult, p50 bool) string {
		if p50 {
			return fmt.Sprintf("%.2f ms (%.2f–%.2f)", c.P50MS, c.P50MSMin, c.P50MSMax)
		}
		return fmt.Sprintf("%.0f/s (%.0f–%.0f)", c.PerSecond, c.PerSecondMin, c.PerSecondMax)
	}
	// (a) 0 ms upstream, 16 clients: issue throughput against the KV floor.
	if is, ok := findCell(rep.Issue, 0, 16); ok {
		if kv, ok := findCell(rep.KVFloor, 0, 16); ok {
			add("(a) issue throughput, 0 ms upstream, 16 clients",
				fmt.Sprintf(">= 0.50 x KV writes/s at 16 clients, %s: %.0f/s", rng(kv, false), 0.5*kv.PerSecond),
				fmt.Sprintf("%s = %.2f x", rng(is, false), is.PerSecond/kv.PerSecond), is.PerSecond >= 0.5*kv.PerSecond)
		}
	}
	// (b) one client, 0 ms upstream: issue p50 against the KV-write p50.
	if is, ok := findCell(rep.Issue, 0, 1); ok {
		if kv, ok := findCell(rep.KVFloor, 0, 1); ok {
			add("(b) issue p50, 0 ms upstream, 1 client",
				fmt.Sprintf("<= 4 x KV-write p50 at 1 client, %s: %.2f ms", rng(kv, true), 4*kv.P50MS),
				fmt.Sprintf("%s = %.2f x", rng(is, true), is.P50MS/kv.P50MS), is.P50MS <= 4*kv.P50MS)
		}
	}
	// (c) at upstream latency: p50 within 10% of upstream + KV p50 at the
	// same clients, throughput at least 90% of clients ÷ that sum.
	for _, is := range rep.Issue {
		if is.LatencyMS == 0 {
			continue
		}
		kv, ok := findCell(rep.KVFloor, 0, is.Concurrency)
		if !ok {
			continue
		}
		sum := float64(is.LatencyMS) + kv.P50MS
		add(fmt.Sprintf("(c) issue p50, %d ms upstream, %d clients", is.LatencyMS, is.Concurrency),
			fmt.Sprintf("<= 1.10 x (%d + KV p50 at %d clients %.2f) = %.1f ms", is.LatencyMS, is.Concurrency, kv.P50MS, 1.1*sum),
			fmt.Sprintf("%s = %.3f x", rng(is, true), is.P50MS/sum), is.P50MS <= 1.1*sum)
		ideal := float64(is.Concurrency) / (sum / 1000)
		add(fmt.Sprintf("(c) issue throughput, %d ms upstream, %d clients", is.LatencyMS, is.Concurrency),
			fmt.Sprintf(">= 0.90 x %d / %.1f ms = %.0f/s", is.Concurrency, sum, 0.9*ideal),
			fmt.Sprintf("%s = %.3f x of %d/sum", rng(is, false), is.PerSecond/ideal, is.Concurrency), is.PerSecond >= 0.9*ideal)
	}
	// (d) storage operations per issue and per revoke, counted.
	if is, ok := findCell(rep.Issue, 0, 16); ok || len(rep.Issue) > 0 {
		if !ok {
			is = rep.Issue[0]
		}
		got := fmt.Sprintf("%.2f puts + %.2f deletes per issue (%d ms, %d clients), %.2f upstream calls", is.PerRequest.BarrierPuts, is.PerRequest.BarrierDels, is.LatencyMS, is.Concurrency, is.PerRequest.UpstreamCalls)
		for _, r := range rep.Revocation {
			if r.Kind == "revoke-prefix" && r.Workers == vaultRevocationWorkers {
				got += fmt.Sprintf("; %.2f puts + %.2f deletes per revoke, %.2f upstream calls", r.BarrierPuts, r.BarrierDels, float64(r.DeleteCalls)/float64(max(r.Leases, 1)))
				break
			}
		}
		add("(d) storage writes per issue and per revoke", "counted (Vault's barrier puts and deletes, sys/metrics)", got, is.PerRequest.BarrierPuts > 0)
	}

	// (e) scoped issue: two upstream calls, so at 100 ms its p50 should be
	// close to two round trips plus Vault's own request, not more.
	for _, sc := range rep.IssueScoped {
		if sc.LatencyMS == 0 {
			continue
		}
		kv, ok1 := findCell(rep.KVFloor, 0, sc.Concurrency)
		sdk, ok2 := findCell(rep.SDKFloor, sc.LatencyMS, sc.Concurrency)
		if !ok1 || !ok2 {
			continue
		}
		floor := 2*sdk.P50MS + kv.P50MS
		add(fmt.Sprintf("(e) scoped issue p50, %d ms upstream, %d clients", sc.LatencyMS, sc.Concurrency),
			fmt.Sprintf("<= 1.10 x (2 x upstream p50 %.2f + KV p50 %.2f) = %.1f ms", sdk.P50MS, kv.P50MS, 1.1*floor),
			fmt.Sprintf("%s = %.3f x", rng(sc, true), sc.P50MS/floor), sc.P50MS <= 1.1*floor)
	}

	var revDefault float64
	for _, r := range rep.Revocation {
		if r.Kind == "revoke-prefix" && r.Workers == vaultRevocationWorkers && r.LatencyMS > 0 {
			revDefault = r.Seconds
		}
	}
	for _, r := range rep.Revocation {
		if r.Kind != "revoke-prefix" || r.LatencyMS == 0 {
			continue
		}
		if r.Workers == vaultRevocationWorkers && r.Leases >= 10*vaultRevocationWorkers {
			add(fmt.Sprintf("revoke-prefix at %dms: all of Vault's revocation concurrency reaches the upstream", r.LatencyMS),
				fmt.Sprintf("max deletes in flight at the fake >= 0.9 x %d (Vault's worker pool)", vaultRevocationWorkers),
				fmt.Sprintf("max %d, mean %.0f", r.MaxInFlight, r.MeanInFlight), float64(r.MaxInFlight) >= 0.9*vaultRevocationWorkers)
		} else if revDefault > 0 && r.Workers != vaultRevocationWorkers {
			add(fmt.Sprintf("revoke-prefix at %dms with %d Vault workers instead of %d", r.LatencyMS, r.Workers, vaultRevocationWorkers),
				"faster (the limit is Vault's worker count, not the plugin): <= 0.8 x",
				fmt.Sprintf("%.2fs vs %.2fs (%.2f x), max in flight %d", r.Seconds, revDefault, r.Seconds/revDefault, r.MaxInFlight), r.Seconds <= 0.8*revDefault)
		}
	}
	if rep.Plugin.HeapAtLeasesMB > 0 {
		d := rep.Plugin.HeapAtLeasesMB - rep.Plugin.HeapAfterRevokeMB
		add(fmt.Sprintf("no per-lease memory in the plugin (%d leases)", rep.Config.Leases),
			"live heap after GC with the leases live − after revoking them < 1 MB (100 B per lease)",
			fmt.Sprintf("%.2f − %.2f = %.2f MB", rep.Plugin.HeapAtLeasesMB, rep.Plugin.HeapAfterRevokeMB, d), d < 1)
	}
	add(fmt.Sprintf("plugin RSS with %d live leases", rep.Config.Leases), "< 64 MB (VmHWM, the process's peak)",
		fmt.Sprintf("VmHWM %.1f MB, VmRSS %.1f MB", rep.Plugin.HWMAtLeasesMB, rep.Plugin.RSSAtLeasesMB), rep.Plugin.HWMAtLeasesMB > 0 && rep.Plugin.HWMAtLeasesMB < 64)
	add("upstream calls per issued key", "exactly 1",
		fmt.Sprintf("%d / %d = %.4f", rep.Calls.CreateCalls, rep.Calls.IssuedKeys, rep.Calls.PerIssuedKey), rep.Calls.CreateCalls == rep.Calls.IssuedKeys)
	add("upstream calls per revoked key", "exactly 1",
		fmt.Sprintf("%d / %d = %.4f", rep.Calls.DeleteCalls, rep.Calls.RevokedKeys, rep.Calls.PerRevokedKey), rep.Calls.DeleteCalls == rep.Calls.RevokedKeys)
	return out
}

func benchNotes(rep *benchReport) []string {
	return []string{
		fmt.Sprintf("Everything shares this machine's %d CPUs: Vault, the plugin, the load generator and the fake (served by the test process); the CPU columns split the time.", rep.Machine.CPUs),
		"The load comes from a separate process (bench/cmd/loadgen): plain net/http with one keep-alive connection per client, bodies encoded once, per request only the status code and a byte search of the body. Its CPU is its own getrusage over the measured requests.",
		fmt.Sprintf("Every cell ran %d times, interleaved (repetition 1 of every cell, then 2, ...); the tables show the median and, in brackets, the range (min–max).", rep.Config.Reps),
		fmt.Sprintf("Vault revokes through a pool of %d expiration workers (VAULT_LEASE_REVOCATION_WORKERS), one mount getting 90%% of it while other mounts have work queued; revoke-prefix runs with sync=false so the pool does it (sync=true revokes one lease at a time, in the request).", vaultRevocationWorkers),
		"Floors: kv_write is a KV v2 write to a fresh key on the same Vault; upstream_create is the load generator creating a service account at the fake directly, with the same upstream latency.",
		"Storage: Vault's barrier puts and deletes (vault_barrier_put_count, vault_barrier_delete_count from sys/metrics) count every encrypted storage write, Vault's own (lease, token index) and the plugin's, read around the measured requests.",
	}
}

// writeReport prints the Markdown report and writes JSON, Markdown and the plot into dir.
func writeReport(t *testing.T, rep *benchReport, dir string) {
	t.Helper()
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	md := markdown(rep)
	writeOutputs(t, dir, map[string][]byte{"bench.json": append(b, '\n'), "bench.md": []byte(md)})
	if err := plotThroughput(rep, filepath.Join(dir, "throughput.png")); err != nil {
		t.Fatalf("plot: %v", err)
	}
	fmt.Println(md)
	for _, tg := range rep.Targets {
		fmt.Printf("TARGET %s  %s: want %s; got %s\n", passFail(tg.Pass), tg.Name, tg.Want, tg.Got)
	}
	t.Logf("wrote %s/{bench.json,bench.md,throughput.png}", dir)
}

// writeOutputs writes each named file into dir, creating dir.
func writeOutputs(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func markdown(rep *benchReport) string {
	var sb strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&sb, format, args...) }
	m := rep.Machine
	w("# Benchmark: %s run, %s\n\n", rep.Config.Name, rep.StartedAt.Format("2006-01-02 15:04 MST"))
	w("%d CPUs (%s), %s, %s, plugin %s (race detector %t). Wall time %.0fs. Machine busy before the run: %.0f%%.\n\n", m.CPUs, m.CPUModel, m.GoVersion, m.Vault, m.Plugin, m.PluginRace, rep.WallSeconds, 100*m.BusyBefore)
	w("## Targets\n\n| target | want | got | |\n|---|---|---|---|\n")
	for _, tg := range rep.Targets {
		w("| %s | %s | %s | %s |\n", tg.Name, tg.Want, tg.Got, passFail(tg.Pass))
	}
	w("\n## Issue throughput and latency\n\n")
	w("Up to %d requests per cell (or %s) from the load generator, one warm-up request per client first; %d repetitions per cell, interleaved: median (min–max). KV = KV v2 write on the same Vault at the same clients; upstream = the load generator calling the fake directly.\n\n", rep.Config.PerCell, rep.Config.CellMaxDuration, rep.Config.Reps)
	w("| upstream | clients | issues/s | p50 ms | p99 ms | KV writes/s | KV p50 ms | upstream calls/s | upstream p50 ms | issue/s ÷ KV/s | issue/s ÷ upstream/s | p50 ÷ (KV p50 + upstream p50) | issue/s ÷ ideal |\n")
	w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, is := range rep.Issue {
		kv, _ := findCell(rep.KVFloor, 0, is.Concurrency)
		sdk, _ := findCell(rep.SDKFloor, is.LatencyMS, is.Concurrency)
		var r ratioRow
		for _, x := range rep.Ratios {
			if x.LatencyMS == is.LatencyMS && x.Concurrency == is.Concurrency {
				r = x
			}
		}
		w("| %d ms | %d | %.0f (%.0f–%.0f) | %.2f (%.2f–%.2f) | %.2f | %.0f (%.0f–%.0f) | %.2f | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f |\n",
			is.LatencyMS, is.Concurrency, is.PerSecond, is.PerSecondMin, is.PerSecondMax, is.P50MS, is.P50MSMin, is.P50MSMax, is.P99MS,
			kv.PerSecond, kv.PerSecondMin, kv.PerSecondMax, kv.P50MS, sdk.PerSecond, sdk.P50MS,
			r.ThrVsKV, r.ThrVsSDK, r.P50VsSum, r.ThrVsIdeal)
	}
	w("\nideal = min(KV writes/s, clients ÷ (KV p50 + upstream p50)): Vault's own request and write, then one upstream call, back to back.\n\n")

	if len(rep.IssueScoped) > 0 {
		w("## Scoped issue beside unscoped\n\n")
		w("A role with `scopes` issues in two upstream calls (a bare account, then a scoped key on it); the same role without scopes in one. Same run, same Vault: median (min–max).\n\n")
		w("| upstream | clients | scoped issues/s | scoped p50 ms | unscoped issues/s | unscoped p50 ms | p50 scoped − unscoped | upstream p50 ms |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, sc := range rep.IssueScoped {
			un, _ := findCell(rep.Issue, sc.LatencyMS, sc.Concurrency)
			sdk, _ := findCell(rep.SDKFloor, sc.LatencyMS, sc.Concurrency)
			w("| %d ms | %d | %.0f (%.0f–%.0f) | %.2f (%.2f–%.2f) | %.0f | %.2f | %.2f | %.2f |\n",
				sc.LatencyMS, sc.Concurrency, sc.PerSecond, sc.PerSecondMin, sc.PerSecondMax, sc.P50MS, sc.P50MSMin, sc.P50MSMax,
				un.PerSecond, un.P50MS, sc.P50MS-un.P50MS, sdk.P50MS)
		}
		w("\n")
	}

	w("%s", floorSection(rep))

	w("## Every cell: CPU and storage per request\n\n")
	w("Medians over the repetitions. CPU ms per measured request of Vault, the plugin, the load generator and the fake (the test process, which serves it in-process); our share of the machine (all four), the machine's busy share (the difference is anything else running) and the hypervisor's steal. Barrier puts and deletes: Vault's encrypted storage operations per request (its own and the plugin's). Upstream calls per successful request, counted at the fake.\n\n")
	w("| op | upstream | clients | req/s (min–max) | p50 ms (min–max) | Vault | plugin | loadgen | fake | ours | machine busy | steal | barrier puts | barrier deletes | upstream calls |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range rep.Cells {
		pr := c.PerRequest
		w("| %s | %d ms | %d | %.0f (%.0f–%.0f) | %.2f (%.2f–%.2f) | %.3f | %.3f | %.3f | %.3f | %.0f%% | %.0f%% | %.0f%% | %.2f | %.2f | %.2f |\n",
			c.Op, c.LatencyMS, c.Concurrency, c.PerSecond, c.PerSecondMin, c.PerSecondMax, c.P50MS, c.P50MSMin, c.P50MSMax,
			pr.VaultCPUMS, pr.PluginCPUMS, pr.LoadgenCPUMS, pr.FakeCPUMS, 100*c.CPU.Machine, 100*c.CPU.Busy, 100*c.CPU.Steal,
			pr.BarrierPuts, pr.BarrierDels, pr.UpstreamCalls)
	}

	w("\n## The KV floor against Vault's capacity\n\n")
	w("How much of the machine the load generator takes from Vault while driving KV v2 writes. generator share = its CPU ÷ (wall × CPUs); Vault share likewise. If Vault and the generator together use all the CPUs, Vault is CPU-bound and the generator's share is the most it could gain without it: the last column scales the rate by (Vault + generator CPU) ÷ Vault CPU, an upper bound, not a measurement.\n\n")
	w("| clients | KV writes/s (min–max) | p50 ms | Vault CPU ms/write | generator CPU ms/write | Vault share | generator share | machine busy | upper bound with a free generator |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	ncpu := float64(max(m.CPUs, 1))
	for _, c := range rep.KVFloor {
		wall := c.Seconds * ncpu
		if wall == 0 {
			continue
		}
		vs, gs := c.CPU.VaultSec/wall, c.CPU.LoadgenSec/wall
		bound := 0.0
		if c.CPU.VaultSec > 0 {
			bound = c.PerSecond * (c.CPU.VaultSec + c.CPU.LoadgenSec) / c.CPU.VaultSec
		}
		w("| %d | %.0f (%.0f–%.0f) | %.2f | %.3f | %.3f | %.0f%% | %.0f%% | %.0f%% | %.0f/s |\n", c.Concurrency, c.PerSecond, c.PerSecondMin, c.PerSecondMax, c.P50MS,
			c.PerRequest.VaultCPUMS, c.PerRequest.LoadgenCPUMS, 100*vs, 100*gs, 100*c.CPU.Busy, bound)
	}

	w("\n## Revocation and expiry\n\n| kind | upstream | leases | Vault workers | seconds to zero accounts | revoked/s | worker floor s | upstream deletes in flight (max / mean) | delete calls | barrier puts / deletes per lease | fill: barrier puts / deletes per issue | Vault CPU s | plugin CPU s | fake CPU s | machine busy |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rep.Revocation {
		w("| %s | %d ms | %d | %d | %.2f | %.0f | %.2f | %d / %.0f | %d | %.2f / %.2f | %.2f / %.2f | %.1f | %.1f | %.1f | %.0f%% |\n", r.Kind, r.LatencyMS, r.Leases, r.Workers, r.Seconds, r.PerSecond,
			r.WorkerFloor, r.MaxInFlight, r.MeanInFlight, r.DeleteCalls, r.BarrierPuts, r.BarrierDels, r.FillBarrierPuts, r.FillBarrierDels, r.CPU.VaultSec, r.CPU.PluginSec, r.CPU.BenchSec, 100*r.CPU.Busy)
	}
	w("\nworker floor = leases × upstream latency ÷ Vault's revocation workers (default %d). revoke-prefix uses sync=false; expiry is timed from the second every lease expired at. Each revocation runs once (not repeated). The fills issue the sets from %d clients through the load generator.\n\n", vaultRevocationWorkers, rep.Config.FillConcurrency)
	p := rep.Plugin
	w("## Plugin process\n\n| measure | value |\n|---|---:|\n")
	w("| start-up: mount (process start, handshake, Setup) | %.3f s |\n| start-up: `plugin reload` to first issued key | %.3f s |\n", p.MountSeconds, p.ReloadToIssue)
	w("| VmRSS after mount and config | %.1f MB |\n| VmRSS with %d live leases | %.1f MB |\n| VmHWM (peak) with %d live leases | %.1f MB |\n", p.RSSIdleMB, p.LiveLeases, p.RSSAtLeasesMB, p.LiveLeases, p.HWMAtLeasesMB)
	w("| of VmRSS with %d live leases: anonymous (heap, stacks) / file-backed (binary) | %.1f / %.1f MB |\n", p.LiveLeases, p.AnonAtLeasesMB, p.FileAtLeasesMB)
	if p.RSSAtLeasesAgainMB > 0 {
		w("| VmRSS with %d live leases again, after revoking the first set | %.1f MB |\n", rep.Config.Leases, p.RSSAtLeasesAgainMB)
	}
	w("| VmHWM at the end of the run | %.1f MB |\n", p.HWMEndMB)
	w("| live heap after GC: idle / %d leases live / after revoking them | %.2f / %.2f / %.2f MB |\n", p.LiveLeases, p.HeapIdleMB, p.HeapAtLeasesMB, p.HeapAfterRevokeMB)
	c := rep.Calls
	w("\n## Storage operations and upstream calls\n\n")
	w("Vault's barrier puts and deletes per request (medians over the repetitions; revocations once), next to the upstream calls counted at the fake.\n\n| operation | barrier puts | barrier deletes | upstream calls |\n|---|---:|---:|---:|\n")
	for _, cl := range rep.Cells {
		if cl.Op == opUpstream {
			continue
		}
		w("| %s, %d ms upstream, %d clients | %.2f | %.2f | %.2f |\n", cl.Op, cl.LatencyMS, cl.Concurrency, cl.PerRequest.BarrierPuts, cl.PerRequest.BarrierDels, cl.PerRequest.UpstreamCalls)
	}
	for _, r := range rep.Revocation {
		w("| %s of %d leases, %d ms upstream, %d workers (per lease) | %.2f | %.2f | %.2f |\n", r.Kind, r.Leases, r.LatencyMS, r.Workers, r.BarrierPuts, r.BarrierDels, float64(r.DeleteCalls)/float64(max(r.Leases, 1)))
	}
	w("\n### Upstream calls over the whole run (counted at the fake)\n\n| | keys | calls | per key |\n|---|---:|---:|---:|\n")
	w("| create per issued key | %d | %d | %.4f |\n| delete per revoked key | %d | %d | %.4f |\n", c.IssuedKeys, c.CreateCalls, c.PerIssuedKey, c.RevokedKeys, c.DeleteCalls, c.PerRevokedKey)
	w("\nOther upstream calls on these paths: %d.\n\n", len(c.OtherCallsOnPath))
	for _, n := range rep.Notes {
		w("- %s\n", n)
	}
	return sb.String()
}
