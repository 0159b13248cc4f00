package bench

// The benchmark's configuration and its results, as written to bench/results/bench.json.

import (
	"time"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// benchConfig sizes one run.
type benchConfig struct {
	Name string `json:"name"`
	// Cells are the measured request loads. Each runs Reps times,
	// interleaved: repetition 1 of every cell, then repetition 2, ...
	Cells           []cellDef       `json:"cells"`
	Reps            int             `json:"repetitions"`
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
	// StorageSettle, if set, waits up to this long after each cell for
	// Vault's barrier counters to stop moving before reading them, so
	// writes a request defers past its response count in its own cell.
	StorageSettle time.Duration `json:"storage_settle,omitempty"`
}

// cellDef is one kind of request load (an op) at some upstream latencies and
// client counts; every (latency, clients) pair is a cell. Adding a row to the
// tables (say a scoped issue, two upstream calls) is one more cellDef.
type cellDef struct {
	Op        string          `json:"op"` // kv_write, upstream_create, issue
	Latencies []time.Duration `json:"latencies"`
	Clients   []int           `json:"clients"`
	// Target is the request the load generator repeats.
	Target func(e *benchEnv) loadTarget `json:"-"`
	// Upstream is the upstream calls each successful request makes, by
	// operation at the fake; every cell checks its count exactly.
	Upstream map[fakeopenai.Op]int `json:"upstream_calls_per_request"`
	// Issues is true if each request leaves a live lease and account.
	Issues bool `json:"issues"`
}

// Ops in the tables.
const (
	opKV       = "kv_write"
	opUpstream = "upstream_create"
	opIssue    = "issue"
	// opIssueScoped issues from a role with scopes: a bare account, then a
	// scoped key on it (two upstream calls).
	opIssueScoped = "issue_scoped"
)

// kvCells is the KV v2 write floor: Vault's own request and storage write, on
// the same Vault, always at upstream latency 0 (it makes no upstream call).
func kvCells(clients ...int) cellDef {
	return cellDef{Op: opKV, Latencies: []time.Duration{0}, Clients: clients, Target: func(e *benchEnv) loadTarget {
		return loadTarget{URL: e.v.Addr + "/v1/", Path: "kv/data/b/{i}", Method: "POST", Body: `{"data":{"v":"x"}}`,
			VaultToken: e.v.Token, Expect: []string{`"version":`}}
	}}
}

// upstreamCells is the upstream floor: the load generator creating a service
// account at the fake directly, with the same upstream latency.
func upstreamCells(lats []time.Duration, clients ...int) cellDef {
	return cellDef{Op: opUpstream, Latencies: lats, Clients: clients, Target: func(e *benchEnv) loadTarget {
		return loadTarget{URL: e.f.URL, Path: "/organization/projects/" + benchFloorProject + "/service_accounts", Method: "POST",
			Body: `{"name":"floor"}`, Authz: "Bearer " + e.f.AdminKey(), Expect: []string{`"api_key"`}}
	}, Upstream: map[fakeopenai.Op]int{fakeopenai.OpCreateServiceAccount: 1}}
}

// issueCells reads openai/creds/bench: one key, one lease, one upstream create.
func issueCells(lats []time.Duration, clients ...int) cellDef {
	return cellDef{Op: opIssue, Latencies: lats, Clients: clients, Target: issueTarget, Issues: true,
		Upstream: map[fakeopenai.Op]int{fakeopenai.OpCreateServiceAccount: 1}}
}

// scopedIssueCells reads openai/creds/bench-scoped: one key, one lease, two
// upstream calls (bare account, scoped key).
func scopedIssueCells(lats []time.Duration, clients ...int) cellDef {
	return cellDef{Op: opIssueScoped, Latencies: lats, Clients: clients, Target: scopedIssueTarget, Issues: true,
		Upstream: map[fakeopenai.Op]int{fakeopenai.OpCreateServiceAccount: 1, fakeopenai.OpCreateServiceAccountKey: 1}}
}

func scopedIssueTarget(e *benchEnv) loadTarget {
	return loadTarget{URL: e.v.Addr + "/v1/", Path: "openai/creds/" + benchScopedRole, Method: "GET", VaultToken: e.v.Token,
		Expect: []string{`"lease_id":"openai/creds/` + benchScopedRole + `/`, `"api_key":"sk-`, `"scopes":["` + benchScope + `"]`}}
}

// issueTarget checks a lease and a key in the answer by byte search (the key
// itself is never kept or printed).
func issueTarget(e *benchEnv) loadTarget {
	m := e.mountPath()
	return loadTarget{URL: e.v.Addr + "/v1/", Path: m + "/creds/" + benchRole, Method: "GET", VaultToken: e.v.Token,
		Expect: []string{`"lease_id":"` + m + `/creds/` + benchRole + `/`, `"api_key":"sk-`, `"service_account_id":"svc_acct_`}}
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
	benchScopedRole            = "bench-scoped"
	benchScope                 = "api.model.read"
	benchFloorProject          = "proj_bench_floor"
	benchPollInterval          = 50 * time.Millisecond
	benchRoleTTL, benchRoleMax = "1h", "2h"
)

// cellResult is one (operation, upstream latency, clients) measurement: one
// repetition (Rep >= 1), or the median of all repetitions (Rep 0, with the
// range of the throughput and p50 over them).
type cellResult struct {
	Op          string  `json:"op"` // issue, kv_write, upstream_create
	LatencyMS   int     `json:"upstream_latency_ms"`
	Concurrency int     `json:"concurrency"`
	Rep         int     `json:"rep,omitempty"`
	Reps        int     `json:"reps,omitempty"`
	Requests    int     `json:"requests"`
	Errors      int     `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
	Seconds     float64 `json:"seconds"`
	PerSecond   float64 `json:"per_second"`
	P50MS       float64 `json:"p50_ms"`
	P99MS       float64 `json:"p99_ms"`
	MeanMS      float64 `json:"mean_ms"`
	// Range over the repetitions (medians only).
	PerSecondMin float64 `json:"per_second_min,omitempty"`
	PerSecondMax float64 `json:"per_second_max,omitempty"`
	P50MSMin     float64 `json:"p50_ms_min,omitempty"`
	P50MSMax     float64 `json:"p50_ms_max,omitempty"`
	CPU          cpuUse  `json:"cpu"`
	// Per measured request: CPU ms of each process, and Vault's barrier
	// (encrypted storage) puts and deletes from its telemetry.
	PerRequest perRequest `json:"per_request"`
	// Calls is the upstream calls at the fake during the run, warm-up
	// included, by operation (repetitions only).
	Calls map[fakeopenai.Op]int `json:"upstream_calls,omitempty"`
}

type perRequest struct {
	VaultCPUMS   float64 `json:"vault_cpu_ms"`
	PluginCPUMS  float64 `json:"plugin_cpu_ms"`
	LoadgenCPUMS float64 `json:"loadgen_cpu_ms"`
	FakeCPUMS    float64 `json:"fake_cpu_ms"` // the test process, which serves the fake
	BarrierPuts  float64 `json:"barrier_puts"`
	BarrierDels  float64 `json:"barrier_deletes"`
	// BarrierGets is storage reads that reached the barrier (the sys/metrics
	// reads around the batch included: a few per batch).
	BarrierGets   float64 `json:"barrier_gets"`
	UpstreamCalls float64 `json:"upstream_calls"` // at the fake, warm-up included
}

// ratioRow sets one issue cell against its floors at the same clients.
type ratioRow struct {
	LatencyMS   int     `json:"upstream_latency_ms"`
	Concurrency int     `json:"concurrency"`
	ThrVsKV     float64 `json:"throughput_vs_kv_write"`       // issue/s ÷ KV writes/s
	ThrVsSDK    float64 `json:"throughput_vs_upstream_call"`  // issue/s ÷ direct upstream calls/s
	P50VsKV     float64 `json:"p50_minus_upstream_vs_kv_p50"` // (issue p50 − upstream p50) ÷ KV p50
	P50VsSum    float64 `json:"p50_vs_kv_plus_upstream_p50"`  // issue p50 ÷ (KV p50 + upstream p50)
	ThrVsIdeal  float64 `json:"throughput_vs_ideal"`          // issue/s ÷ min(KV/s, clients ÷ (KV p50 + upstream p50))
	IdealPerSec float64 `json:"ideal_per_second"`
}

type revocationResult struct {
	Kind        string  `json:"kind"` // revoke-prefix (sync=false) or expiry
	LatencyMS   int     `json:"upstream_latency_ms"`
	Leases      int     `json:"leases"`
	Workers     int     `json:"vault_revocation_workers"`
	FillSeconds float64 `json:"fill_seconds"`    // issuing the set
	Seconds     float64 `json:"seconds_to_zero"` // until the fake holds zero accounts
	PerSecond   float64 `json:"revoked_per_second"`
	WorkerFloor float64 `json:"worker_floor_seconds"` // leases × latency ÷ Vault's per-mount workers
	DeleteCalls int     `json:"delete_calls"`
	// Vault's barrier puts and deletes per lease, from revocation start to
	// zero leases (and, for the fill, per issued key).
	BarrierPuts     float64 `json:"barrier_puts_per_lease"`
	BarrierDels     float64 `json:"barrier_deletes_per_lease"`
	FillBarrierPuts float64 `json:"fill_barrier_puts_per_issue"`
	FillBarrierDels float64 `json:"fill_barrier_deletes_per_issue"`
	MaxInFlight     int     `json:"upstream_deletes_in_flight_max"`
	MeanInFlight    float64 `json:"upstream_deletes_in_flight_mean"` // sampled while any were
	LeasesLeft      int     `json:"vault_leases_left"`
	CPU             cpuUse  `json:"cpu"`
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
	Config      benchConfig `json:"config"`
	Machine     machineInfo `json:"machine"`
	StartedAt   time.Time   `json:"started_at"`
	WallSeconds float64     `json:"wall_seconds"`
	// Medians over the repetitions, by op; Runs holds every repetition.
	Issue       []cellResult `json:"issue"`
	IssueScoped []cellResult `json:"issue_scoped"`
	KVFloor     []cellResult `json:"kv_write_floor"`
	SDKFloor    []cellResult `json:"upstream_call_floor"`
	// Floor holds the floor plugin's cells (floor_test.go).
	Floor      []cellResult       `json:"external_plugin_floor,omitempty"`
	Cells      []cellResult       `json:"cells"` // every op's medians, in run order
	Runs       []cellResult       `json:"runs"`
	Ratios     []ratioRow         `json:"ratios"`
	Revocation []revocationResult `json:"revocation"`
	Plugin     pluginResult       `json:"plugin"`
	Calls      callsResult        `json:"upstream_calls"`
	Targets    []targetResult     `json:"targets"`
	Notes      []string           `json:"notes"`
}

// runBench runs every phase and returns the report; failures of correctness
// (errors, leaks, extra upstream calls) fail t, missed targets are reported.
