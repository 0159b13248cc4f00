//go:build e2e && !pprof

package e2e

// Without the pprof tag the suite tests the plugin as shipped: no pprof listener.
const pluginBuildTags = ""
