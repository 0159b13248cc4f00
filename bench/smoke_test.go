package bench

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBenchSmoke runs the benchmark small (a few hundred requests) so it keeps
// working; it asserts correctness (no errors, one upstream call per key, zero
// accounts left), not speed. Every load goes through the load generator, two
// interleaved repetitions per cell (the full run does three). BENCH_OUT
// keeps its report.
func TestBenchSmoke(t *testing.T) {
	dir := os.Getenv("BENCH_OUT")
	if dir == "" {
		dir = t.TempDir()
	}
	checkLoadgen(t)
	rep := runBench(t, benchConfig{
		Name: "smoke",
		Cells: []cellDef{
			kvCells(1, 16),
			upstreamCells([]time.Duration{0, 50 * time.Millisecond}, 16),
			issueCells([]time.Duration{0}, 1, 16),
			issueCells([]time.Duration{50 * time.Millisecond}, 16),
			scopedIssueCells([]time.Duration{50 * time.Millisecond}, 16),
			floorCells(opFloorHop, 1),
			floorCells(opFloorLease, 1),
			floorCells(opFloorWrites, 1),
			floorCells(opFloorCall, 1),
		},
		Reps:            2,
		PerCell:         60,
		CellMaxDuration: 5 * time.Second,
		Leases:          200,
		RevokeLatencies: []time.Duration{0, 50 * time.Millisecond},
		ExpiryLatency:   0,
		FillConcurrency: 32,
		Contract:        true,
	})
	writeReport(t, rep, dir)
	if len(rep.Runs) != 2*12 || len(rep.Issue) != 3 || len(rep.IssueScoped) != 1 || len(rep.KVFloor) != 2 || len(rep.SDKFloor) != 2 || len(rep.Floor) != 4 {
		t.Errorf("%d runs (want 24), %d issue, %d scoped issue, %d KV, %d upstream, %d floor medians (want 3, 1, 2, 2, 4)",
			len(rep.Runs), len(rep.Issue), len(rep.IssueScoped), len(rep.KVFloor), len(rep.SDKFloor), len(rep.Floor))
	}
	// The floor's paths do what they claim: the hop stores nothing, the
	// lease only Vault's lease, lease-writes two entries more than that
	// (within 0.2: Vault's own background writes land in any cell).
	puts := map[string]float64{}
	for _, c := range rep.Floor {
		puts[c.Op] = c.PerRequest.BarrierPuts
	}
	if hop, lease, writes := puts[opFloorHop], puts[opFloorLease], puts[opFloorWrites]; hop > 0.2 || lease < 0.8 || math.Abs(writes-(lease+2)) > 0.2 {
		t.Errorf("floor barrier puts per request: hop %.2f (want 0), lease %.2f (want >= 1), lease-writes %.2f (want lease + 2)", hop, lease, writes)
	}
	if md, err := os.ReadFile(filepath.Join(dir, "bench.md")); err != nil || !strings.Contains(string(md), "## The external-plugin floor") {
		t.Errorf("bench.md lacks the floor section (read error %v)", err)
	}
	for _, c := range rep.Runs {
		if c.Requests == 0 || c.PerRequest.LoadgenCPUMS <= 0 {
			t.Errorf("%s at %dms, %d clients, rep %d: %d requests, load generator CPU %.3f ms/request", c.Op, c.LatencyMS, c.Concurrency, c.Rep, c.Requests, c.PerRequest.LoadgenCPUMS)
		}
		if c.Op != opUpstream && c.Op != opFloorHop && c.PerRequest.BarrierPuts <= 0 {
			t.Errorf("%s at %dms, %d clients, rep %d: no barrier puts counted", c.Op, c.LatencyMS, c.Concurrency, c.Rep)
		}
	}
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
