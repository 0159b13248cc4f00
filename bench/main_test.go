// Package bench is the benchmark: the engine driven through a real Vault dev server
// against the in-process fake Admin API with a set upstream latency, next to the two
// floors it cannot beat (a KV v2 write on the same Vault, and a direct SDK call to
// the fake). It uses the e2e suite's harness (e2e/harness) and lives in its own
// module so that gonum/plot, which only throughput.png needs, stays out of the
// plugin's dependencies.
//
// smoke_test.go runs it small (make bench-smoke, part of make test); full_test.go
// (tag bench) runs it at full size into results/ (make bench) and takes CPU
// profiles (make bench-profile). The parts: config_test.go (sizes, the cell
// definitions and result types); the load runner in run_test.go (the phases
// of one run, repetitions and medians), env_test.go (Vault, plugin, fake,
// Vault's storage counters), load_test.go (each measurement) and
// loadgen_test.go, which runs the load generator cmd/loadgen, a separate
// process, for every request load; procstats_test.go (CPU and memory from
// /proc); the report in report_test.go (ratios, targets, bench.md) and
// plot_test.go (throughput.png).
package bench

import (
	"testing"

	"github.com/vault-plugin-openai/vault-plugin-openai/e2e/harness"
)

// TestMain builds the plugin with its pprof listener (tag pprof): the benchmark
// reads the plugin's heap and CPU profiles from it.
func TestMain(m *testing.M) {
	harness.Main(m, "..", harness.Build{Race: raceEnabled, Tags: "pprof"}, nil)
}
