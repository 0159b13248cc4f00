package bench

// The report of an A/B run: compare-<short base>.md and .json, and the
// Markdown printed on stdout.

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

// writeCompare writes compare-<name>.json and compare-<name>.md into dir and
// prints the Markdown.
func writeCompare(t *testing.T, rep *compareReport, dir, name string) {
	t.Helper()
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	md := compareMarkdown(rep)
	writeOutputs(t, dir, map[string][]byte{"compare-" + name + ".json": append(b, '\n'), "compare-" + name + ".md": []byte(md)})
	fmt.Println(md)
	t.Logf("wrote %s/compare-%s.{json,md}", dir, name)
}

func compareMarkdown(rep *compareReport) string {
	var sb strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&sb, format, args...) }
	m := rep.Machine
	short := func(s compareSide) string { return s.Commit[:min(7, len(s.Commit))] }
	w("# A/B benchmark: %s (A) against %s (B)\n\n", rep.A.Ref, rep.B.Ref)
	for _, s := range []compareSide{rep.A, rep.B} {
		ref := ""
		if s.Ref != s.What {
			ref = fmt.Sprintf("`%s` = ", s.Ref)
		}
		dirty := ""
		if s.Dirty {
			dirty = ", with uncommitted changes to the plugin's sources"
		}
		w("- **%s**, %s: %s%s %q; plugin sources (%s) last changed by %s%s\n", s.Name, s.What, ref, short(s), s.Subject,
			strings.Join(pluginSources, ", "), s.PluginCommit, dirty)
	}
	w("- Run %s, %.0f s in all; %d CPUs (%s), %s, %s, plugin version stamp %s (race detector %t)\n",
		rep.StartedAt.Format("2006-01-02 15:04 MST"), rep.WallSeconds, m.CPUs, m.CPUModel, m.GoVersion, m.Vault, m.Plugin, m.PluginRace)
	var busy, ours []float64
	for _, r := range rep.Runs {
		busy, ours = append(busy, r.CPU.Busy), append(ours, r.CPU.Machine)
	}
	b, o := summarise(busy), summarise(ours)
	w("- **Machine load**: busy %.0f%% in the 2 s before the run; during the runs busy %s (median, min–max), of which our processes (Vault, the measured plugin, the fake, the load generator) %s: anything else running took about %.0f%% of the machine.\n\n",
		100*m.BusyBefore, pctRange(b), pctRange(o), 100*(b.Median-o.Median))
	w("%s\n\n", rep.Method)

	w("## Figures per cell\n\n")
	w("Median (min–max) of each side's repetitions; B ÷ A of the medians; B ÷ A within each repetition's pair (median, min–max); the pairs in which B was higher and the sign test's p on them; the Mann-Whitney p; the verdict (on the Mann-Whitney p).\n\n")
	w("| upstream | clients | figure | A | B | B ÷ A | B ÷ A per pair | B higher in pairs (sign p) | Mann-Whitney p | verdict |\n|---:|---:|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, c := range rep.Cells {
		for _, f := range c.Figures {
			w("| %d ms | %d | %s | %s | %s | %.3f | %.3f (%.3f–%.3f) | %d of %d (%.3f) | %.3f | %s |\n", c.LatencyMS, c.Concurrency, f.Figure,
				statRange(f.A), statRange(f.B), f.Ratio, f.PairRatioMed, f.PairRatioMin, f.PairRatioMax, f.PairsBHigher, f.PairsDiffer, f.SignP, f.P, f.Verdict)
		}
	}
	w("\n## Storage operations per issue\n\nVault's barrier puts, deletes and gets (every encrypted storage write, delete and read, Vault's own and the plugin's, from `sys/metrics`) per measured issue, work deferred past the response included; medians. Gets include the few reads of `sys/metrics` itself around each run, spread over its issues.\n\n")
	w("| upstream | clients | A puts | A deletes | A gets | B puts | B deletes | B gets |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range rep.Cells {
		w("| %d ms | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", c.LatencyMS, c.Concurrency, c.PutsA, c.DelsA, c.GetsA, c.PutsB, c.DelsB, c.GetsB)
	}
	w("\n## Machine load per cell\n\nThe machine's busy share during each side's runs, and the share our processes took: median (min–max).\n\n")
	w("| upstream | clients | A busy | A ours | B busy | B ours |\n|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range rep.Cells {
		w("| %d ms | %d | %s | %s | %s | %s |\n", c.LatencyMS, c.Concurrency, pctRange(c.BusyA), pctRange(c.OursA), pctRange(c.BusyB), pctRange(c.OursB))
	}
	w("\n## Every run, in the order run\n\n| rep | upstream | clients | side | issues/s | p50 ms | p99 ms | Vault CPU ms | plugin CPU ms | puts | deletes | gets | busy | ours |\n|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rep.Runs {
		pr := r.PerRequest
		w("| %d | %d ms | %d | %s | %.0f | %.2f | %.2f | %.3f | %.3f | %.2f | %.2f | %.2f | %.0f%% | %.0f%% |\n", r.Rep, r.LatencyMS, r.Concurrency, r.Side,
			r.PerSecond, r.P50MS, r.P99MS, pr.VaultCPUMS, pr.PluginCPUMS, pr.BarrierPuts, pr.BarrierDels, pr.BarrierGets, 100*r.CPU.Busy, 100*r.CPU.Machine)
	}
	calls := slices.Sorted(maps.Keys(rep.Calls))
	for i, k := range calls {
		calls[i] = fmt.Sprintf("%s %d", k, rep.Calls[k])
	}
	w("\nUpstream calls at the fake over the run (warm-up included): %s. Failed requests: A %d, B %d.\n", strings.Join(calls, ", "), rep.Errors["A"], rep.Errors["B"])
	return sb.String()
}

// statRange is "median (min–max)" with as many decimals as the size needs.
func statRange(s sideStats) string {
	f := "%.0f (%.0f–%.0f)"
	if s.Median < 10 {
		f = "%.3f (%.3f–%.3f)"
	} else if s.Median < 1000 {
		f = "%.1f (%.1f–%.1f)"
	}
	return fmt.Sprintf(f, s.Median, s.Min, s.Max)
}

func pctRange(s sideStats) string {
	return fmt.Sprintf("%.0f%% (%.0f–%.0f%%)", 100*s.Median, 100*s.Min, 100*s.Max)
}
