package bench

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestBenchCompareSmoke runs the A/B comparison small with the working tree on
// both sides (an A/A run): both builds mounted and measured in turns, every
// run counted on the right side, storage operations counted, the report
// written. It asserts that the machinery works, not speed (a verdict on a
// handful of one-second runs means nothing).
func TestBenchCompareSmoke(t *testing.T) {
	cfg := compareConfig()
	cfg.Reps, cfg.CellMaxDuration, cfg.Contract = 2, time.Second, true
	a, b := compareSides(t, "", harnessRoot(), "", "")
	dir := t.TempDir()
	rep := runCompare(t, cfg, a, b)
	writeCompare(t, rep, dir, "smoke")
	if len(rep.Runs) != 2*2*3 || len(rep.Cells) != 3 {
		t.Fatalf("%d runs (want 12), %d cells (want 3)", len(rep.Runs), len(rep.Cells))
	}
	for i, r := range rep.Runs {
		// ABBA: the first of each pair is A in odd repetitions.
		if want := map[bool]string{true: "A", false: "B"}[(r.Rep%2 == 1) == (r.Order == 1)]; r.Side != want || r.Order != i%2+1 {
			t.Errorf("run %d: side %s order %d in repetition %d", i, r.Side, r.Order, r.Rep)
		}
		pr := r.PerRequest
		if r.Requests == 0 || r.Errors != 0 || pr.BarrierPuts < 2 || pr.PluginCPUMS <= 0 || pr.VaultCPUMS <= 0 || pr.UpstreamCalls != 1 {
			t.Errorf("run %d (%s, %d ms, %d clients): %d requests, %d errors, %.2f puts, plugin %.3f and Vault %.3f CPU ms, %.2f upstream calls per issue",
				i, r.Side, r.LatencyMS, r.Concurrency, r.Requests, r.Errors, pr.BarrierPuts, pr.PluginCPUMS, pr.VaultCPUMS, pr.UpstreamCalls)
		}
	}
	for _, c := range rep.Cells {
		if len(c.Figures) != 5 || len(c.Figures[0].A.Values) != 2 || len(c.Figures[0].B.Values) != 2 || c.PutsA == 0 || c.PutsB == 0 {
			t.Errorf("cell %d ms, %d clients: %+v", c.LatencyMS, c.Concurrency, c)
		}
	}
	if a.Commit != b.Commit || a.SHA256 != "" || rep.A.SHA256 == "" || rep.A.SHA256 != rep.B.SHA256 {
		t.Errorf("A/A run: commits %s and %s, builds %s and %s (want one commit, identical builds)", a.Commit, b.Commit, rep.A.SHA256, rep.B.SHA256)
	}
	if st, err := os.Stat(filepath.Join(dir, "compare-smoke.md")); err != nil || st.Size() == 0 {
		t.Errorf("compare-smoke.md not written: %v", err)
	}
}
