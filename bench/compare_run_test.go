package bench

// An A/B run (make bench-compare): the plugin built from a base commit (A)
// and from the working tree (B) with the same flags, registered under two
// catalog names in one Vault, mounted side by side against one fake, and
// measured in turns.
//
// One Vault rather than one per side: both builds then meet the same Vault
// process, heap, storage and lease count, so the only difference between
// two neighbouring measurements is the plugin. The two plugin processes run
// throughout; the idle one costs nothing measurable. The turns are A B, then
// B A (an ABBA order): leases accumulate in Vault as the run goes on, and a
// fixed A-first order would always give B the fuller Vault.

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/vault-plugin-openai/vault-plugin-openai/e2e/harness"
)

// compareSide is one of the two builds.
type compareSide struct {
	Name   string `json:"name"` // A or B
	What   string `json:"what"` // "base" or "working tree"
	Ref    string `json:"ref"`
	Commit string `json:"commit"`
	// Subject is the commit's subject line; Dirty, for the working tree,
	// whether it had uncommitted changes to the plugin's sources.
	Subject string `json:"subject"`
	Dirty   bool   `json:"uncommitted_changes,omitempty"`
	// PluginCommit is the last commit that changed what the plugin is
	// built from (pluginSources), with its subject.
	PluginCommit string `json:"plugin_sources_commit"`
	Exe          string `json:"catalog_name"` // binary and catalog name
	Mount        string `json:"mount"`
	SHA256       string `json:"sha256"`
	Src          string `json:"-"`
}

// compareRun is one repetition of one cell on one side.
type compareRun struct {
	Side  string `json:"side"`
	Order int    `json:"order"` // 1 or 2: which of the pair ran first
	cellResult
}

// compareCell is every figure of one cell, A against B.
type compareCell struct {
	LatencyMS   int                `json:"upstream_latency_ms"`
	Concurrency int                `json:"concurrency"`
	Figures     []figureComparison `json:"figures"`
	// Storage operations per issue (Vault's barrier, deferred work
	// included), medians.
	PutsA float64 `json:"barrier_puts_a"`
	DelsA float64 `json:"barrier_deletes_a"`
	PutsB float64 `json:"barrier_puts_b"`
	DelsB float64 `json:"barrier_deletes_b"`
	GetsA float64 `json:"barrier_gets_a"`
	GetsB float64 `json:"barrier_gets_b"`
	// The machine during the cell's runs: its busy share, and the share
	// our processes (Vault, plugin, fake, load generator) took of it.
	BusyA, OursA sideStats
	BusyB, OursB sideStats
}

type compareReport struct {
	Config      benchConfig    `json:"config"`
	Machine     machineInfo    `json:"machine"`
	StartedAt   time.Time      `json:"started_at"`
	WallSeconds float64        `json:"wall_seconds"`
	A           compareSide    `json:"a"`
	B           compareSide    `json:"b"`
	Cells       []compareCell  `json:"cells"`
	Runs        []compareRun   `json:"runs"`
	Method      string         `json:"method"`
	Calls       map[string]int `json:"upstream_calls"`
	Errors      map[string]int `json:"errors_by_side"`
}

