package bench

// runBench runs every phase of one benchmark: issue throughput and latency per
// upstream latency and client count next to the two floors, then the revocation
// and expiry runs, and gathers the report.

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/openai/openai-go/v3"

	"github.com/vault-plugin-openai/vault-plugin-openai/e2e/harness"
	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

func runBench(t *testing.T, cfg benchConfig) *benchReport {
	start := time.Now()
	rep := &benchReport{Config: cfg, StartedAt: start.UTC(), Machine: machine()}
	b0, _, t0 := machineTicks()
	time.Sleep(2 * time.Second)
	if b1, _, t1 := machineTicks(); t1 > t0 {
		rep.Machine.BusyBefore = (b1 - b0) / (t1 - t0)
	}
	rep.Calls.OtherCallsOnPath = map[string]int{}
	logf := func(format string, args ...any) {
		t.Logf("[bench %5.1fs] %s", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	logf("machine busy before the run: %.0f%%", 100*rep.Machine.BusyBefore)
	if rep.Machine.BusyBefore > 0.2 {
		logf("WARNING: something else is using the CPUs; the figures will be low")
	}

	// Vault 1: floors and the issue matrix. It is discarded afterwards, which
	// is cheaper than revoking the thousands of leases the matrix leaves.
	{
		e := newBenchEnv(t, rep, harness.VaultOptions{}, true)
		sdk := sdkClient(e.f)
		e.f.AddProject(benchFloorProject, "Benchmark floor", "active")
		var issued, floorCreates int
		before := e.f.Calls()
		for li, lat := range cfg.Latencies {
			e.f.SetFaults(fakeopenai.Faults{Latency: lat})
			for _, n := range cfg.Concurrency {
				// The KV floor runs next to the issue cell of the same
				// clients, so both meet Vault in the same state (the
				// leases issued so far weigh on its heap and timers).
				if li == 0 {
					kvCell := e.runCell("kv_write", 0, n, cfg, func(ctx context.Context, i int64) error {
						_, err := e.c.Logical().WriteWithContext(ctx, fmt.Sprintf("kv/data/b/%d", i), map[string]any{"data": map[string]any{"v": "x"}})
						return err
					})
					rep.KVFloor = append(rep.KVFloor, kvCell)
					logf("KV write   c=%-3d %7.1f/s p50 %6.2fms p99 %6.2fms", n, kvCell.PerSecond, kvCell.P50MS, kvCell.P99MS)
				}
				sdkCell := e.runCell("sdk_create", lat, n, cfg, func(ctx context.Context, i int64) error {
					_, err := sdk.Admin.Organization.Projects.ServiceAccounts.New(ctx, benchFloorProject,
						openai.AdminOrganizationProjectServiceAccountNewParams{Name: "floor-" + strconv.FormatInt(i, 10)})
					return err
				})
				rep.SDKFloor = append(rep.SDKFloor, sdkCell)
				floorCreates += sdkCell.Requests + sdkCell.Concurrency // warm-up included

				cell := e.runCell("issue", lat, n, cfg, e.issueFunc(nil))
				rep.Issue = append(rep.Issue, cell)
				issued += cell.Requests - cell.Errors + cell.Concurrency
				logf("SDK floor  %3dms c=%-3d %7.1f/s p50 %6.2fms | issue %7.1f/s p50 %6.2fms p99 %6.2fms errors %d",
					lat.Milliseconds(), n, sdkCell.PerSecond, sdkCell.P50MS, cell.PerSecond, cell.P50MS, cell.P99MS, cell.Errors)
			}
		}
		e.f.SetFaults(fakeopenai.Faults{})
		delta := callDelta(before, e.f.Calls())
		rep.Calls.IssuedKeys = issued
		rep.Calls.CreateCalls = delta[fakeopenai.OpCreateServiceAccount] - floorCreates
		for op, n := range delta {
			if op != fakeopenai.OpCreateServiceAccount {
				rep.Calls.OtherCallsOnPath[string(op)] += n
			}
		}
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
			fill := e.fillLeases(cfg, nil, logf)
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
		fill := e.fillLeases(cfg, &expiresAt, logf)
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
		fill := e.fillLeases(cfg, nil, logf)
		r := e.revokePrefix(cfg, lat, fill)
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
	for _, cells := range [][]cellResult{rep.KVFloor, rep.SDKFloor, rep.Issue} {
		for _, c := range cells {
			if c.Errors > 0 {
				t.Errorf("%s at %dms, %d clients: %d of %d requests failed, first: %s", c.Op, c.LatencyMS, c.Concurrency, c.Errors, c.Requests, c.FirstError)
			}
		}
	}
	rep.Targets = targets(rep)
	rep.Notes = benchNotes(rep)
	rep.WallSeconds = time.Since(start).Seconds()
	return rep
}
