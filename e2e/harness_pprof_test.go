//go:build e2e && pprof

package e2e

// The benchmark (bench_*_test.go, tag pprof) reads the plugin's heap and CPU
// profiles, so under this tag the suite builds the plugin with its pprof listener
// (cmd/vault-plugin-openai/pprof.go). Every other run tests the plugin as shipped.
const pluginBuildTags = "pprof"
