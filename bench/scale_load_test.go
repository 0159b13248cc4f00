//go:build scale

package bench

// The scale benchmark's load phases on one cluster: filling live leases (and
// tokens), issue cells at a number of live leases, the sweep, revocation by
// prefix, and failover. Every request load goes through the load generator.

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

const scaleRole = "scale"

// fillChunk is one stretch of a fill: the issue rate at the fill's clients
// with LiveBefore..LiveAfter live leases (or tokens).
type fillChunk struct {
	Kind       string  `json:"kind"` // issue or token
	LiveBefore int     `json:"live_before"`
	LiveAfter  int     `json:"live_after"`
	Seconds    float64 `json:"seconds"`
	PerSecond  float64 `json:"per_second"`
	P50MS      float64 `json:"p50_ms"`
	Busy       float64 `json:"machine_busy"`
}

// scaleCell is one issue cell at a checkpoint.
type scaleCell struct {
	Op          string    `json:"op"` // issue, or kv_write: the same cell as a KV v2 write (Vault and the disk alone)
	Checkpoint  int       `json:"checkpoint"`
	LiveAtStart int       `json:"live_at_start"`
	LatencyMS   int       `json:"upstream_latency_ms"`
	Clients     int       `json:"clients"`
	Rep         int       `json:"rep"`
	Requests    int       `json:"requests"`
	Errors      int       `json:"errors"`
	PerSecond   float64   `json:"per_second"`
	P50MS       float64   `json:"p50_ms"`
	P99MS       float64   `json:"p99_ms"`
	VaultCPUMS  float64   `json:"vault_cpu_ms_per_issue"`
	PluginCPUMS float64   `json:"plugin_cpu_ms_per_issue"`
	Busy        float64   `json:"machine_busy"`
	Disk        diskState `json:"disk"`
}

func (c *scaleCluster) issueTarget() loadTarget {
	return loadTarget{URL: c.addrs[c.leader()-1] + "/v1/", Path: "openai/creds/" + scaleRole, Method: "GET", VaultToken: c.token,
		Expect: []string{`"lease_id":"openai/creds/` + scaleRole + `/`, `"api_key":"sk-`}}
}

func (c *scaleCluster) tokenTarget() loadTarget {
	return loadTarget{URL: c.addrs[c.leader()-1] + "/v1/", Path: "auth/token/create-orphan", Method: "POST", VaultToken: c.token,
		Body: `{"ttl":"1h","policies":["default"]}`, Expect: []string{`"client_token":"`}}
}

// fill issues (kind issue) or creates tokens (kind token) from *live up to
// target in chunks of chunk, at clients, recording each chunk's rate.
func (c *scaleCluster) fill(kind string, live *int, target, chunk, clients int, logf func(string, ...any)) []fillChunk {
	c.t.Helper()
	var out []fillChunk
	for *live < target {
		n := min(chunk, target-*live)
		cl := min(clients, n)
		tg := c.issueTarget()
		if kind == "token" {
			tg = c.tokenTarget()
		}
		b0, _, t0 := machineTicks()
		start := time.Now()
		// The warm-up sends one request per client; the chunk's rate
		// counts it too (a small chunk may be all warm-up).
		res := runLoad(c.t, tg, cl, n-cl, 10*time.Minute, nil, nil)
		wall := time.Since(start).Seconds()
		b1, _, t1 := machineTicks()
		if res.Errors > 0 {
			c.t.Fatalf("filling %s %d..%d: %d failed, first: %s", kind, *live, *live+n, res.Errors, res.FirstError)
		}
		ch := fillChunk{Kind: kind, LiveBefore: *live, LiveAfter: *live + n, Seconds: wall, PerSecond: float64(n) / wall, P50MS: res.P50MS}
		if t1 > t0 {
			ch.Busy = (b1 - b0) / (t1 - t0)
		}
		*live += n
		out = append(out, ch)
		logf("fill %s %6d -> %6d: %.0f/s at %d clients (p50 %.1f ms), machine busy %.0f%%", kind, ch.LiveBefore, ch.LiveAfter, ch.PerSecond, cl, ch.P50MS, 100*ch.Busy)
	}
	if kind == "issue" {
		if n := len(c.fake.LiveAccounts()); n != *live {
			c.t.Fatalf("after issuing %d keys the fake holds %d accounts", *live, n)
		}
	}
	return out
}

