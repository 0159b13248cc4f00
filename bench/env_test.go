package bench

// The environment the load runs in: a dev Vault with the plugin mounted, a fake
// whose in-flight deletes are gauged, and clients tuned for load.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/vault-plugin-openai/vault-plugin-openai/e2e/harness"
	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// benchEnv is one dev Vault with the plugin mounted at openai/ and role
// "bench", a fake whose in-flight deletes are gauged, and a tuned client.
type benchEnv struct {
	t     *testing.T
	v     *harness.Vault
	f     *harness.Fake
	c     *api.Client
	pprof string // the plugin's pprof base URL
	// mount and pluginExe are where the engine is mounted and the binary
	// its process runs (default openai/ and harness.PluginName); an A/B
	// comparison mounts two builds side by side in one Vault.
	mount, pluginExe string
	// floor is set once the floor plugin is mounted (floor_test.go).
	floor bool
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
	harness.WriteRole(t, e.v, "openai", benchScopedRole, map[string]any{"ttl": benchRoleTTL, "max_ttl": benchRoleMax, "scopes": benchScope})
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

// mountPath is the engine's mount (default openai).
func (e *benchEnv) mountPath() string {
	if e.mount == "" {
		return "openai"
	}
	return e.mount
}

// pluginPIDs lists the processes of this environment's build of the plugin.
func (e *benchEnv) pluginPIDs() []int {
	if e.pluginExe == "" {
		return e.v.PluginPIDs()
	}
	return e.v.PluginPIDsNamed(e.pluginExe)
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

// benchClient is a Vault API client for the bench's own requests (setup,
// revoke-prefix, the reload probe); the load comes from the load generator.
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

// barrierOps reads Vault's barrier put and delete counts (every encrypted
// storage write and delete, Vault's own and the plugin's) from its telemetry:
// the dev server keeps Prometheus metrics (prometheus_retention_time 24h).
func (e *benchEnv) barrierOps() (puts, dels float64) {
	c := e.barrierCounts()
	return c.puts, c.dels
}

// barrierCount is Vault's barrier operation counters at one moment.
type barrierCount struct{ puts, dels, gets float64 }

// barrierCounts reads the barrier's put, delete and get counters (a get is
// every storage read that reaches the barrier, Vault's and the plugin's).
func (e *benchEnv) barrierCounts() barrierCount {
	req, _ := http.NewRequest(http.MethodGet, e.v.Addr+"/v1/sys/metrics?format=prometheus", nil)
	req.Header.Set("X-Vault-Token", e.v.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Errorf("sys/metrics: %v", err)
		return barrierCount{}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		e.t.Errorf("sys/metrics: HTTP %d, %v", resp.StatusCode, err)
		return barrierCount{}
	}
	var c barrierCount
	for _, line := range strings.Split(string(b), "\n") {
		for name, dst := range map[string]*float64{"vault_barrier_put_count ": &c.puts, "vault_barrier_delete_count ": &c.dels, "vault_barrier_get_count ": &c.gets} {
			if v, ok := strings.CutPrefix(line, name); ok {
				*dst, _ = strconv.ParseFloat(v, 64)
			}
		}
	}
	return c
}

// settledBarrierCounts reads Vault's barrier counters once they have stopped
// moving (two reads 100 ms apart agree), waiting at most d: work a request
// leaves behind (the plugin deletes its WAL entry after the response) then
// counts in the cell that caused it, not in the next one.
func (e *benchEnv) settledBarrierCounts(d time.Duration) barrierCount {
	c := e.barrierCounts()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		n := e.barrierCounts()
		if n.puts == c.puts && n.dels == c.dels {
			break
		}
		c = n
	}
	return c
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
