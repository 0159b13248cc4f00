package bench

// The external-plugin floor (cmd/floorplugin): what an engine built on the
// same SDK and served the same way pays before any work of its own. Its cells
// run beside the KV floor and the issue, on the same Vault, so the report can
// say which part of an issue's cost no engine of this shape can avoid.

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/vault-plugin-openai/vault-plugin-openai/e2e/harness"
	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// The floor plugin's ops, catalog name and mount.
const (
	// opFloorHop: a read the plugin answers from memory.
	opFloorHop = "plugin_hop"
	// opFloorLease: the same answer on a lease (Vault registers it).
	opFloorLease = "plugin_lease"
	// opFloorWrites: two storage writes, then the lease: a crash-safe
	// issue's shape with no external call.
	opFloorWrites = "plugin_lease_writes"
	// opFloorCall: the same with one upstream create between the writes
	// (plain net/http to the fake): the least an issue can be.
	opFloorCall = "plugin_lease_writes_call"

	floorPluginName = "openai-bench-floor"
	floorMount      = "floor"
)

// floorPaths maps each floor op to the path it reads.
var floorPaths = map[string]string{opFloorHop: "hop", opFloorLease: "lease", opFloorWrites: "lease-writes", opFloorCall: "lease-writes-call"}

// floorCells reads one of the floor plugin's paths at 0 ms upstream.
func floorCells(op string, clients ...int) cellDef {
	path := floorPaths[op]
	var calls map[fakeopenai.Op]int
	if op == opFloorCall {
		calls = map[fakeopenai.Op]int{fakeopenai.OpCreateServiceAccount: 1}
	}
	return cellDef{Op: op, Latencies: []time.Duration{0}, Clients: clients, Upstream: calls, Target: func(e *benchEnv) loadTarget {
		tg := loadTarget{URL: e.v.Addr + "/v1/", Path: floorMount + "/" + path, Method: "GET", VaultToken: e.v.Token,
			Expect: []string{`"value":"floor"`}}
		if op != opFloorHop {
			tg.Expect = append(tg.Expect, `"lease_id":"`+floorMount+`/`+path+`/`)
		}
		return tg
	}}
}

// isFloorOp reports whether op is one of the floor plugin's.
func isFloorOp(op string) bool {
	_, ok := floorPaths[op]
	return ok
}

// hasFloorCells reports whether cfg measures the floor plugin.
func hasFloorCells(cfg benchConfig) bool {
	for _, d := range cfg.Cells {
		if isFloorOp(d.Op) {
			return true
		}
	}
	return false
}

// floorPluginDir is a plugin directory holding the engine (the suite's
// build, byte for byte, so its catalog SHA-256 holds) and the floor plugin.
func floorPluginDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	harness.CopyExecutable(t, harness.Suite.PluginPath, filepath.Join(dir, harness.PluginName))
	harness.CopyExecutable(t, benchCommand(t, "floorplugin"), filepath.Join(dir, floorPluginName))
	return dir
}

// mountFloor registers the floor plugin (by SHA-256, from the Vault's plugin
// directory, which must be floorPluginDir's) and mounts it at floor/. Its
// upstream call creates accounts in the benchmark's floor project.
func (e *benchEnv) mountFloor(dir string) {
	e.t.Helper()
	sha, err := harness.FileSHA256(filepath.Join(dir, floorPluginName))
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.v.Client.Sys().RegisterPlugin(&api.RegisterPluginInput{
		Name: floorPluginName, Type: api.PluginTypeSecrets, Command: floorPluginName, SHA256: sha, Version: "v0.0.1",
		Env: []string{
			"FLOOR_UPSTREAM_URL=" + e.f.URL + "/organization/projects/" + benchFloorProject + "/service_accounts",
			"FLOOR_UPSTREAM_AUTHORIZATION=Bearer " + e.f.AdminKey(),
		},
	}); err != nil {
		e.t.Fatalf("registering the floor plugin: %v", err)
	}
	if err := e.v.Client.Sys().Mount(floorMount, &api.MountInput{Type: floorPluginName, Config: api.MountConfigInput{PluginVersion: "v0.0.1"}}); err != nil {
		e.t.Fatalf("mounting the floor plugin: %v", err)
	}
	e.floor = true
}

// floorSection is the report's table of the floor beside the KV write and
// the issue, at each client count the floor was measured at.
func floorSection(rep *benchReport) string {
	if len(rep.Floor) == 0 {
		return ""
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("## The external-plugin floor\n\n")
	w("`bench/cmd/floorplugin` is an engine built on the same SDK and served the same way as this one (multiplexed gRPC over Vault's AutoMTLS), whose paths do nothing of their own: `hop` answers from memory, `lease` answers on a lease, `lease-writes` writes two storage entries one after the other and answers on a lease (a crash-safe issue's shape: an entry before the external call, a record after it), and `lease-writes-call` makes one upstream create at the fake between the two writes (plain `net/http`, keep-alive): the least an issue can be. Same Vault, same load generator, interleaved with the other cells: median (min–max) of the repetitions.\n\n")
	w("| clients | KV write | plugin hop | plugin lease | plugin lease + 2 writes | plugin lease + 2 writes + call | issue | least issue ÷ KV | issue ÷ least issue |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	cellText := func(c cellResult, ok bool) string {
		if !ok {
			return "–"
		}
		return fmt.Sprintf("%.0f/s (%.0f–%.0f), p50 %.2f ms", c.PerSecond, c.PerSecondMin, c.PerSecondMax, c.P50MS)
	}
	ratio := func(a, b cellResult, ok bool) string {
		if !ok || b.PerSecond == 0 || b.P50MS == 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f x /s, %.2f x p50", a.PerSecond/b.PerSecond, a.P50MS/b.P50MS)
	}
	for _, n := range floorClients(rep) {
		kv, okKV := findCell(rep.KVFloor, 0, n)
		hop, okHop := findCell(rep.Floor, 0, n, opFloorHop)
		ls, okLease := findCell(rep.Floor, 0, n, opFloorLease)
		wr, okWr := findCell(rep.Floor, 0, n, opFloorWrites)
		fc, okCall := findCell(rep.Floor, 0, n, opFloorCall)
		is, okIs := findCell(rep.Issue, 0, n)
		w("| %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", n, cellText(kv, okKV), cellText(hop, okHop), cellText(ls, okLease), cellText(wr, okWr),
			cellText(fc, okCall), cellText(is, okIs), ratio(fc, kv, okCall && okKV), ratio(is, fc, okIs && okCall))
	}
	w("\nTargets (a) and (b) compare the issue with a KV write; the floor shows how much of that ratio any engine served this way pays before its own work. Where `least issue ÷ KV` is itself below 0.50 x (per second) or above 4 x (p50), the target is out of reach for an external plugin that makes one upstream call between the two writes crash safety needs, however little else it does; `issue ÷ least issue` is this engine's own share.\n\n")
	return b.String()
}

// floorClients lists the client counts of the floor cells, in run order.
func floorClients(rep *benchReport) []int {
	var out []int
	seen := map[int]bool{}
	for _, c := range rep.Floor {
		if !seen[c.Concurrency] {
			seen[c.Concurrency] = true
			out = append(out, c.Concurrency)
		}
	}
	return out
}
