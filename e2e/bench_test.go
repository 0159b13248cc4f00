//go:build e2e

package e2e

// The benchmark of issue 6: the engine driven through a real Vault dev server
// against the in-process fake Admin API with a set upstream latency, next to
// the two floors it cannot beat (a KV v2 write on the same Vault, and a direct
// SDK call to the fake). bench_full_test.go (tag "bench") runs it at full size
// and writes bench/results/; TestBenchSmoke runs it small so it keeps working.

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
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

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// benchConfig sizes one run.
type benchConfig struct {
	Name            string          `json:"name"`
	Concurrency     []int           `json:"concurrency"`
	Latencies       []time.Duration `json:"latencies"`
	PerCell         int             `json:"requests_per_cell"`
	CellMaxDuration time.Duration   `json:"cell_max_duration"`
	Leases          int             `json:"leases"`           // revocation and expiry set size
	RevokeLatencies []time.Duration `json:"revoke_latencies"` // one revocation run per latency
	ExpiryLatency   time.Duration   `json:"expiry_latency"`
	FillConcurrency int             `json:"fill_concurrency"` // clients issuing the lease sets
	// ProbeWorkers, if set, repeats the revocation at the highest revoke
	// latency on a Vault with VAULT_LEASE_REVOCATION_WORKERS=ProbeWorkers:
	// if Vault's worker count is what limits revocation, it gets faster.
	ProbeWorkers int `json:"probe_workers,omitempty"`
	// Contract keeps the fake's contract check on (as in every other test).
	// The measured runs leave it off: it would spend CPU on the machine
	// being measured. The smoke run, which proves correctness, keeps it.
	Contract bool `json:"contract"`
}

// Vault's expiration manager revokes through a fair-share job manager of 200
// workers (numExpirationWorkersDefault in vault/expiration.go of v1.21.0,
// override VAULT_LEASE_REVOCATION_WORKERS). A queue (one per mount) may hold
// at most ceil(0.9 × workers ÷ queues with work) of them while others wait
// (queueWorkersSaturated in helper/fairshare/jobmanager.go), so one busy
// mount gets 180 to 200. revoke-prefix with sync=false feeds that pool from
// a loop that marks each lease expired, one after another.
const (
	vaultRevocationWorkers     = 200
	benchRole                  = "bench"
	benchFloorProject          = "proj_bench_floor"
	benchPollInterval          = 50 * time.Millisecond
	benchRoleTTL, benchRoleMax = "1h", "2h"
)