// runCompare builds both sides, mounts them in one Vault and runs every cell
// of cfg cfg.Reps times per side in ABBA order.
func runCompare(t *testing.T, cfg benchConfig, a, b *compareSide) *compareReport {
	start := time.Now()
	logf := func(format string, args ...any) {
		t.Logf("[compare %5.1fs] %s", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	rep := &compareReport{Config: cfg, StartedAt: start.UTC(), Machine: machine(), A: *a, B: *b,
		Calls: map[string]int{}, Errors: map[string]int{}}

	// Both builds with the flags TestMain builds the benchmark's plugin
	// with, into one plugin directory under their catalog names.
	dir := t.TempDir()
	sides := []*compareSide{&rep.A, &rep.B}
	for _, s := range sides {
		t0 := time.Now()
		s.SHA256 = harness.BuildPluginFrom(t, s.Src, filepath.Join(dir, s.Exe), harness.Suite.Version, harness.Build{Race: raceEnabled, Tags: "pprof"})
		logf("built %s (%s %s) in %.1fs", s.Name, s.What, s.Commit[:min(12, len(s.Commit))], time.Since(t0).Seconds())
	}

	rep.Machine.BusyBefore = busyOver(2 * time.Second)
	logf("machine busy before the run: %.0f%%", 100*rep.Machine.BusyBefore)

	v := harness.StartVault(t, harness.VaultOptions{PluginDir: dir})
	first := &benchEnv{t: t, v: v}
	f := first.gaugedFake(cfg.Contract)
	c := benchClient(t, v)
	envs := map[string]*benchEnv{}
	for _, s := range sides {
		if err := v.Client.Sys().RegisterPluginWithContext(context.Background(), &api.RegisterPluginInput{
			Name: s.Exe, Type: api.PluginTypeSecrets, Command: s.Exe, SHA256: s.SHA256, Version: harness.Suite.Version,
		}); err != nil {
			t.Fatalf("registering %s: %v", s.Exe, err)
		}
		if err := v.Client.Sys().Mount(s.Mount, &api.MountInput{Type: s.Exe, Config: api.MountConfigInput{PluginVersion: harness.Suite.Version}}); err != nil {
			t.Fatalf("mounting %s at %s: %v", s.Exe, s.Mount, err)
		}
		harness.WriteConfig(t, v, s.Mount, f, nil)
		harness.WriteRole(t, v, s.Mount, benchRole, map[string]any{"ttl": benchRoleTTL, "max_ttl": benchRoleMax})
		envs[s.Name] = &benchEnv{t: t, v: v, f: f, c: c, mount: s.Mount, pluginExe: s.Exe}
	}
	pa, pb := envs["A"].pluginPIDs(), envs["B"].pluginPIDs()
	if len(pa) != 1 || len(pb) != 1 || pa[0] == pb[0] {
		t.Fatalf("want one plugin process per side, got A %v, B %v", pa, pb)
	}
	if out, _, code := v.CLI("version"); code == 0 {
		rep.Machine.Vault = strings.TrimSpace(out)
	}

	cells := cellOrder(cfg.Cells)
	for r := 1; r <= cfg.Reps; r++ {
		order := []string{"A", "B"}
		if r%2 == 0 {
			order = []string{"B", "A"}
		}
		for _, cl := range cells {
			for i, side := range order {
				res := envs[side].runCell(cl.def, cl.lat, cl.clients, r, cfg)
				rep.Runs = append(rep.Runs, compareRun{Side: side, Order: i + 1, cellResult: res})
				for op, n := range res.Calls {
					rep.Calls[side+" "+string(op)] += n
				}
				rep.Errors[side] += res.Errors
				if res.Errors > 0 {
					t.Errorf("%s at %dms, %d clients, rep %d, side %s: %d of %d requests failed, first: %s",
						res.Op, res.LatencyMS, res.Concurrency, r, side, res.Errors, res.Requests, res.FirstError)
				}
				pr := res.PerRequest
				logf("rep %d %s %3dms c=%-3d %7.1f/s p50 %6.2fms p99 %6.2fms | CPU ms/issue Vault %.3f plugin %.3f | puts %.2f deletes %.2f gets %.2f | busy %.0f%% (ours %.0f%%)",
					r, side, cl.lat.Milliseconds(), cl.clients, res.PerSecond, res.P50MS, res.P99MS,
					pr.VaultCPUMS, pr.PluginCPUMS, pr.BarrierPuts, pr.BarrierDels, pr.BarrierGets, 100*res.CPU.Busy, 100*res.CPU.Machine)
			}
		}
	}
	for _, cl := range cells {
		rep.Cells = append(rep.Cells, compareCellOf(rep.Runs, int(cl.lat.Milliseconds()), cl.clients))
	}
	rep.Method = compareMethod(cfg)
	rep.WallSeconds = time.Since(start).Seconds()
	return rep
}

// compareCellOf gathers one cell's repetitions of both sides, in repetition
// order, and compares them figure by figure.
func compareCellOf(runs []compareRun, latMS, clients int) compareCell {
	by := map[string][]cellResult{}
	for _, r := range runs {
		if r.LatencyMS == latMS && r.Concurrency == clients {
			by[r.Side] = append(by[r.Side], r.cellResult)
		}
	}
	a, b := by["A"], by["B"]
	fig := func(name string, higherIsBetter bool, f func(cellResult) float64) figureComparison {
		return compareFigure(name, pick(a, f), pick(b, f), higherIsBetter)
	}
	c := compareCell{LatencyMS: latMS, Concurrency: clients, Figures: []figureComparison{
		fig("issues/s", true, func(r cellResult) float64 { return r.PerSecond }),
		fig("p50 ms", false, func(r cellResult) float64 { return r.P50MS }),
		fig("p99 ms", false, func(r cellResult) float64 { return r.P99MS }),
		fig("Vault CPU ms/issue", false, func(r cellResult) float64 { return r.PerRequest.VaultCPUMS }),
		fig("plugin CPU ms/issue", false, func(r cellResult) float64 { return r.PerRequest.PluginCPUMS }),
	}}
	c.PutsA = median(pick(a, func(r cellResult) float64 { return r.PerRequest.BarrierPuts }))
	c.DelsA = median(pick(a, func(r cellResult) float64 { return r.PerRequest.BarrierDels }))
	c.PutsB = median(pick(b, func(r cellResult) float64 { return r.PerRequest.BarrierPuts }))
	c.DelsB = median(pick(b, func(r cellResult) float64 { return r.PerRequest.BarrierDels }))
	c.GetsA = median(pick(a, func(r cellResult) float64 { return r.PerRequest.BarrierGets }))
	c.GetsB = median(pick(b, func(r cellResult) float64 { return r.PerRequest.BarrierGets }))
	c.BusyA = summarise(pick(a, func(r cellResult) float64 { return r.CPU.Busy }))
	c.OursA = summarise(pick(a, func(r cellResult) float64 { return r.CPU.Machine }))
	c.BusyB = summarise(pick(b, func(r cellResult) float64 { return r.CPU.Busy }))
	c.OursB = summarise(pick(b, func(r cellResult) float64 { return r.CPU.Machine }))
	return c
}

func compareMethod(cfg benchConfig) string {
	return fmt.Sprintf("One Vault dev server, one in-process fake; A and B are two catalog entries (two plugin processes) mounted side by side. "+
		"Every cell runs %d times per side for %s each, in turns: repetition 1 A then B, repetition 2 B then A, and so on (ABBA), every cell of a repetition before the next. "+
		"After each run the barrier counters are read once they stop moving (at most %s), so writes deferred past the response count in their own run. "+
		"Verdict: two-sided Mann-Whitney U test of the %d values per side (golang.org/x/perf/benchmath, as benchstat), \"within noise\" at p >= %.2f; "+
		"ranges, the B÷A ratio within each repetition's pair and a sign test on the pairs are shown beside it. "+
		"%d figures are tested, each at p < %.2f: about one in twenty says \"differs\" when nothing changed, so a lone verdict is a reason to rerun, not a finding; "+
		"an A/A run (BASE=HEAD on a clean tree) shows what the machine's noise does.",
		cfg.Reps, cfg.CellMaxDuration, cfg.StorageSettle, cfg.Reps, compareAlpha, 5*len(cellOrder(cfg.Cells)), compareAlpha)
}

// pluginSources is what `go build ./cmd/vault-plugin-openai` reads (go list
// -deps: the backend and the command, and the module files).
var pluginSources = []string{"backend", "cmd", "go.mod", "go.sum"}

// describe fills s's commit and subject from its checkout, the last commit
// that changed the plugin's sources, and whether they have uncommitted
// changes: a commit that touched only the benchmark builds the same plugin
// as its parent.
func (s *compareSide) describe(t *testing.T) {
	t.Helper()
	git := func(args ...string) string {
		out, err := exec.Command("git", append([]string{"-C", s.Src}, args...)...).Output()
		if err != nil {
			t.Fatalf("git %v in %s: %v", args, s.Src, err)
		}
		return strings.TrimSpace(string(out))
	}
	s.Commit, s.Subject, _ = strings.Cut(git("log", "-1", "--format=%H %s"), " ")
	s.PluginCommit = git(append([]string{"log", "-1", "--format=%h %s", "--"}, pluginSources...)...)
	s.Dirty = git(append([]string{"status", "--porcelain", "--"}, pluginSources...)...) != ""
}