// kvTarget is a KV v2 write to a fresh key on the active node: the control
// cell, Vault's own request and Raft write with no plugin and no lease.
func (c *scaleCluster) kvTarget() loadTarget {
	return loadTarget{URL: c.addrs[c.leader()-1] + "/v1/", Path: "kv/data/s/{i}", Method: "POST", Body: `{"data":{"v":"x"}}`,
		VaultToken: c.token, Expect: []string{`"version":`}}
}

// issueCell runs one issue cell (upstream latency lat, clients) through the
// load generator, with Vault's and the plugin's CPU per issue; op kv_write
// runs the same cell as KV v2 writes. The page cache is written back first
// and the disk's fsync latency probed throughout (scale_disk_test.go).
func (c *scaleCluster) issueCell(cfg scaleConfig, op string, checkpoint int, live *int, lat time.Duration, clients, rep int) scaleCell {
	c.t.Helper()
	c.fake.SetFaults(fakeopenai.Faults{Latency: lat})
	defer c.fake.SetFaults(fakeopenai.Faults{})
	tg := c.issueTarget()
	if op == opKV {
		tg = c.kvTarget()
	}
	var disk diskState
	disk.DirtyMBBefore, disk.SyncSeconds = settleDisk()
	probe := startFsyncProbe(c.dir)
	vpid := c.vaultPID(c.leader())
	cpu := func() (v, p float64) {
		v = procCPU(vpid)
		for _, pp := range pluginPIDs(vpid) {
			p += procCPU(pp)
		}
		return v, p
	}
	var v0, p0, v1, p1, b0, b1, t0, t1 float64
	res := runLoad(c.t, tg, clients, cfg.CellRequests, cfg.CellDuration,
		func() { v0, p0 = cpu(); b0, _, t0 = machineTicks() },
		func() { v1, p1 = cpu(); b1, _, t1 = machineTicks() })
	probe.finish(&disk)
	cell := scaleCell{Op: op, Disk: disk, Checkpoint: checkpoint, LiveAtStart: *live + clients, LatencyMS: int(lat.Milliseconds()), Clients: clients, Rep: rep,
		Requests: res.Requests, Errors: res.Errors, PerSecond: res.PerSecond, P50MS: res.P50MS, P99MS: res.P99MS}
	if r := float64(res.Requests); r > 0 {
		cell.VaultCPUMS, cell.PluginCPUMS = 1000*(v1-v0)/r, 1000*(p1-p0)/r
	}
	if t1 > t0 {
		cell.Busy = (b1 - b0) / (t1 - t0)
	}
	if res.Errors > 0 {
		c.t.Errorf("%s at %s, %d clients, %d live: %d of %d failed, first: %s", op, lat, clients, *live, res.Errors, res.Requests, res.FirstError)
	}
	if op == opKV {
		return cell
	}
	*live += res.Requests + clients - res.Errors
	return cell
}

// tidyResult is one run of the engine's sweep (openai/tidy) over every
// account record: what it read, listed and deleted, and the upstream calls.
type tidyResult struct {
	Accounts      int            `json:"accounts"`
	Seconds       float64        `json:"seconds"`
	EngineMS      int64          `json:"engine_duration_ms"`
	Records       int            `json:"records"`
	Deleted       int            `json:"deleted"`
	Projects      int            `json:"projects_listed"`
	UpstreamCalls map[string]int `json:"upstream_calls"`
	Error         string         `json:"error,omitempty"`
}

func (c *scaleCluster) tidy(live int) tidyResult {
	c.t.Helper()
	r := tidyResult{Accounts: live, UpstreamCalls: map[string]int{}}
	before := c.fake.Calls()
	t0 := time.Now()
	resp, err := c.client(c.leader()).Logical().Write("openai/tidy", nil)
	r.Seconds = time.Since(t0).Seconds()
	for op, n := range callDelta(before, c.fake.Calls()) {
		r.UpstreamCalls[string(op)] = n
	}
	if err != nil {
		r.Error = err.Error()
		c.t.Errorf("openai/tidy with %d accounts: %v", live, err)
		return r
	}
	num := func(k string) int64 {
		n, _ := resp.Data[k].(interface{ Int64() (int64, error) })
		if n == nil {
			return 0
		}
		v, _ := n.Int64()
		return v
	}
	r.EngineMS, r.Records, r.Deleted, r.Projects = num("duration_ms"), int(num("records")), int(num("deleted")), int(num("projects_listed"))
	if r.Records != live || r.Deleted != 0 {
		c.t.Errorf("tidy with %d live accounts: %d records examined, %d deleted (want %d, 0)", live, r.Records, r.Deleted, live)
	}
	return r
}

