package bench

// The load: concurrent clients issuing and revoking leases, each cell and
// revocation run measured (throughput, latency percentiles, CPU).

import (
	"time"

	"github.com/vault-plugin-openai/vault-plugin-openai/e2e/harness"
	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// runCell runs one repetition of one cell through the load generator: one
// warm-up request per client (opening its connection), then cfg.PerCell
// requests from n clients, or as many as fit in cfg.CellMaxDuration. CPU and
// Vault's storage counters are read around the measured requests only; the
// upstream calls at the fake are counted over the whole run (warm-up too)
// and checked against def.Upstream.
func (e *benchEnv) runCell(def cellDef, lat time.Duration, n, rep int, cfg benchConfig) cellResult {
	e.t.Helper()
	e.f.SetFaults(fakeopenai.Faults{Latency: lat})
	defer e.f.SetFaults(fakeopenai.Faults{})
	calls0 := e.f.Calls()
	var cpu0, cpu1 cpuSnap
	var st0, st1 barrierCount
	var t0 time.Time
	var wall time.Duration
	res := runLoad(e.t, def.Target(e), n, cfg.PerCell, cfg.CellMaxDuration,
		func() { st0 = e.barrierCounts(); cpu0 = e.cpuSnapshot(); t0 = time.Now() },
		func() { wall = time.Since(t0); cpu1 = e.cpuSnapshot(); st1 = e.barrierCounts() })
	if cfg.StorageSettle > 0 {
		st1 = e.settledBarrierCounts(cfg.StorageSettle)
	}
	c := cellResult{
		Op: def.Op, LatencyMS: int(lat.Milliseconds()), Concurrency: n, Rep: rep,
		Requests: res.Requests, Errors: res.Errors, FirstError: res.FirstError,
		Seconds: res.Seconds, PerSecond: res.PerSecond, P50MS: res.P50MS, P99MS: res.P99MS, MeanMS: res.MeanMS,
		CPU: cpu1.since(cpu0, wall, res.CPUSeconds),
	}
	if r := float64(max(res.Requests, 1)); res.Requests > 0 {
		c.PerRequest = perRequest{
			VaultCPUMS: 1000 * c.CPU.VaultSec / r, PluginCPUMS: 1000 * c.CPU.PluginSec / r,
			LoadgenCPUMS: 1000 * c.CPU.LoadgenSec / r, FakeCPUMS: 1000 * c.CPU.BenchSec / r,
			BarrierPuts: (st1.puts - st0.puts) / r, BarrierDels: (st1.dels - st0.dels) / r, BarrierGets: (st1.gets - st0.gets) / r,
		}
	}
	// Every successful request, warm-up included, makes exactly def.Upstream.
	ok := res.Requests + n - res.Errors
	delta := callDelta(calls0, e.f.Calls())
	total := 0
	for op, got := range delta {
		total += got
		if want := def.Upstream[op] * ok; got != want {
			e.t.Errorf("%s at %s, %d clients (rep %d): %d %s calls for %d successful requests, want %d",
				def.Op, lat, n, rep, got, op, ok, want)
		}
	}
	for op, per := range def.Upstream {
		if _, seen := delta[op]; !seen && per*ok != 0 {
			e.t.Errorf("%s at %s, %d clients (rep %d): no %s calls for %d successful requests", def.Op, lat, n, rep, op, ok)
		}
	}
	c.PerRequest.UpstreamCalls = float64(total) / float64(max(ok, 1))
	c.Calls = delta
	return c
}

// fillLeases issues cfg.Leases keys at cfg.FillConcurrency (upstream latency
// 0) through the load generator and checks that the fake holds exactly that
// many accounts. With expiresAt, each key asks for the TTL that ends its
// lease at that second. It returns the time taken and Vault's barrier puts
// and deletes per issued key.
func (e *benchEnv) fillLeases(cfg benchConfig, expiresAt *time.Time, logf func(string, ...any)) (d time.Duration, puts, dels float64) {
	e.t.Helper()
	tg := issueTarget(e)
	if expiresAt != nil {
		tg.Method, tg.ExpireAt = "POST", *expiresAt
	}
	t0 := time.Now()
	p0, d0 := e.barrierOps()
	// The warm-up issues one key per client.
	res := runLoad(e.t, tg, cfg.FillConcurrency, cfg.Leases-cfg.FillConcurrency, 10*time.Minute, nil, nil)
	p1, d1 := e.barrierOps()
	d = time.Since(t0)
	if res.Errors > 0 {
		e.t.Fatalf("filling %d leases: %d failed, first: %s", cfg.Leases, res.Errors, res.FirstError)
	}
	if n := len(e.f.LiveAccounts()); n != cfg.Leases {
		e.t.Fatalf("after issuing %d keys the fake holds %d accounts", cfg.Leases, n)
	}
	logf("issued %d leases in %.2fs (%.0f/s at %d clients)", cfg.Leases, d.Seconds(), float64(cfg.Leases)/d.Seconds(), cfg.FillConcurrency)
	return d, (p1 - p0) / float64(cfg.Leases), (d1 - d0) / float64(cfg.Leases)
}

// revokePrefix revokes the live set by prefix with sync=false, handing it to
// Vault's expiration workers (sync=true revokes one lease at a time).
func (e *benchEnv) revokePrefix(cfg benchConfig, lat, fill time.Duration) revocationResult {
	e.f.SetFaults(fakeopenai.Faults{Latency: lat})
	defer e.f.SetFaults(fakeopenai.Faults{})
	r := e.measureToZero(cfg, lat, func() {
		if _, err := e.c.Logical().Write("sys/leases/revoke-prefix/openai/creds/"+benchRole, map[string]any{"sync": false}); err != nil {
			e.t.Fatalf("revoke-prefix: %v", err)
		}
	}, time.Time{})
	r.Kind, r.FillSeconds = "revoke-prefix", fill.Seconds()
	return r
}

// expiryLead is how far ahead the expiry set's common expiry time lies: the
// fill time seen so far with room to spare, so no lease is issued after it.
func expiryLead(rep *benchReport, cfg benchConfig) time.Duration {
	fill := 0.0
	for _, r := range rep.Revocation {
		fill = max(fill, r.FillSeconds)
	}
	if fill == 0 {
		fill = float64(cfg.Leases) / 50
	}
	return time.Duration((fill*1.4+4)*float64(time.Second)) + time.Second
}

// measureToZero runs start (which revokes, or waits for expiry) and measures
// from `from` (or the call) until the fake holds no accounts, sampling the
// upstream deletes in flight meanwhile.
func (e *benchEnv) measureToZero(cfg benchConfig, lat time.Duration, start func(), from time.Time) revocationResult {
	t := e.t
	t.Helper()
	before := e.f.Calls()[fakeopenai.OpDeleteServiceAccount]
	var cpu0 cpuSnap
	puts0, dels0 := e.barrierOps()
	if from.IsZero() {
		cpu0 = e.cpuSnapshot()
		from = time.Now()
		e.maxInFlight.Store(0)
		start()
	} else {
		start()
		e.maxInFlight.Store(0)
		cpu0 = e.cpuSnapshot()
	}
	const timeout = 5 * time.Minute
	var samples, sum int64
	for len(e.f.LiveAccounts()) > 0 {
		if time.Since(from) > timeout {
			t.Fatalf("%d accounts still live %s after revocation began", len(e.f.LiveAccounts()), timeout)
		}
		if n := e.inFlight.Load(); n > 0 {
			samples, sum = samples+1, sum+n
		}
		time.Sleep(benchPollInterval)
	}
	d := time.Since(from)
	r := revocationResult{
		LatencyMS: int(lat.Milliseconds()), Leases: cfg.Leases, Workers: vaultRevocationWorkers,
		Seconds: d.Seconds(), PerSecond: float64(cfg.Leases) / d.Seconds(),
		WorkerFloor: float64(cfg.Leases) * lat.Seconds() / vaultRevocationWorkers,
		DeleteCalls: e.f.Calls()[fakeopenai.OpDeleteServiceAccount] - before,
		MaxInFlight: int(e.maxInFlight.Load()),
		CPU:         e.cpuSnapshot().since(cpu0, d, 0),
	}
	if samples > 0 {
		r.MeanInFlight = float64(sum) / float64(samples)
	}
	// Vault deletes the lease right after the backend's revoke returns. Wait
	// up to a minute without failing here: the count left is the figure the
	// callers assert on (a fatal wait would make that assertion unreachable).
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		r.LeasesLeft = len(harness.LeasesUnder(t, e.v, "openai/creds/"+benchRole+"/"))
		if r.LeasesLeft == 0 || time.Now().After(deadline) {
			break
		}
	}
	// Counted once Vault holds no leases: its lease deletes come after the
	// plugin's revoke returns.
	puts1, dels1 := e.barrierOps()
	r.BarrierPuts, r.BarrierDels = (puts1-puts0)/float64(cfg.Leases), (dels1-dels0)/float64(cfg.Leases)
	if r.LeasesLeft != 0 {
		t.Errorf("%d leases still held by Vault a minute after their accounts were deleted", r.LeasesLeft)
	}
	if r.DeleteCalls != cfg.Leases {
		t.Errorf("%d delete calls revoking %d leases, want exactly one each", r.DeleteCalls, cfg.Leases)
	}
	return r
}

func callDelta(before, after map[fakeopenai.Op]int) map[fakeopenai.Op]int {
	d := map[fakeopenai.Op]int{}
	for op, n := range after {
		if n-before[op] != 0 {
			d[op] = n - before[op]
		}
	}
	return d
}
