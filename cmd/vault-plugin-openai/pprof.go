//go:build pprof

// The pprof listener is a profiling aid for the benchmark, not part of the
// engine: only a plugin built with `-tags pprof` has it. A default build
// ignores OPENAI_PLUGIN_PPROF_ADDR entirely.

package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"

	"github.com/hashicorp/go-hclog"
)

// pprofAddrEnv, set at plugin registration (`vault plugin register -env
// OPENAI_PLUGIN_PPROF_ADDR=127.0.0.1:6061 ...`), serves net/http/pprof on that
// loopback address, so the plugin process can be profiled inside a real Vault
// (the benchmark builds the plugin with `-tags pprof` and uses it), plus /debug/memstats: the heap after a forced GC,
// read without symbolising stacks, which would page in much of the binary
// and inflate the RSS being measured. Unset, nothing listens.
const pprofAddrEnv = "OPENAI_PLUGIN_PPROF_ADDR"

func init() {
	addr := os.Getenv(pprofAddrEnv)
	if addr == "" {
		return
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "vault-plugin-openai.pprof"})
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		// Profiles reveal internals; never serve them beyond this machine.
		log.Error("ignoring "+pprofAddrEnv+": not a loopback ip:port", "addr", addr)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/memstats", func(w http.ResponseWriter, _ *http.Request) {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]uint64{
			"heap_alloc": m.HeapAlloc, "heap_inuse": m.HeapInuse, "heap_released": m.HeapReleased,
			"stack_inuse": m.StackInuse, "sys": m.Sys,
		})
	})
	l, err := net.Listen("tcp", addr)
	if err != nil {
		// A reloaded plugin may start before its predecessor let go of the port.
		log.Warn("pprof listener not started", "addr", addr, "error", err)
		return
	}
	go func() { _ = http.Serve(l, mux) }()
}