// cellResult is one (operation, upstream latency, clients) measurement.
type cellResult struct {
	Op          string  `json:"op"` // issue, kv_write, sdk_create
	LatencyMS   int     `json:"upstream_latency_ms"`
	Concurrency int     `json:"concurrency"`
	Requests    int     `json:"requests"`
	Errors      int     `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
	Seconds     float64 `json:"seconds"`
	PerSecond   float64 `json:"per_second"`
	P50MS       float64 `json:"p50_ms"`
	P99MS       float64 `json:"p99_ms"`
	MeanMS      float64 `json:"mean_ms"`
	CPU         cpuUse  `json:"cpu"`
}

// ratioRow sets one issue cell against its floors at the same clients.
type ratioRow struct {
	LatencyMS   int     `json:"upstream_latency_ms"`
	Concurrency int     `json:"concurrency"`
	ThrVsKV     float64 `json:"throughput_vs_kv_write"`       // issue/s ÷ KV writes/s
	ThrVsSDK    float64 `json:"throughput_vs_sdk_call"`       // issue/s ÷ direct SDK calls/s
	P50VsKV     float64 `json:"p50_minus_upstream_vs_kv_p50"` // (issue p50 − SDK p50) ÷ KV p50
	P50VsSum    float64 `json:"p50_vs_kv_plus_sdk_p50"`       // issue p50 ÷ (KV p50 + SDK p50)
	ThrVsIdeal  float64 `json:"throughput_vs_ideal"`          // issue/s ÷ min(KV/s, clients ÷ (KV p50 + SDK p50))
	IdealPerSec float64 `json:"ideal_per_second"`
}

type revocationResult struct {
	Kind         string  `json:"kind"` // revoke-prefix (sync=false) or expiry
	LatencyMS    int     `json:"upstream_latency_ms"`
	Leases       int     `json:"leases"`
	Workers      int     `json:"vault_revocation_workers"`
	FillSeconds  float64 `json:"fill_seconds"`    // issuing the set
	Seconds      float64 `json:"seconds_to_zero"` // until the fake holds zero accounts
	PerSecond    float64 `json:"revoked_per_second"`
	WorkerFloor  float64 `json:"worker_floor_seconds"` // leases × latency ÷ Vault's per-mount workers
	DeleteCalls  int     `json:"delete_calls"`
	MaxInFlight  int     `json:"upstream_deletes_in_flight_max"`
	MeanInFlight float64 `json:"upstream_deletes_in_flight_mean"` // sampled while any were
	LeasesLeft   int     `json:"vault_leases_left"`
	CPU          cpuUse  `json:"cpu"`
}

type pluginResult struct {
	MountSeconds       float64 `json:"mount_seconds"`         // sys/mounts: plugin start, handshake, Setup
	ReloadToIssue      float64 `json:"reload_to_first_issue"` // sys/plugins/reload until an issue succeeds
	RSSIdleMB          float64 `json:"rss_idle_mb"`           // after mount and config
	RSSAtLeasesMB      float64 `json:"rss_at_leases_mb"`      // VmRSS with Leases live leases
	HWMAtLeasesMB      float64 `json:"hwm_at_leases_mb"`      // VmHWM (peak) with Leases live leases
	RSSAtLeasesAgainMB float64 `json:"rss_at_leases_again_mb"`
	HWMEndMB           float64 `json:"hwm_end_mb"` // peak over the whole second Vault's run
	LiveLeases         int     `json:"live_leases"`
	// Live heap after a forced GC (pprof), idle, with the leases live, and
	// after they were revoked: equal within noise means no per-lease memory.
	HeapIdleMB        float64 `json:"heap_idle_mb"`
	HeapAtLeasesMB    float64 `json:"heap_at_leases_mb"`
	HeapAfterRevokeMB float64 `json:"heap_after_revoke_mb"`
	// VmRSS split with the leases live: anonymous (heap, stacks) and
	// file-backed (the binary's pages).
	AnonAtLeasesMB float64 `json:"rss_anon_at_leases_mb"`
	FileAtLeasesMB float64 `json:"rss_file_at_leases_mb"`
}

type callsResult struct {
	IssuedKeys       int            `json:"issued_keys"`
	CreateCalls      int            `json:"create_calls"`
	PerIssuedKey     float64        `json:"calls_per_issued_key"`
	RevokedKeys      int            `json:"revoked_keys"`
	DeleteCalls      int            `json:"delete_calls"`
	PerRevokedKey    float64        `json:"calls_per_revoked_key"`
	OtherCallsOnPath map[string]int `json:"other_calls_on_issue_and_revoke_paths"`
}

type targetResult struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Pass bool   `json:"pass"`
}

type machineInfo struct {
	// BusyBefore is the machine's busy share in the 2s before the run: the
	// figures are only as good as the machine was quiet.
	BusyBefore float64 `json:"busy_before_run"`
	CPUs       int     `json:"cpus"`
	CPUModel   string  `json:"cpu_model"`
	GoVersion  string  `json:"go_version"`
	Vault      string  `json:"vault"`
	Plugin     string  `json:"plugin_version"`
	PluginRace bool    `json:"plugin_race"`
}

type benchReport struct {
	Config      benchConfig        `json:"config"`
	Machine     machineInfo        `json:"machine"`
	StartedAt   time.Time          `json:"started_at"`
	WallSeconds float64            `json:"wall_seconds"`
	Issue       []cellResult       `json:"issue"`
	KVFloor     []cellResult       `json:"kv_write_floor"`
	SDKFloor    []cellResult       `json:"sdk_call_floor"`
	Ratios      []ratioRow         `json:"ratios"`
	Revocation  []revocationResult `json:"revocation"`
	Plugin      pluginResult       `json:"plugin"`
	Calls       callsResult        `json:"upstream_calls"`
	Targets     []targetResult     `json:"targets"`
	Notes       []string           `json:"notes"`
}

// runBench runs every phase and returns the report; failures of correctness
// (errors, leaks, extra upstream calls) fail t, missed targets are reported.
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
		e := newBenchEnv(t, rep, VaultOptions{}, true)
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
		e := newBenchEnv(t, rep, VaultOptions{}, false)
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
				rep.Plugin.LiveLeases = len(leasesUnder(t, e.v, "openai/creds/"+benchRole+"/"))
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
		if _, err := e.v.Client.Sys().ReloadPluginWithContext(context.Background(), &api.ReloadPluginInput{Plugin: pluginName}); err != nil {
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
		e := newBenchEnv(t, rep, VaultOptions{Env: []string{"VAULT_LEASE_REVOCATION_WORKERS=" + strconv.Itoa(cfg.ProbeWorkers)}}, false)
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
	v     *Vault
	f     *Fake
	c     *api.Client
	pprof string // the plugin's pprof base URL
	// inFlight counts DELETE requests being served by the fake.
	inFlight, maxInFlight atomic.Int64
}

// newBenchEnv starts the environment; withKV also mounts KV v2 at kv/.
// Without it the plugin mount is timed into rep (the process is fresh).
func newBenchEnv(t *testing.T, rep *benchReport, opts VaultOptions, withKV bool) *benchEnv {
	t.Helper()
	e := &benchEnv{t: t}
	e.v = startVault(t, opts)
	e.f = e.gaugedFake(rep.Config.Contract)
	pprofAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	e.pprof = "http://" + pprofAddr
	registerPlugin(t, e.v, "OPENAI_PLUGIN_PPROF_ADDR="+pprofAddr)
	t0 := time.Now()
	mountPlugin(t, e.v, "openai")
	if !withKV {
		rep.Plugin.MountSeconds = time.Since(t0).Seconds()
	}
	writeConfig(t, e.v, "openai", e.f, nil)
	writeRole(t, e.v, "openai", benchRole, map[string]any{"ttl": benchRoleTTL, "max_ttl": benchRoleMax})
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
func (e *benchEnv) gaugedFake(contract bool) *Fake {
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
	return &Fake{Server: srv, URL: hs.URL + "/v1", http: hs}
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
func benchClient(t *testing.T, v *Vault) *api.Client {
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
func sdkClient(f *Fake) openai.Client {
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
		key, _ := dataString(s, "api_key")
		sa, _ := dataString(s, "service_account_id")
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
		r.LeasesLeft = len(leasesUnder(t, e.v, "openai/creds/"+benchRole+"/"))
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

// cpuUse is CPU seconds spent per process during a phase, and the share of
// the machine (all cores) they add up to.
type cpuUse struct {
	VaultSec  float64 `json:"vault_s"`
	PluginSec float64 `json:"plugin_s"`
	BenchSec  float64 `json:"bench_s"`       // this process: clients and the fake
	Machine   float64 `json:"machine_share"` // the three above ÷ (wall × CPUs)
	// Busy is the whole machine's busy share (/proc/stat), so CPU taken by
	// anything else running at the time shows as Busy − Machine.
	Busy float64 `json:"machine_busy"`
	// Steal is the share the hypervisor gave to other guests: on a shared
	// host it slows every figure of the phase alike.
	Steal float64 `json:"machine_steal"`
}

type cpuSnap struct {
	vault, plugin, self float64
	busy, steal, total  float64
}

func cpuSnapshot(v *Vault) cpuSnap {
	s := cpuSnap{vault: procCPU(v.PID()), self: procCPU(os.Getpid())}
	for _, p := range v.PluginPIDs() {
		s.plugin += procCPU(p)
	}
	s.busy, s.steal, s.total = machineTicks()
	return s
}

func (s cpuSnap) since(b cpuSnap, wall time.Duration) cpuUse {
	u := cpuUse{VaultSec: s.vault - b.vault, PluginSec: s.plugin - b.plugin, BenchSec: s.self - b.self}
	u.Machine = (u.VaultSec + u.PluginSec + u.BenchSec) / (wall.Seconds() * float64(runtime.NumCPU()))
	if s.total > b.total {
		u.Busy = (s.busy - b.busy) / (s.total - b.total)
		u.Steal = (s.steal - b.steal) / (s.total - b.total)
	}
	return u
}

// machineTicks reads the aggregate "cpu" line of /proc/stat: busy ticks,
// ticks stolen by the hypervisor, and all ticks.
func machineTicks() (busy, steal, total float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	for i, x := range f[1:] {
		n, _ := strconv.ParseFloat(x, 64)
		if i >= 8 { // guest time is already counted in user
			break
		}
		total += n
		switch i {
		case 3, 4: // idle, iowait
		case 7:
			steal += n
		default:
			busy += n
		}
	}
	return busy, steal, total
}

// procCPU is user+system CPU seconds of pid (/proc/<pid>/stat, USER_HZ 100).
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100
}

// procMemMB returns the largest VmRSS and VmHWM among pids, in MiB.
func procMemMB(pids []int) (rss, hwm float64) {
	m := procMem(pids)
	return m["VmRSS"], m["VmHWM"]
}

// procMem returns the largest of each memory line of /proc/<pid>/status
// (VmRSS, VmHWM, RssAnon, RssFile) among pids, in MiB.
func procMem(pids []int) map[string]float64 {
	out := map[string]float64{}
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			k, val, ok := strings.Cut(line, ":")
			if !ok || (k != "VmRSS" && k != "VmHWM" && k != "RssAnon" && k != "RssFile") {
				continue
			}
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 64)
			out[k] = max(out[k], kb/1024)
		}
	}
	return out
}

func machine() machineInfo {
	m := machineInfo{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Plugin: suite.version, PluginRace: raceEnabled}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, val, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(val)
				break
			}
		}
	}
	return m
}

func findCell(cells []cellResult, latMS, n int) (cellResult, bool) {
	for _, c := range cells {
		if (c.LatencyMS == latMS || c.Op == "kv_write") && c.Concurrency == n {
			return c, true
		}
	}
	return cellResult{}, false
}

func ratios(rep *benchReport) []ratioRow {
	var out []ratioRow
	for _, is := range rep.Issue {
		kv, ok1 := findCell(rep.KVFloor, 0, is.Concurrency)
		sdk, ok2 := findCell(rep.SDKFloor, is.LatencyMS, is.Concurrency)
		if !ok1 || !ok2 {
			continue
		}
		serial := kv.P50MS + sdk.P50MS
		ideal := math.Min(kv.PerSecond, float64(is.Concurrency)/(serial/1000))
		out = append(out, ratioRow{
			LatencyMS: is.LatencyMS, Concurrency: is.Concurrency,
			ThrVsKV: is.PerSecond / kv.PerSecond, ThrVsSDK: is.PerSecond / sdk.PerSecond,
			P50VsKV: (is.P50MS - sdk.P50MS) / kv.P50MS, P50VsSum: is.P50MS / serial,
			ThrVsIdeal: is.PerSecond / ideal, IdealPerSec: ideal,
		})
	}
	return out
}

// targets evaluates issue 6's targets on this run's own floors.
func targets(rep *benchReport) []targetResult {
	var out []targetResult
	add := func(name, want, got string, pass bool) {
		out = append(out, targetResult{Name: name, Want: want, Got: got, Pass: pass})
	}
	hiLat := 0
	for _, l := range rep.Config.Latencies {
		hiLat = max(hiLat, int(l.Milliseconds()))
	}
	midC := 32
	if !slices.Contains(rep.Config.Concurrency, midC) {
		midC = rep.Config.Concurrency[len(rep.Config.Concurrency)-1]
	}
	if is, ok := findCell(rep.Issue, hiLat, midC); ok && hiLat > 0 {
		kv, _ := findCell(rep.KVFloor, 0, midC)
		sum := float64(hiLat) + kv.P50MS
		add(fmt.Sprintf("p50 at %dms upstream, %d clients", hiLat, midC),
			fmt.Sprintf("<= 1.10 x (%d + KV p50 %.2f) = %.1f ms", hiLat, kv.P50MS, 1.1*sum),
			fmt.Sprintf("%.1f ms (%.3f x)", is.P50MS, is.P50MS/sum), is.P50MS <= 1.1*sum)
		want := 0.9 * float64(midC) / (sum / 1000)
		add(fmt.Sprintf("throughput at %dms upstream, %d clients", hiLat, midC),
			fmt.Sprintf(">= 0.9 x %d / %.1f ms = %.0f/s", midC, sum, want),
			fmt.Sprintf("%.0f/s (%.3f x of %d/sum)", is.PerSecond, is.PerSecond/(float64(midC)/(sum/1000)), midC), is.PerSecond >= want)
		top := rep.Config.Concurrency[len(rep.Config.Concurrency)-1]
		if hi, ok := findCell(rep.Issue, hiLat, top); ok && top > midC {
			add(fmt.Sprintf("no collapse at %d clients, %dms upstream", top, hiLat),
				fmt.Sprintf(">= %d-client throughput (%.0f/s), no errors", midC, is.PerSecond),
				fmt.Sprintf("%.0f/s, %d errors", hi.PerSecond, hi.Errors), hi.PerSecond >= is.PerSecond && hi.Errors == 0)
		}
	}
	var peakIssue, peakKV float64
	var peakIssueC, peakKVC int
	for _, c := range rep.Issue {
		if c.LatencyMS == 0 && c.PerSecond > peakIssue {
			peakIssue, peakIssueC = c.PerSecond, c.Concurrency
		}
	}
	for _, c := range rep.KVFloor {
		if c.PerSecond > peakKV {
			peakKV, peakKVC = c.PerSecond, c.Concurrency
		}
	}
	add("throughput at 0ms upstream (peak over clients)",
		fmt.Sprintf(">= 0.5 x KV-write peak %.0f/s (%d clients) = %.0f/s", peakKV, peakKVC, 0.5*peakKV),
		fmt.Sprintf("%.0f/s at %d clients (%.2f x)", peakIssue, peakIssueC, peakIssue/peakKV), peakIssue >= 0.5*peakKV)

	var revDefault float64
	for _, r := range rep.Revocation {
		if r.Kind == "revoke-prefix" && r.Workers == vaultRevocationWorkers && r.LatencyMS > 0 {
			revDefault = r.Seconds
		}
	}
	for _, r := range rep.Revocation {
		if r.Kind != "revoke-prefix" || r.LatencyMS == 0 {
			continue
		}
		if r.Workers == vaultRevocationWorkers && r.Leases >= 10*vaultRevocationWorkers {
			add(fmt.Sprintf("revoke-prefix at %dms: all of Vault's revocation concurrency reaches the upstream", r.LatencyMS),
				fmt.Sprintf("max deletes in flight at the fake >= 0.9 x %d (Vault's worker pool)", vaultRevocationWorkers),
				fmt.Sprintf("max %d, mean %.0f", r.MaxInFlight, r.MeanInFlight), float64(r.MaxInFlight) >= 0.9*vaultRevocationWorkers)
		} else if revDefault > 0 {
			add(fmt.Sprintf("revoke-prefix at %dms with %d Vault workers instead of %d", r.LatencyMS, r.Workers, vaultRevocationWorkers),
				"faster (the limit is Vault's worker count, not the plugin): <= 0.8 x",
				fmt.Sprintf("%.2fs vs %.2fs (%.2f x), max in flight %d", r.Seconds, revDefault, r.Seconds/revDefault, r.MaxInFlight), r.Seconds <= 0.8*revDefault)
		}
	}
	if rep.Plugin.HeapAtLeasesMB > 0 {
		d := rep.Plugin.HeapAtLeasesMB - rep.Plugin.HeapAfterRevokeMB
		add(fmt.Sprintf("no per-lease memory in the plugin (%d leases)", rep.Config.Leases),
			"live heap after GC with the leases live − after revoking them < 1 MB (100 B per lease)",
			fmt.Sprintf("%.2f − %.2f = %.2f MB", rep.Plugin.HeapAtLeasesMB, rep.Plugin.HeapAfterRevokeMB, d), d < 1)
	}
	add(fmt.Sprintf("plugin RSS with %d live leases", rep.Config.Leases), "< 64 MB (VmHWM, the process's peak)",
		fmt.Sprintf("VmHWM %.1f MB, VmRSS %.1f MB", rep.Plugin.HWMAtLeasesMB, rep.Plugin.RSSAtLeasesMB), rep.Plugin.HWMAtLeasesMB > 0 && rep.Plugin.HWMAtLeasesMB < 64)
	add("upstream calls per issued key", "exactly 1",
		fmt.Sprintf("%d / %d = %.4f", rep.Calls.CreateCalls, rep.Calls.IssuedKeys, rep.Calls.PerIssuedKey), rep.Calls.CreateCalls == rep.Calls.IssuedKeys)
	add("upstream calls per revoked key", "exactly 1",
		fmt.Sprintf("%d / %d = %.4f", rep.Calls.DeleteCalls, rep.Calls.RevokedKeys, rep.Calls.PerRevokedKey), rep.Calls.DeleteCalls == rep.Calls.RevokedKeys)
	return out
}

func benchNotes(rep *benchReport) []string {
	return []string{
		fmt.Sprintf("Everything shares this machine's %d CPUs: Vault, the plugin, the benchmark clients and the fake; the cpu columns in the JSON split the time.", rep.Machine.CPUs),
		fmt.Sprintf("Vault revokes through a pool of %d expiration workers (VAULT_LEASE_REVOCATION_WORKERS), one mount getting 90%% of it while other mounts have work queued; revoke-prefix runs with sync=false so the pool does it (sync=true revokes one lease at a time, in the request).", vaultRevocationWorkers),
		"Floors: kv_write is a KV v2 write to a fresh key on the same Vault; sdk_create is openai-go creating a service account at the fake directly, with the same upstream latency.",
	}
}

// writeReport prints the Markdown report and writes JSON, Markdown and the plot into dir.
func writeReport(t *testing.T, rep *benchReport, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	md := markdown(rep)
	for name, data := range map[string][]byte{"bench.json": append(b, '\n'), "bench.md": []byte(md)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := plotThroughput(rep, filepath.Join(dir, "throughput.png")); err != nil {
		t.Fatalf("plot: %v", err)
	}
	fmt.Println(md)
	t.Logf("wrote %s/{bench.json,bench.md,throughput.png}", dir)
}

func markdown(rep *benchReport) string {
	var sb strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&sb, format, args...) }
	m := rep.Machine
	w("# Benchmark: %s run, %s\n\n", rep.Config.Name, rep.StartedAt.Format("2006-01-02 15:04 MST"))
	w("%d CPUs (%s), %s, %s, plugin %s (race detector %t). Wall time %.0fs. Machine busy before the run: %.0f%%.\n\n", m.CPUs, m.CPUModel, m.GoVersion, m.Vault, m.Plugin, m.PluginRace, rep.WallSeconds, 100*m.BusyBefore)
	w("## Issue throughput and latency\n\n")
	w("Up to %d requests per cell (or %s), one warm-up request per client first. KV = KV v2 write on the same Vault; SDK = openai-go call to the fake.\n\n", rep.Config.PerCell, rep.Config.CellMaxDuration)
	w("| upstream | clients | issues/s | p50 ms | p99 ms | KV writes/s | KV p50 ms | SDK calls/s | SDK p50 ms | issue/s ÷ KV/s | issue/s ÷ SDK/s | p50 ÷ (KV p50 + SDK p50) | issue/s ÷ ideal |\n")
	w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, is := range rep.Issue {
		kv, _ := findCell(rep.KVFloor, 0, is.Concurrency)
		sdk, _ := findCell(rep.SDKFloor, is.LatencyMS, is.Concurrency)
		var r ratioRow
		for _, x := range rep.Ratios {
			if x.LatencyMS == is.LatencyMS && x.Concurrency == is.Concurrency {
				r = x
			}
		}
		w("| %d ms | %d | %.0f | %.2f | %.2f | %.0f | %.2f | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f |\n",
			is.LatencyMS, is.Concurrency, is.PerSecond, is.P50MS, is.P99MS, kv.PerSecond, kv.P50MS, sdk.PerSecond, sdk.P50MS,
			r.ThrVsKV, r.ThrVsSDK, r.P50VsSum, r.ThrVsIdeal)
	}
	w("\nideal = min(KV writes/s, clients ÷ (KV p50 + SDK p50)): Vault's own request and write, then one upstream call, back to back.\n\n")
	w("CPU per request in ms (Vault / plugin / this process: clients and fake), our share of the machine, the machine's busy share (the difference is anything else running) and the share the hypervisor stole:\n\n| op | upstream | clients | Vault | plugin | bench | ours | machine busy | steal |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, cells := range [][]cellResult{rep.KVFloor, rep.Issue} {
		for _, c := range cells {
			per := 1000 / float64(max(c.Requests, 1))
			w("| %s | %d ms | %d | %.2f | %.2f | %.2f | %.0f%% | %.0f%% | %.0f%% |\n", c.Op, c.LatencyMS, c.Concurrency, per*c.CPU.VaultSec, per*c.CPU.PluginSec, per*c.CPU.BenchSec, 100*c.CPU.Machine, 100*c.CPU.Busy, 100*c.CPU.Steal)
		}
	}
	w("\n## Revocation and expiry\n\n| kind | upstream | leases | Vault workers | seconds to zero accounts | revoked/s | worker floor s | upstream deletes in flight (max / mean) | delete calls | Vault CPU s | plugin CPU s | bench CPU s | machine busy |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rep.Revocation {
		w("| %s | %d ms | %d | %d | %.2f | %.0f | %.2f | %d / %.0f | %d | %.1f | %.1f | %.1f | %.0f%% |\n", r.Kind, r.LatencyMS, r.Leases, r.Workers, r.Seconds, r.PerSecond,
			r.WorkerFloor, r.MaxInFlight, r.MeanInFlight, r.DeleteCalls, r.CPU.VaultSec, r.CPU.PluginSec, r.CPU.BenchSec, 100*r.CPU.Busy)
	}
	w("\nworker floor = leases × upstream latency ÷ Vault's revocation workers (default %d). revoke-prefix uses sync=false; expiry is timed from the second every lease expired at.\n\n", vaultRevocationWorkers)
	p := rep.Plugin
	w("## Plugin process\n\n| measure | value |\n|---|---:|\n")
	w("| start-up: mount (process start, handshake, Setup) | %.3f s |\n| start-up: `plugin reload` to first issued key | %.3f s |\n", p.MountSeconds, p.ReloadToIssue)
	w("| VmRSS after mount and config | %.1f MB |\n| VmRSS with %d live leases | %.1f MB |\n| VmHWM (peak) with %d live leases | %.1f MB |\n", p.RSSIdleMB, p.LiveLeases, p.RSSAtLeasesMB, p.LiveLeases, p.HWMAtLeasesMB)
	w("| of VmRSS with %d live leases: anonymous (heap, stacks) / file-backed (binary) | %.1f / %.1f MB |\n", p.LiveLeases, p.AnonAtLeasesMB, p.FileAtLeasesMB)
	if p.RSSAtLeasesAgainMB > 0 {
		w("| VmRSS with %d live leases again, after revoking the first set | %.1f MB |\n", rep.Config.Leases, p.RSSAtLeasesAgainMB)
	}
	w("| VmHWM at the end of the run | %.1f MB |\n", p.HWMEndMB)
	w("| live heap after GC: idle / %d leases live / after revoking them | %.2f / %.2f / %.2f MB |\n", p.LiveLeases, p.HeapIdleMB, p.HeapAtLeasesMB, p.HeapAfterRevokeMB)
	c := rep.Calls
	w("\n## Upstream calls (counted at the fake)\n\n| | keys | calls | per key |\n|---|---:|---:|---:|\n")
	w("| create per issued key | %d | %d | %.4f |\n| delete per revoked key | %d | %d | %.4f |\n", c.IssuedKeys, c.CreateCalls, c.PerIssuedKey, c.RevokedKeys, c.DeleteCalls, c.PerRevokedKey)
	w("\nOther upstream calls on these paths: %d.\n\n## Targets\n\n| target | want | got | |\n|---|---|---|---|\n", len(c.OtherCallsOnPath))
	for _, tg := range rep.Targets {
		mark := "pass"
		if !tg.Pass {
			mark = "**miss**"
		}
		w("| %s | %s | %s | %s |\n", tg.Name, tg.Want, tg.Got, mark)
	}
	w("\n")
	for _, n := range rep.Notes {
		w("- %s\n", n)
	}
	return sb.String()
}

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
