//go:build cluster

// Package cluster proves the engine on a Vault HA cluster on integrated (Raft)
// storage: clusters started through scripts/cluster.sh (harness.StartCluster,
// e2e/harness/cluster.go), the real Vault binary on loopback, the engine talking
// to the test's in-process fake. Run it with `make test-cluster`; it is behind the
// `cluster` build tag so `make test` neither runs nor counts it.
//
// Writing a test here: f := harness.NewFake(t), then c := harness.StartCluster(t,
// f, opts) (mount openai/, role "demo", root token in every c.Nodes[i].Client);
// c.Leader/WaitLeader/Active/Standby find nodes, c.Kill(i) is kill -9 of node i
// and its plugins, c.Restart(i) brings it back as a standby. Cluster start takes
// ~30s (autopilot promotes nodes to voters after its 10s stabilization time), so
// tests start one cluster each and do not run in parallel: two clusters on two
// shared cores make elections slow enough to blur the timings they measure.
package cluster

import (
	"testing"

	"github.com/vault-plugin-openai/vault-plugin-openai/e2e/harness"
)

func TestMain(m *testing.M) {
	// As in e2e: a race-enabled test binary builds a race-enabled plugin (a race
	// report in any node's log fails the test), with the crash points a test can
	// stop the plugin at (OPENAI_PLUGIN_CRASHPOINT in ClusterOptions.Env).
	harness.Main(m, "../..", harness.Build{Race: raceEnabled, Tags: "crashpoints"}, nil)
}
