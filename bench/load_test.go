package bench

// The load: concurrent clients issuing and revoking leases, each cell and
// revocation run measured (throughput, latency percentiles, CPU).

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/vault-plugin-openai/vault-plugin-openai/e2e/harness"
	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// issueFunc issues one key; with ttl it asks for that TTL (the expiry set).
func (e *benchEnv) issueFunc(ttl func() string) func(context.Context, int64) error {
	return func(ctx context.Context, _ int64) error {
		var s *api.Secret
		var err error
		if ttl == nil {
			s, err = e.c.Logical().ReadWithContext(ctx, "openai/creds/"+benchRole)
		} else {
			s, err = e.c.Logical().WriteWithContext(ctx, "openai/creds/"+benchRole, map[string]any{"ttl": ttl()})
		}
		if err != nil {
			return err
		}
		// The key value is checked for presence only and never kept or printed;
		// a non-string or empty value is as missing as an absent one.
		key, _ := harness.DataString(s, "api_key")
		sa, _ := harness.DataString(s, "service_account_id")
		if s == nil || s.LeaseID == "" || key == "" || sa == "" {
			return fmt.Errorf("issue returned no lease or key")
		}
		return nil
	}
}

// runCell warms up with one request per client (opening its connection), then
// runs cfg.PerCell requests from n clients, or as many as fit in
// cfg.CellMaxDuration, and reports throughput and latency.
func (e *benchEnv) runCell(op string, lat time.Duration, n int, cfg benchConfig, do func(context.Context, int64) error) cellResult {
	ctx := context.Background()
	var seq atomic.Int64
	seq.Store(time.Now().UnixNano() % 1e12 * 1000) // distinct keys across cells
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() { defer wg.Done(); _ = do(ctx, seq.Add(1)) }()
	}
	wg.Wait()

	lats := make([]time.Duration, cfg.PerCell)
	var next, done, errs atomic.Int64
	var firstErr atomic.Value
	cpu0 := cpuSnapshot(e.v)
	start := time.Now()
	deadline := start.Add(cfg.CellMaxDuration)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				// Deadline before claiming an index, so claimed indexes have no gaps.
				if time.Now().After(deadline) {
					return
				}
				i := next.Add(1) - 1
				if i >= int64(cfg.PerCell) {
					return
				}
				t0 := time.Now()
				err := do(ctx, seq.Add(1))
				lats[i] = time.Since(t0)
				done.Add(1)
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuSnapshot(e.v).since(cpu0, elapsed)

	got := int(done.Load())
	lats = lats[:got]
	slices.Sort(lats)
	var sum time.Duration
	for _, l := range lats {
		sum += l
	}
	res := cellResult{
		Op: op, LatencyMS: int(lat.Milliseconds()), Concurrency: n, Requests: got, Errors: int(errs.Load()),
		Seconds: elapsed.Seconds(), PerSecond: float64(got) / elapsed.Seconds(),
		P50MS: ms(pct(lats, 0.50)), P99MS: ms(pct(lats, 0.99)), MeanMS: ms(sum / time.Duration(max(got, 1))),
		CPU: cpu,
	}
	if s, ok := firstErr.Load().(string); ok {
		res.FirstError = s
	}
	return res
}

// fillLeases issues cfg.Leases keys at cfg.FillConcurrency (upstream latency
// 0) and checks that the fake holds exactly that many accounts. With
// expiresAt, each key asks for the TTL that ends its lease at that second.
func (e *benchEnv) fillLeases(cfg benchConfig, expiresAt *time.Time, logf func(string, ...any)) time.Duration {
	e.t.Helper()
	var ttl func() string
	if expiresAt != nil {
		ttl = func() string {
			s := int(math.Ceil(time.Until(*expiresAt).Seconds()))
			return strconv.Itoa(max(s, 1)) + "s"
		}
	}
	fc := cfg
	fc.PerCell = cfg.Leases - cfg.FillConcurrency // runCell's warm-up issues one per client
	fc.CellMaxDuration = 10 * time.Minute
	t0 := time.Now()
	cell := e.runCell("issue", 0, cfg.FillConcurrency, fc, e.issueFunc(ttl))
	d := time.Since(t0)
	if cell.Errors > 0 {
		e.t.Fatalf("filling %d leases: %d failed, first: %s", cfg.Leases, cell.Errors, cell.FirstError)
	}
	if n := len(e.f.LiveAccounts()); n != cfg.Leases {
		e.t.Fatalf("after issuing %d keys the fake holds %d accounts", cfg.Leases, n)
	}
	logf("issued %d leases in %.2fs (%.0f/s at %d clients)", cfg.Leases, d.Seconds(), float64(cfg.Leases)/d.Seconds(), cfg.FillConcurrency)
	return d
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
	if from.IsZero() {
		cpu0 = cpuSnapshot(e.v)
		from = time.Now()
		e.maxInFlight.Store(0)
		start()
	} else {
		start()
		e.maxInFlight.Store(0)
		cpu0 = cpuSnapshot(e.v)
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
		CPU:         cpuSnapshot(e.v).since(cpu0, d),
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

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