// revokeResult is revoke-prefix (sync=false) of every lease of the role.
type revokeResult struct {
	Leases            int     `json:"leases"`
	SecondsToZero     float64 `json:"seconds_to_zero_accounts"`
	SecondsToNoLeases float64 `json:"seconds_to_no_vault_leases"`
	DeleteCalls       int     `json:"delete_calls"`
	MaxInFlight       int     `json:"upstream_deletes_in_flight_max"`
	Busy              float64 `json:"machine_busy"`
	// Errors of the revoke-prefix requests (Vault's request limit).
	Errors []string `json:"errors,omitempty"`
}

func (c *scaleCluster) revokeAll(live int, logf func(string, ...any)) revokeResult {
	c.t.Helper()
	r := revokeResult{Leases: live}
	cl := c.client(c.leader())
	before := c.fake.Calls()[fakeopenai.OpDeleteServiceAccount]
	c.gauge.maxInFlight.Store(0)
	b0, _, tk0 := machineTicks()
	t0 := time.Now()
	// With sync=false Vault still marks every lease in the request, one
	// after another; past its 90s request limit the request fails with the
	// leases marked so far handed on. Asking again continues (counted).
	revoke := func() error {
		_, err := cl.Logical().Write("sys/leases/revoke-prefix/openai/creds/"+scaleRole, map[string]any{"sync": false})
		return err
	}
	if err := revoke(); err != nil {
		r.Errors = append(r.Errors, err.Error())
		logf("revoke-prefix after %.0fs: %v", time.Since(t0).Seconds(), err)
	}
	lastLog := time.Now()
	for n := len(c.fake.LiveAccounts()); n > 0; n = len(c.fake.LiveAccounts()) {
		if len(r.Errors) > 0 && len(r.Errors) < 10 && time.Since(lastLog) > 15*time.Second {
			if err := revoke(); err != nil {
				r.Errors = append(r.Errors, err.Error())
				logf("revoke-prefix again after %.0fs: %v", time.Since(t0).Seconds(), err)
			}
		}
		if time.Since(t0) > 15*time.Minute {
			c.t.Fatalf("%d accounts still live 15 minutes after revoke-prefix", n)
		}
		if time.Since(lastLog) > 15*time.Second {
			logf("revoke-prefix: %d of %d accounts left after %.0fs", n, live, time.Since(t0).Seconds())
			lastLog = time.Now()
		}
		time.Sleep(250 * time.Millisecond)
	}
	r.SecondsToZero = time.Since(t0).Seconds()
	b1, _, tk1 := machineTicks()
	if tk1 > tk0 {
		r.Busy = (b1 - b0) / (tk1 - tk0)
	}
	for {
		s, err := cl.Logical().List("sys/leases/lookup/openai/creds/" + scaleRole + "/")
		if err == nil && (s == nil || len(asList(s.Data["keys"])) == 0) {
			break
		}
		if time.Since(t0) > 16*time.Minute {
			c.t.Fatalf("Vault still lists leases under openai/creds/%s after its accounts were deleted (%v)", scaleRole, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	r.SecondsToNoLeases = time.Since(t0).Seconds()
	r.DeleteCalls = c.fake.Calls()[fakeopenai.OpDeleteServiceAccount] - before
	r.MaxInFlight = int(c.gauge.maxInFlight.Load())
	if r.DeleteCalls != live {
		c.t.Errorf("%d delete calls revoking %d leases, want exactly one each", r.DeleteCalls, live)
	}
	return r
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// failoverResult is a kill -9 of the active node (or, on one node, a kill
// and restart) with Leases leases or Tokens tokens to restore, timed from
// the kill.
type failoverResult struct {
	Workload string `json:"workload"` // "openai leases", "tokens" or "none"
	Leases   int    `json:"leases"`
	Tokens   int    `json:"tokens"`
	Nodes    int    `json:"nodes"`
	// Seconds from the kill: a node answers as active, the first
	// successful new issue (or token create), the first renewal of a lease
	// (or token) from before the kill, and the new active node's log line
	// "lease restore complete" (every lease loaded by the expiration
	// manager; -1 if not seen).
	ActiveSeconds  float64 `json:"active_seconds"`
	IssueSeconds   float64 `json:"first_issue_seconds"`
	RenewSeconds   float64 `json:"first_renewal_seconds"`
	RestoreSeconds float64 `json:"restore_complete_seconds"`
	// How long restoring took on the new active node, by its log (from
	// "restoring leases" to "lease restore complete").
	RestoreLogSeconds float64 `json:"restore_log_seconds"`
	RejoinSeconds     float64 `json:"rejoin_seconds"` // restart of the killed node until it is a standby again (cluster)
	NewLeader         int     `json:"new_leader"`
}

// failover kills the active node and times the way back; probe makes one
// new request (an issue, a token) through a client and renew renews
// something made before the kill. On one node the killed node is restarted
// at once (there is no other); on more it is restarted (rejoins) after.
func (c *scaleCluster) failover(workload string, leases, tokens int, probe, renew func(*api.Client) error) failoverResult {
	c.t.Helper()
	r := failoverResult{Workload: workload, Leases: leases, Tokens: tokens, Nodes: c.nodes, RestoreSeconds: -1, RestoreLogSeconds: -1}
	old := c.leader()
	t0 := time.Now()
	c.script("kill", fmt.Sprint(old))
	if c.nodes == 1 {
		c.script("restart", fmt.Sprint(old))
		c.readEnv()
	}
	var others []int
	for i := 1; i <= c.nodes; i++ {
		if i != old || c.nodes == 1 {
			others = append(others, i)
		}
	}
	quick := func(i int) *api.Client {
		cl := c.client(i)
		cl.SetClientTimeout(5 * time.Second)
		return cl
	}
	deadline := t0.Add(5 * time.Minute)
	poll := func(what string, ok func() bool) float64 {
		for !ok() {
			if time.Now().After(deadline) {
				c.t.Fatalf("failover (%s): no %s within 5 minutes of the kill", workload, what)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return time.Since(t0).Seconds()
	}
	r.ActiveSeconds = poll("active node", func() bool {
		for _, i := range others {
			if l, err := quick(i).Sys().Leader(); err == nil && l.IsSelf {
				r.NewLeader = i
				return true
			}
		}
		return false
	})
	// The probes wait as long as a client would (Vault's own 90s request
	// limit): a client that gives up early cancels the request, and with
	// it work the first request after a start does (the engine loads its
	// account records on the first issue), which would then start over.
	patient := func(i int) *api.Client {
		cl := c.client(i)
		cl.SetClientTimeout(90 * time.Second)
		return cl
	}
	r.IssueSeconds = poll("new issue", func() bool { return probe(patient(r.NewLeader)) == nil })
	r.RenewSeconds = poll("renewal", func() bool { return renew(patient(r.NewLeader)) == nil })
	// The new active node logs when its expiration manager has loaded
	// every lease; until then leases load on first use.
	logPath := c.nodeLog(r.NewLeader)
	for time.Now().Before(deadline) {
		start, done := restoreTimes(readFile(logPath), t0)
		if !done.IsZero() {
			r.RestoreSeconds = done.Sub(t0).Seconds()
			if !start.IsZero() {
				r.RestoreLogSeconds = done.Sub(start).Seconds()
			}
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if r.RestoreSeconds < 0 {
		c.t.Errorf("failover (%s): no \"lease restore complete\" in %s", workload, logPath)
	}
	if c.nodes > 1 {
		t1 := time.Now()
		c.script("restart", fmt.Sprint(old))
		c.readEnv()
		for {
			if h, err := quick(old).Sys().Health(); err == nil && h.Standby && !h.Sealed {
				break
			}
			if time.Since(t1) > 3*time.Minute {
				c.t.Fatalf("node %d not a standby 3 minutes after its restart", old)
			}
			time.Sleep(100 * time.Millisecond)
		}
		r.RejoinSeconds = time.Since(t1).Seconds()
	}
	return r
}

// restoreTimes finds, in a Vault log, the first "restoring leases" and
// "lease restore complete" lines stamped after since.
func restoreTimes(log string, since time.Time) (start, done time.Time) {
	for _, line := range strings.Split(log, "\n") {
		ts, _, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil || at.Before(since.Add(-time.Second)) {
			continue
		}
		switch {
		case strings.Contains(line, "restoring leases") && start.IsZero():
			start = at
		case strings.Contains(line, "lease restore complete") && done.IsZero():
			done = at
		}
	}
	return start, done
}
