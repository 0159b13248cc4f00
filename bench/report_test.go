package bench

// The report: ratios to the floors, the targets met or not, and bench.md.

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func findCell(cells []cellResult, latMS, n int) (cellResult, bool) {
	for _, c := range cells {
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

// targets evaluates the benchmark's targets on this run's own floors.
func targets(rep *benchReport) []targetResult {
	var out []targetResult
	add := func(name, want, got string, pass bool) {
		out = append(out, targetResult{Name: name, Want: want, Got: got, Pass: pass})
	}
	hiLat := 0
	for _, l := range rep.Config.Latencies {
		hiLat = max(hiLat, int(l.Milliseconds()))
	}
	midC := 32
	if !slices.Contains(rep.Config.Concurrency, midC) {
		midC = rep.Config.Concurrency[len(rep.Config.Concurrency)-1]
	}
	if is, ok := findCell(rep.Issue, hiLat, midC); ok && hiLat > 0 {
		kv, _ := findCell(rep.KVFloor, 0, midC)
		sum := float64(hiLat) + kv.P50MS
		add(fmt.Sprintf("p50 at %dms upstream, %d clients", hiLat, midC),
			fmt.Sprintf("<= 1.10 x (%d + KV p50 %.2f) = %.1f ms", hiLat, kv.P50MS, 1.1*sum),
			fmt.Sprintf("%.1f ms (%.3f x)", is.P50MS, is.P50MS/sum), is.P50MS <= 1.1*sum)
		want := 0.9 * float64(midC) / (sum / 1000)
		add(fmt.Sprintf("throughput at %dms upstream, %d clients", hiLat, midC),
			fmt.Sprintf(">= 0.9 x %d / %.1f ms = %.0f/s", midC, sum, want),
			fmt.Sprintf("%.0f/s (%.3f x of %d/sum)", is.PerSecond, is.PerSecond/(float64(midC)/(sum/1000)), midC), is.PerSecond >= want)
		top := rep.Config.Concurrency[len(rep.Config.Concurrency)-1]
		if hi, ok := findCell(rep.Issue, hiLat, top); ok && top > midC {
			add(fmt.Sprintf("no collapse at %d clients, %dms upstream", top, hiLat),
				fmt.Sprintf(">= %d-client throughput (%.0f/s), no errors", midC, is.PerSecond),
				fmt.Sprintf("%.0f/s, %d errors", hi.PerSecond, hi.Errors), hi.PerSecond >= is.PerSecond && hi.Errors == 0)
		}
	}
	var peakIssue, peakKV float64
	var peakIssueC, peakKVC int
	for _, c := range rep.Issue {
		if c.LatencyMS == 0 && c.PerSecond > peakIssue {
			peakIssue, peakIssueC = c.PerSecond, c.Concurrency
		}
	}
	for _, c := range rep.KVFloor {
		if c.PerSecond > peakKV {
			peakKV, peakKVC = c.PerSecond, c.Concurrency
		}
	}
	add("throughput at 0ms upstream (peak over clients)",
		fmt.Sprintf(">= 0.5 x KV-write peak %.0f/s (%d clients) = %.0f/s", peakKV, peakKVC, 0.5*peakKV),
		fmt.Sprintf("%.0f/s at %d clients (%.2f x)", peakIssue, peakIssueC, peakIssue/peakKV), peakIssue >= 0.5*peakKV)

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
		} else if revDefault > 0 {
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
		fmt.Sprintf("Everything shares this machine's %d CPUs: Vault, the plugin, the benchmark clients and the fake; the cpu columns in the JSON split the time.", rep.Machine.CPUs),
		fmt.Sprintf("Vault revokes through a pool of %d expiration workers (VAULT_LEASE_REVOCATION_WORKERS), one mount getting 90%% of it while other mounts have work queued; revoke-prefix runs with sync=false so the pool does it (sync=true revokes one lease at a time, in the request).", vaultRevocationWorkers),
		"Floors: kv_write is a KV v2 write to a fresh key on the same Vault; sdk_create is openai-go creating a service account at the fake directly, with the same upstream latency.",
	}
}

// writeReport prints the Markdown report and writes JSON, Markdown and the plot into dir.
func writeReport(t *testing.T, rep *benchReport, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	md := markdown(rep)
	for name, data := range map[string][]byte{"bench.json": append(b, '\n'), "bench.md": []byte(md)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := plotThroughput(rep, filepath.Join(dir, "throughput.png")); err != nil {
		t.Fatalf("plot: %v", err)
	}
	fmt.Println(md)
	t.Logf("wrote %s/{bench.json,bench.md,throughput.png}", dir)
}

func markdown(rep *benchReport) string {
	var sb strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&sb, format, args...) }
	m := rep.Machine
	w("# Benchmark: %s run, %s\n\n", rep.Config.Name, rep.StartedAt.Format("2006-01-02 15:04 MST"))
	w("%d CPUs (%s), %s, %s, plugin %s (race detector %t). Wall time %.0fs. Machine busy before the run: %.0f%%.\n\n", m.CPUs, m.CPUModel, m.GoVersion, m.Vault, m.Plugin, m.PluginRace, rep.WallSeconds, 100*m.BusyBefore)
	w("## Issue throughput and latency\n\n")
	w("Up to %d requests per cell (or %s), one warm-up request per client first. KV = KV v2 write on the same Vault; SDK = openai-go call to the fake.\n\n", rep.Config.PerCell, rep.Config.CellMaxDuration)
	w("| upstream | clients | issues/s | p50 ms | p99 ms | KV writes/s | KV p50 ms | SDK calls/s | SDK p50 ms | issue/s ÷ KV/s | issue/s ÷ SDK/s | p50 ÷ (KV p50 + SDK p50) | issue/s ÷ ideal |\n")
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
		w("| %d ms | %d | %.0f | %.2f | %.2f | %.0f | %.2f | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f |\n",
			is.LatencyMS, is.Concurrency, is.PerSecond, is.P50MS, is.P99MS, kv.PerSecond, kv.P50MS, sdk.PerSecond, sdk.P50MS,
			r.ThrVsKV, r.ThrVsSDK, r.P50VsSum, r.ThrVsIdeal)
	}
	w("\nideal = min(KV writes/s, clients ÷ (KV p50 + SDK p50)): Vault's own request and write, then one upstream call, back to back.\n\n")
	w("CPU per request in ms (Vault / plugin / this process: clients and fake), our share of the machine, the machine's busy share (the difference is anything else running) and the share the hypervisor stole:\n\n| op | upstream | clients | Vault | plugin | bench | ours | machine busy | steal |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, cells := range [][]cellResult{rep.KVFloor, rep.Issue} {
		for _, c := range cells {
			per := 1000 / float64(max(c.Requests, 1))
			w("| %s | %d ms | %d | %.2f | %.2f | %.2f | %.0f%% | %.0f%% | %.0f%% |\n", c.Op, c.LatencyMS, c.Concurrency, per*c.CPU.VaultSec, per*c.CPU.PluginSec, per*c.CPU.BenchSec, 100*c.CPU.Machine, 100*c.CPU.Busy, 100*c.CPU.Steal)
		}
	}
	w("\n## Revocation and expiry\n\n| kind | upstream | leases | Vault workers | seconds to zero accounts | revoked/s | worker floor s | upstream deletes in flight (max / mean) | delete calls | Vault CPU s | plugin CPU s | bench CPU s | machine busy |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rep.Revocation {
		w("| %s | %d ms | %d | %d | %.2f | %.0f | %.2f | %d / %.0f | %d | %.1f | %.1f | %.1f | %.0f%% |\n", r.Kind, r.LatencyMS, r.Leases, r.Workers, r.Seconds, r.PerSecond,
			r.WorkerFloor, r.MaxInFlight, r.MeanInFlight, r.DeleteCalls, r.CPU.VaultSec, r.CPU.PluginSec, r.CPU.BenchSec, 100*r.CPU.Busy)
	}
	w("\nworker floor = leases × upstream latency ÷ Vault's revocation workers (default %d). revoke-prefix uses sync=false; expiry is timed from the second every lease expired at.\n\n", vaultRevocationWorkers)
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
	w("\n## Upstream calls (counted at the fake)\n\n| | keys | calls | per key |\n|---|---:|---:|---:|\n")
	w("| create per issued key | %d | %d | %.4f |\n| delete per revoked key | %d | %d | %.4f |\n", c.IssuedKeys, c.CreateCalls, c.PerIssuedKey, c.RevokedKeys, c.DeleteCalls, c.PerRevokedKey)
	w("\nOther upstream calls on these paths: %d.\n\n## Targets\n\n| target | want | got | |\n|---|---|---|---|\n", len(c.OtherCallsOnPath))
	for _, tg := range rep.Targets {
		mark := "pass"
		if !tg.Pass {
			mark = "**miss**"
		}
		w("| %s | %s | %s | %s |\n", tg.Name, tg.Want, tg.Got, mark)
	}
	w("\n")
	for _, n := range rep.Notes {
		w("- %s\n", n)
	}
	return sb.String()
}
