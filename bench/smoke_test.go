package bench

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestBenchSmoke runs the benchmark small (a few hundred requests) so it keeps
// working; it asserts correctness (no errors, one upstream call per key, zero
// accounts left), not speed. BENCH_OUT keeps its report.
func TestBenchSmoke(t *testing.T) {
	dir := os.Getenv("BENCH_OUT")
	if dir == "" {
		dir = t.TempDir()
	}
	rep := runBench(t, benchConfig{
		Name:            "smoke",
		Concurrency:     []int{1, 8, 32},
		Latencies:       []time.Duration{0, 50 * time.Millisecond},
		PerCell:         60,
		CellMaxDuration: 5 * time.Second,
		Leases:          200,
		RevokeLatencies: []time.Duration{0, 50 * time.Millisecond},
		ExpiryLatency:   0,
		FillConcurrency: 32,
		Contract:        true,
	})
	writeReport(t, rep, dir)
	for _, r := range rep.Revocation {
		if r.LeasesLeft != 0 || r.DeleteCalls != r.Leases {
			t.Errorf("%s at %dms: %d leases left, %d delete calls for %d leases", r.Kind, r.LatencyMS, r.LeasesLeft, r.DeleteCalls, r.Leases)
		}
	}
	for _, name := range []string{"bench.json", "bench.md", "throughput.png"} {
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.Size() == 0 {
			t.Errorf("%s not written: %v", name, err)
		}
	}
}
