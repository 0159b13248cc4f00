package bench

// What an A/B run measures, and its two sides.

import (
	"testing"
	"time"

	"github.com/vault-plugin-openai/vault-plugin-openai/e2e/harness"
)

// compareConfig is the A/B run's size: the issue path at 0 ms upstream from
// 1 and 16 clients (the engine's own cost) and at 100 ms from 32 (the
// upstream's latency hides it); every cell runs for a fixed time, so both
// sides get the same exposure to the machine.
func compareConfig() benchConfig {
	return benchConfig{
		Name: "compare",
		Cells: []cellDef{
			issueCells([]time.Duration{0}, 1, 16),
			issueCells([]time.Duration{100 * time.Millisecond}, 32),
		},
		Reps:            8,
		PerCell:         1 << 20,
		CellMaxDuration: 4 * time.Second,
		StorageSettle:   2 * time.Second,
	}
}

// compareSides describes A (the checkout at baseSrc, of ref baseRef) and B:
// the checkout at newSrc (of newRef) if given, else the working tree the
// benchmark runs from.
func compareSides(t *testing.T, baseRef, baseSrc, newRef, newSrc string) (a, b *compareSide) {
	t.Helper()
	a = &compareSide{Name: "A", What: "base", Ref: baseRef, Src: baseSrc, Exe: harness.PluginName + "-a", Mount: "openai-a"}
	a.describe(t)
	if a.Ref == "" {
		a.Ref = a.Commit[:7]
	}
	b = &compareSide{Name: "B", What: "working tree", Ref: "working tree", Src: harnessRoot(), Exe: harness.PluginName + "-b", Mount: "openai-b"}
	if newSrc != "" {
		b.What, b.Ref, b.Src = "new", newRef, newSrc
	}
	b.describe(t)
	if b.Ref == "" {
		b.Ref = b.Commit[:7]
	}
	return a, b
}

func harnessRoot() string { return harness.Suite.RepoRoot }
