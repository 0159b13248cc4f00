package bench

// runBench runs every phase of one benchmark: issue throughput and latency per
// upstream latency and client count next to the two floors, then the revocation
// and expiry runs, and gathers the report.

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/vault-plugin-openai/vault-plugin-openai/e2e/harness"
	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

func runBench(t *testing.T, cfg benchConfig) *benchReport {
	start := time.Now()
	rep := &benchReport{Config: cfg, StartedAt: start.UTC(), Machine: machine()}
	rep.Machine.BusyBefore = busyOver(2 * time.Second)
	rep.Calls.OtherCallsOnPath = map[string]int{}
	logf := func(format string, args ...any) {
		t.Logf("[bench %5.1fs] %s", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	logf("machine busy before the run: %.0f%%", 100*rep.Machine.BusyBefore)
	if rep.Machine.BusyBefore > 0.2 {
		logf("WARNING: something else is using the CPUs; the figures will be low")
	}

	// Vault 1: floors and the issue matrix, every cell cfg.Reps times,
	// interleaved (repetition 1 of every cell, then 2, ...) so that a slow
	// spell of the machine spreads over the cells instead of sinking one.
	// Within a repetition the cells run by upstream latency, then clients,
	// so the KV floor and the issue cell of the same clients meet Vault in
	// the same state (the leases issued so far weigh on its heap and timers).
	// The Vault is discarded afterwards, which is cheaper than revoking the
	// thousands of leases the matrix leaves.
	{
		opts := harness.VaultOptions{}
		floor := hasFloorCells(cfg)
		if floor {
			opts.PluginDir = floorPluginDir(t)
		}
		e := newBenchEnv(t, rep, opts, true)
		if floor {
			e.mountFloor(opts.PluginDir)
		}
		e.f.AddProject(benchFloorProject, "Benchmark floor", "active")
		cells := cellOrder(cfg.Cells)
		for r := 1; r <= cfg.Reps; r++ {
			for _, c := range cells {
				res := e.runCell(c.def, c.lat, c.clients, r, cfg)
				rep.Runs = append(rep.Runs, res)
				if c.def.Issues {
					rep.Calls.IssuedKeys += res.Requests + res.Concurrency - res.Errors
					for op, n := range res.Calls {
						switch _, declared := c.def.Upstream[op]; {
						case op == fakeopenai.OpCreateServiceAccount:
							rep.Calls.CreateCalls += n
						case declared:
							// A call the cell makes by design (a scoped
							// key's create), counted exactly per cell.
						default:
							rep.Calls.OtherCallsOnPath[string(op)] += n
						}
					}
				}
				pr := res.PerRequest
				logf("rep %d %-15s %3dms c=%-3d %7.1f/s p50 %6.2fms p99 %6.2fms errors %d | CPU ms/req Vault %.3f plugin %.3f loadgen %.3f fake %.3f | barrier puts %.2f deletes %.2f",
					r, c.def.Op, c.lat.Milliseconds(), c.clients, res.PerSecond, res.P50MS, res.P99MS, res.Errors,
					pr.VaultCPUMS, pr.PluginCPUMS, pr.LoadgenCPUMS, pr.FakeCPUMS, pr.BarrierPuts, pr.BarrierDels)
			}
		}
		for _, c := range cells {
			m := medianCell(rep.Runs, c.def.Op, int(c.lat.Milliseconds()), c.clients)
			rep.Cells = append(rep.Cells, m)
			switch c.def.Op {
			case opKV:
				rep.KVFloor = append(rep.KVFloor, m)
			case opUpstream:
				rep.SDKFloor = append(rep.SDKFloor, m)
			case opIssue:
				rep.Issue = append(rep.Issue, m)
			case opIssueScoped:
				rep.IssueScoped = append(rep.IssueScoped, m)
			default:
				if isFloorOp(c.def.Op) {
					rep.Floor = append(rep.Floor, m)
				}
			}
		}
		slices.SortStableFunc(rep.Issue, func(a, b cellResult) int { return cmp.Or(a.LatencyMS-b.LatencyMS, a.Concurrency-b.Concurrency) })
	}
	rep.Ratios = ratios(rep)

	// Vault 2: a fresh plugin process for start-up, memory with live leases,
	// revocation by prefix and mass expiry.
	{
		e := newBenchEnv(t, rep, harness.VaultOptions{}, false)
		logf("plugin mount (process start, handshake, Setup): %.3fs", rep.Plugin.MountSeconds)
		rep.Plugin.RSSIdleMB, _ = procMemMB(e.v.PluginPIDs())
		rep.Plugin.HeapIdleMB = e.heapMB()
		before := e.f.Calls()
		var revoked int

		for i, lat := range cfg.RevokeLatencies {
			fill, fillPuts, fillDels := e.fillLeases(cfg, nil, logf)
			rss, hwm := procMemMB(e.v.PluginPIDs())
			heap := e.heapMB()
			if i == 0 {
				rep.Plugin.RSSAtLeasesMB, rep.Plugin.HWMAtLeasesMB, rep.Plugin.HeapAtLeasesMB = rss, hwm, heap
				m := procMem(e.v.PluginPIDs())
				rep.Plugin.AnonAtLeasesMB, rep.Plugin.FileAtLeasesMB = m["RssAnon"], m["RssFile"]
				rep.Plugin.LiveLeases = len(harness.LeasesUnder(t, e.v, "openai/creds/"+benchRole+"/"))
			} else {
				rep.Plugin.RSSAtLeasesAgainMB = rss
			}
			logf("%d live leases: plugin VmRSS %.1f MB, VmHWM %.1f MB, heap after GC %.1f MB", cfg.Leases, rss, hwm, heap)

			r := e.revokePrefix(cfg, lat, fill)
			r.FillBarrierPuts, r.FillBarrierDels = fillPuts, fillDels
			rep.Revocation = append(rep.Revocation, r)
			revoked += cfg.Leases
			logf("revoke-prefix of %d at %dms: %.2fs to zero accounts (%.0f/s; worker floor %.2fs; upstream in flight max %d, mean %.0f)",
				cfg.Leases, lat.Milliseconds(), r.Seconds, r.PerSecond, r.WorkerFloor, r.MaxInFlight, r.MeanInFlight)
			if i == 0 {
				rep.Plugin.HeapAfterRevokeMB = e.heapMB()
			}
		}

		// Mass expiry: every lease gets the TTL that ends it at the same
		// second, so all of them fall due within one second.
		expiresAt := time.Now().Add(expiryLead(rep, cfg))
		fill, fillPuts, fillDels := e.fillLeases(cfg, &expiresAt, logf)
		e.f.SetFaults(fakeopenai.Faults{Latency: cfg.ExpiryLatency})
		r := e.measureToZero(cfg, cfg.ExpiryLatency, func() {
			if d := time.Until(expiresAt); d > 0 {
				time.Sleep(d)
			} else if cfg.Name == "smoke" {
				// Late leases ask for a 1s TTL and still expire; only the
				// "all due in one second" shape of the measurement suffers,
				// which the smoke run does not measure. A busy machine is
				// not a failure of the engine.
				logf("filling the expiry set overran its expiry time by %s (not measured in the smoke run)", -d)
			} else {
				t.Errorf("filling the expiry set overran its expiry time by %s: the mass-expiry figure is not valid", -d)
			}
		}, expiresAt)
		r.Kind, r.FillSeconds = "expiry", fill.Seconds()
		r.FillBarrierPuts, r.FillBarrierDels = fillPuts, fillDels
		rep.Revocation = append(rep.Revocation, r)
		revoked += cfg.Leases
		logf("mass expiry of %d at %dms: %.2fs from the expiry time to zero accounts", cfg.Leases, cfg.ExpiryLatency.Milliseconds(), r.Seconds)
		e.f.SetFaults(fakeopenai.Faults{})

		_, rep.Plugin.HWMEndMB = procMemMB(e.v.PluginPIDs())
		e.countCalls(rep, before, revoked)

		// Restart of the plugin process, as `vault plugin reload` does it.
		t0 := time.Now()
		if _, err := e.v.Client.Sys().ReloadPluginWithContext(context.Background(), &api.ReloadPluginInput{Plugin: harness.PluginName}); err != nil {
			t.Fatalf("plugin reload: %v", err)
		}
		for {
			if _, err := e.c.Logical().Read("openai/creds/" + benchRole); err == nil {
				break
			}
			if time.Since(t0) > time.Minute {
				t.Fatalf("no key issued within a minute of the plugin reload")
			}
			time.Sleep(5 * time.Millisecond)
		}
		rep.Plugin.ReloadToIssue = time.Since(t0).Seconds()
		logf("plugin reload to first issued key: %.3fs", rep.Plugin.ReloadToIssue)
	}

	// Vault 3: the same revocation with more expiration workers. Faster means
	// Vault's worker count, not the plugin, was the limit.
	if cfg.ProbeWorkers > 0 && len(cfg.RevokeLatencies) > 0 {
		lat := slices.Max(cfg.RevokeLatencies)
		e := newBenchEnv(t, rep, harness.VaultOptions{Env: []string{"VAULT_LEASE_REVOCATION_WORKERS=" + strconv.Itoa(cfg.ProbeWorkers)}}, false)
		before := e.f.Calls()
		fill, fillPuts, fillDels := e.fillLeases(cfg, nil, logf)
		r := e.revokePrefix(cfg, lat, fill)
		r.FillBarrierPuts, r.FillBarrierDels = fillPuts, fillDels
		r.Workers = cfg.ProbeWorkers
		r.WorkerFloor = float64(cfg.Leases) * lat.Seconds() / float64(cfg.ProbeWorkers)
		rep.Revocation = append(rep.Revocation, r)
		e.countCalls(rep, before, cfg.Leases)
		logf("revoke-prefix of %d at %dms with %d Vault workers: %.2fs to zero accounts (%.0f/s; upstream in flight max %d, mean %.0f)",
			cfg.Leases, lat.Milliseconds(), cfg.ProbeWorkers, r.Seconds, r.PerSecond, r.MaxInFlight, r.MeanInFlight)
	}

	rep.Calls.PerIssuedKey = float64(rep.Calls.CreateCalls) / float64(max(rep.Calls.IssuedKeys, 1))
	rep.Calls.PerRevokedKey = float64(rep.Calls.DeleteCalls) / float64(max(rep.Calls.RevokedKeys, 1))
	if rep.Calls.CreateCalls != rep.Calls.IssuedKeys {
		t.Errorf("%d create calls for %d issued keys, want exactly one each", rep.Calls.CreateCalls, rep.Calls.IssuedKeys)
	}
	if rep.Calls.DeleteCalls != rep.Calls.RevokedKeys {
		t.Errorf("%d delete calls for %d revoked keys, want exactly one each", rep.Calls.DeleteCalls, rep.Calls.RevokedKeys)
	}
	for op, n := range rep.Calls.OtherCallsOnPath {
		if n == 0 {
			delete(rep.Calls.OtherCallsOnPath, op)
		}
	}
	if len(rep.Calls.OtherCallsOnPath) != 0 {
		t.Errorf("upstream calls other than create and delete on the issue and revoke paths: %v", rep.Calls.OtherCallsOnPath)
	}
	for _, c := range rep.Runs {
		if c.Errors > 0 {
			t.Errorf("%s at %dms, %d clients, rep %d: %d of %d requests failed, first: %s", c.Op, c.LatencyMS, c.Concurrency, c.Rep, c.Errors, c.Requests, c.FirstError)
		}
	}
	rep.Targets = targets(rep)
	rep.Notes = benchNotes(rep)
	rep.WallSeconds = time.Since(start).Seconds()
	return rep
}

// cell is one (op, upstream latency, clients) of the matrix.
type cell struct {
	def     cellDef
	lat     time.Duration
	clients int
}

// cellOrder lists every cell of defs by upstream latency, then clients, then
// the order of defs (so at equal clients: KV floor, upstream floor, issue).
func cellOrder(defs []cellDef) []cell {
	var out []cell
	for _, d := range defs {
		for _, l := range d.Latencies {
			for _, n := range d.Clients {
				out = append(out, cell{d, l, n})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b cell) int {
		return cmp.Or(cmp.Compare(a.lat, b.lat), cmp.Compare(a.clients, b.clients))
	})
	return out
}

// medianCell is the median over the repetitions of one cell, each figure on
// its own, with the range of throughput and p50.
func medianCell(runs []cellResult, op string, latMS, clients int) cellResult {
	var rs []cellResult
	for _, r := range runs {
		if r.Op == op && r.LatencyMS == latMS && r.Concurrency == clients {
			rs = append(rs, r)
		}
	}
	med := func(f func(cellResult) float64) float64 { return median(pick(rs, f)) }
	m := cellResult{Op: op, LatencyMS: latMS, Concurrency: clients, Reps: len(rs)}
	for _, r := range rs {
		m.Errors += r.Errors
		if m.FirstError == "" {
			m.FirstError = r.FirstError
		}
	}
	m.Requests = int(med(func(r cellResult) float64 { return float64(r.Requests) }))
	m.Seconds = med(func(r cellResult) float64 { return r.Seconds })
	m.PerSecond = med(func(r cellResult) float64 { return r.PerSecond })
	m.P50MS = med(func(r cellResult) float64 { return r.P50MS })
	m.P99MS = med(func(r cellResult) float64 { return r.P99MS })
	m.MeanMS = med(func(r cellResult) float64 { return r.MeanMS })
	m.PerSecondMin = slices.Min(pick(rs, func(r cellResult) float64 { return r.PerSecond }))
	m.PerSecondMax = slices.Max(pick(rs, func(r cellResult) float64 { return r.PerSecond }))
	m.P50MSMin = slices.Min(pick(rs, func(r cellResult) float64 { return r.P50MS }))
	m.P50MSMax = slices.Max(pick(rs, func(r cellResult) float64 { return r.P50MS }))
	m.CPU = cpuUse{
		VaultSec: med(func(r cellResult) float64 { return r.CPU.VaultSec }), PluginSec: med(func(r cellResult) float64 { return r.CPU.PluginSec }),
		BenchSec: med(func(r cellResult) float64 { return r.CPU.BenchSec }), LoadgenSec: med(func(r cellResult) float64 { return r.CPU.LoadgenSec }),
		Machine: med(func(r cellResult) float64 { return r.CPU.Machine }), Busy: med(func(r cellResult) float64 { return r.CPU.Busy }),
		Steal: med(func(r cellResult) float64 { return r.CPU.Steal }),
	}
	m.PerRequest = perRequest{
		VaultCPUMS: med(func(r cellResult) float64 { return r.PerRequest.VaultCPUMS }), PluginCPUMS: med(func(r cellResult) float64 { return r.PerRequest.PluginCPUMS }),
		LoadgenCPUMS: med(func(r cellResult) float64 { return r.PerRequest.LoadgenCPUMS }), FakeCPUMS: med(func(r cellResult) float64 { return r.PerRequest.FakeCPUMS }),
		BarrierPuts: med(func(r cellResult) float64 { return r.PerRequest.BarrierPuts }), BarrierDels: med(func(r cellResult) float64 { return r.PerRequest.BarrierDels }),
		BarrierGets:   med(func(r cellResult) float64 { return r.PerRequest.BarrierGets }),
		UpstreamCalls: med(func(r cellResult) float64 { return r.PerRequest.UpstreamCalls }),
	}
	return m
}

func pick(rs []cellResult, f func(cellResult) float64) []float64 {
	xs := make([]float64, len(rs))
	for i, r := range rs {
		xs[i] = f(r)
	}
	return xs
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}
