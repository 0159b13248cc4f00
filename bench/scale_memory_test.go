//go:build scale

package bench

// Memory and storage at a number of live leases: Vault's and the plugin's RSS
// and Go heap, and the Raft directory on disk.

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// memPoint is one reading of memory and storage.
type memPoint struct {
	LiveLeases int `json:"live_leases"` // accounts live at the fake = leases under openai/
	Tokens     int `json:"tokens"`      // tokens with a TTL created by the token workload
	// The active node's Vault: VmRSS and RssAnon (/proc), the Go heap in
	// use after a forced GC (sys/pprof/heap?gc=1, its MemStats), and the
	// heap Vault reports itself (sys/metrics vault.runtime.alloc_bytes,
	// sampled every second, GC or not) with its runtime's sys_bytes.
	VaultRSSMB     float64 `json:"vault_rss_mb"`
	VaultAnonMB    float64 `json:"vault_rss_anon_mb"`
	VaultHeapGCMB  float64 `json:"vault_heap_after_gc_mb"`
	VaultAllocMB   float64 `json:"vault_runtime_alloc_mb"`
	VaultSysMB     float64 `json:"vault_runtime_sys_mb"`
	StandbyRSSMB   float64 `json:"standby_rss_mb,omitempty"` // largest VmRSS among the standbys
	PluginRSSMB    float64 `json:"plugin_rss_mb"`
	PluginHeapGCMB float64 `json:"plugin_heap_after_gc_mb"` // its pprof listener's /debug/memstats
	// Raft storage on disk: the active node's directory (raft.db, the
	// log store, and vault.db, the FSM), and the largest of all nodes'.
	RaftMB    float64 `json:"raft_mb"`
	RaftMaxMB float64 `json:"raft_max_mb"`
}

// measureMemory reads every figure of memPoint with live leases and tokens.
func (c *scaleCluster) measureMemory(live, tokens int) memPoint {
	c.t.Helper()
	act := c.leader()
	p := memPoint{LiveLeases: live, Tokens: tokens}
	vpid := c.vaultPID(act)
	// RSS first: the heap profile below pages in more of Vault's binary.
	m := procMem([]int{vpid})
	p.VaultRSSMB, p.VaultAnonMB = m["VmRSS"], m["RssAnon"]
	p.PluginRSSMB, _ = procMemMB(pluginPIDs(vpid))
	for i := 1; i <= c.nodes; i++ {
		p.RaftMaxMB = max(p.RaftMaxMB, dirMB(c.raftDir(i)))
		if i == act {
			p.RaftMB = dirMB(c.raftDir(i))
		} else if pid := c.vaultPID(i); pid != 0 {
			r, _ := procMemMB([]int{pid})
			p.StandbyRSSMB = max(p.StandbyRSSMB, r)
		}
	}
	p.VaultAllocMB, p.VaultSysMB = c.vaultRuntime(act)
	p.VaultHeapGCMB = c.vaultHeapAfterGC(act)
	p.PluginHeapGCMB = (&benchEnv{t: c.t, pprof: c.pprof}).heapMB()
	return p
}

// vaultRuntime reads the runtime gauges of node i's own telemetry
// (sys/metrics, the in-memory sink every Vault server keeps).
func (c *scaleCluster) vaultRuntime(i int) (allocMB, sysMB float64) {
	c.t.Helper()
	var m struct {
		Gauges []struct {
			Name  string  `json:"Name"`
			Value float64 `json:"Value"`
		} `json:"Gauges"`
	}
	if err := c.vaultGet(i, "/v1/sys/metrics", func(r io.Reader) error { return json.NewDecoder(r).Decode(&m) }); err != nil {
		c.t.Errorf("node %d sys/metrics: %v", i, err)
		return 0, 0
	}
	for _, g := range m.Gauges {
		switch g.Name {
		case "vault.runtime.alloc_bytes":
			allocMB = g.Value / (1 << 20)
		case "vault.runtime.sys_bytes":
			sysMB = g.Value / (1 << 20)
		}
	}
	return allocMB, sysMB
}

// vaultHeapAfterGC is node i's HeapAlloc right after a GC: the legacy text
// form of its heap profile (sys/pprof/heap?gc=1&debug=1) ends with the
// runtime's MemStats.
func (c *scaleCluster) vaultHeapAfterGC(i int) float64 {
	c.t.Helper()
	var heap float64
	err := c.vaultGet(i, "/v1/sys/pprof/heap?gc=1&debug=1", func(r io.Reader) error {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "# HeapAlloc = "); ok {
				n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				heap = n / (1 << 20)
				return err
			}
		}
		return sc.Err()
	})
	if err != nil {
		c.t.Errorf("node %d heap profile: %v", i, err)
	}
	return heap
}

func (c *scaleCluster) vaultGet(i int, path string, read func(io.Reader) error) error {
	req, _ := http.NewRequest(http.MethodGet, c.addrs[i-1]+path, nil)
	req.Header.Set("X-Vault-Token", c.token)
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return &httpStatusError{resp.StatusCode, string(b)}
	}
	return read(resp.Body)
}

type httpStatusError struct {
	code int
	body string
}

func (e *httpStatusError) Error() string { return "HTTP " + strconv.Itoa(e.code) + ": " + e.body }
