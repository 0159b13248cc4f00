package bench

// The load runner: starts Vault, the plugin and the fake, issues and revokes
// leases from concurrent clients, and measures each cell and revocation run.

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

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

// benchEnv is one dev Vault with the plugin mounted at openai/ and role
// "bench", a fake whose in-flight deletes are gauged, and a tuned client.
type benchEnv struct {
	t     *testing.T
	v     *harness.Vault
	f     *harness.Fake
	c     *api.Client
	pprof string // the plugin's pprof base URL
	// inFlight counts DELETE requests being served by the fake.
	inFlight, maxInFlight atomic.Int64
}

// newBenchEnv starts the environment; withKV also mounts KV v2 at kv/.
// Without it the plugin mount is timed into rep (the process is fresh).
func newBenchEnv(t *testing.T, rep *benchReport, opts harness.VaultOptions, withKV bool) *benchEnv {
	t.Helper()
	e := &benchEnv{t: t}
	e.v = harness.StartVault(t, opts)
	e.f = e.gaugedFake(rep.Config.Contract)
	pprofAddr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	e.pprof = "http://" + pprofAddr
	harness.RegisterPlugin(t, e.v, "OPENAI_PLUGIN_PPROF_ADDR="+pprofAddr)
	t0 := time.Now()
	harness.MountPlugin(t, e.v, "openai")
	if !withKV {
		rep.Plugin.MountSeconds = time.Since(t0).Seconds()
	}
	harness.WriteConfig(t, e.v, "openai", e.f, nil)
	harness.WriteRole(t, e.v, "openai", benchRole, map[string]any{"ttl": benchRoleTTL, "max_ttl": benchRoleMax})
	e.c = benchClient(t, e.v)
	if withKV {
		if err := e.v.Client.Sys().Mount("kv", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
			t.Fatalf("mounting kv v2: %v", err)
		}
		kvReady(t, e.c)
	}
	if len(e.v.PluginPIDs()) == 0 {
		t.Fatalf("no plugin process found under Vault (pid %d)", e.v.PID())
	}
	if out, _, code := e.v.CLI("version"); code == 0 && rep.Machine.Vault == "" {
		rep.Machine.Vault = strings.TrimSpace(out)
	}
	return e
}

// gaugedFake is newFake with a gauge of concurrent deletes in front, so a
// revocation shows how much of Vault's concurrency reaches the upstream.
func (e *benchEnv) gaugedFake(contract bool) *harness.Fake {
	// No logger: the fake would format a line per request only to discard it,
	// on the CPUs the engine is being measured on.
	srv := fakeopenai.New(fakeopenai.Options{SkipContract: !contract})
	if contract {
		srv.FailOnViolations(e.t)
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			n := e.inFlight.Add(1)
			defer e.inFlight.Add(-1)
			for m := e.maxInFlight.Load(); n > m && !e.maxInFlight.CompareAndSwap(m, n); m = e.maxInFlight.Load() {
			}
		}
		srv.ServeHTTP(w, r)
	}))
	e.t.Cleanup(func() {
		srv.SetFaults(fakeopenai.Faults{})
		hs.CloseClientConnections()
		hs.Close()
	})
	return &harness.Fake{Server: srv, URL: hs.URL + "/v1", HTTP: hs}
}

// heapMB is the plugin's live heap right after a forced GC (its
// /debug/memstats, which, unlike pprof's heap profile, symbolises nothing).
func (e *benchEnv) heapMB() float64 {
	resp, err := http.Get(e.pprof + "/debug/memstats")
	if err != nil {
		e.t.Errorf("plugin memstats: %v", err)
		return 0
	}
	defer resp.Body.Close()
	var m map[string]uint64
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		e.t.Errorf("plugin memstats: %v", err)
		return 0
	}
	return float64(m["heap_alloc"]) / (1 << 20)
}

func (e *benchEnv) countCalls(rep *benchReport, before map[fakeopenai.Op]int, keys int) {
	delta := callDelta(before, e.f.Calls())
	rep.Calls.IssuedKeys += keys // every key revoked here was issued here
	rep.Calls.CreateCalls += delta[fakeopenai.OpCreateServiceAccount]
	rep.Calls.RevokedKeys += keys
	rep.Calls.DeleteCalls += delta[fakeopenai.OpDeleteServiceAccount]
	for op, n := range delta {
		if op != fakeopenai.OpCreateServiceAccount && op != fakeopenai.OpDeleteServiceAccount {
			rep.Calls.OtherCallsOnPath[string(op)] += n
		}
	}
}

// benchClient is a Vault API client whose transport keeps a connection per
// client goroutine alive (the default pool keeps GOMAXPROCS+1).
func benchClient(t *testing.T, v *harness.Vault) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = v.Addr
	cfg.MaxRetries = 0
	cfg.Timeout = 2 * time.Minute
	cfg.Limiter = nil
	tr := cfg.HttpClient.Transport.(*http.Transport)
	tr.MaxIdleConns = 1024
	tr.MaxIdleConnsPerHost = 512
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.ClearNamespace()
	c.SetToken(v.Token)
	return c
}

// sdkClient calls the fake directly through the official SDK: the upstream floor.
func sdkClient(f *harness.Fake) openai.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 1024
	tr.MaxIdleConnsPerHost = 512
	return openai.NewClient(
		option.WithHTTPClient(&http.Client{Transport: tr}),
		option.WithBaseURL(f.URL),
		option.WithAdminAPIKey(f.AdminKey()),
		option.WithAPIKey(""),
		option.WithMaxRetries(0),
	)
}

// kvReady waits for the KV v2 mount's upgrade to finish (writes fail until then).
func kvReady(t *testing.T, c *api.Client) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := c.Logical().Write("kv/data/ready", map[string]any{"data": map[string]any{"v": "x"}})
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("kv v2 not writable after 30s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

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
