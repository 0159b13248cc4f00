//go:build bench

package bench

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestBenchCompare is `make bench-compare BASE=<ref> [NEW=<ref>]`: the issue
// path of the plugin built from BENCH_BASE_SRC (a checkout of BASE, which the
// Makefile makes as a temporary git worktree) as A against the working tree
// (or BENCH_NEW_SRC, a checkout of NEW) as B, in one Vault, in turns
// (compare_run_test.go). It writes bench/results/compare-<short BASE>.{md,json}
// (compare-<short BASE>-<short NEW> with NEW; BENCH_OUT overrides the
// directory). Cells of 4 s, 8 repetitions per side: about 5 minutes on two
// cores once both builds are cached. BENCH_REPS and BENCH_CELL_SECONDS resize
// it. Speed is reported, never asserted; failed requests fail the test.
func TestBenchCompare(t *testing.T) {
	if raceEnabled {
		t.Fatal("run the comparison without -race: the plugins would be built with the race detector")
	}
	src := os.Getenv("BENCH_BASE_SRC")
	if src == "" {
		t.Fatal("BENCH_BASE_SRC is not set: run make bench-compare BASE=<git ref>")
	}
	dir := os.Getenv("BENCH_OUT")
	if dir == "" {
		dir = filepath.Join(harnessRoot(), "bench", "results")
	}
	cfg := compareConfig()
	if n, err := strconv.Atoi(os.Getenv("BENCH_REPS")); err == nil && n > 0 {
		cfg.Reps = n
	}
	if n, err := strconv.Atoi(os.Getenv("BENCH_CELL_SECONDS")); err == nil && n > 0 {
		cfg.CellMaxDuration = time.Duration(n) * time.Second
	}
	a, b := compareSides(t, os.Getenv("BENCH_BASE_REF"), src, os.Getenv("BENCH_NEW_REF"), os.Getenv("BENCH_NEW_SRC"))
	rep := runCompare(t, cfg, a, b)
	name := a.Commit[:7]
	if os.Getenv("BENCH_NEW_SRC") != "" {
		name += "-" + b.Commit[:7]
	}
	writeCompare(t, rep, dir, name)
}
