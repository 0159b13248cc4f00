package bench

// Process statistics: CPU and memory of Vault, the plugin and this process from
// /proc, and the machine the run happened on.

import (
	"github.com/vault-plugin-openai/vault-plugin-openai/e2e/harness"

	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// cpuUse is CPU seconds spent per process during a phase, and the share of
// the machine (all cores) they add up to.
type cpuUse struct {
	VaultSec  float64 `json:"vault_s"`
	PluginSec float64 `json:"plugin_s"`
	// BenchSec is the test process: it serves the fake (in-process) and
	// polls; the load comes from the load generator, LoadgenSec.
	BenchSec   float64 `json:"bench_s"`
	LoadgenSec float64 `json:"loadgen_s"`
	Machine    float64 `json:"machine_share"` // the four above ÷ (wall × CPUs)
	// Busy is the whole machine's busy share (/proc/stat), so CPU taken by
	// anything else running at the time shows as Busy − Machine.
	Busy float64 `json:"machine_busy"`
	// Steal is the share the hypervisor gave to other guests: on a shared
	// host it slows every figure of the phase alike.
	Steal float64 `json:"machine_steal"`
}

type cpuSnap struct {
	vault, plugin, self float64
	busy, steal, total  float64
}

// cpuSnapshot reads the CPU of Vault, of this environment's plugin process
// and of this process, and the machine's ticks.
func (e *benchEnv) cpuSnapshot() cpuSnap {
	s := cpuSnap{vault: procCPU(e.v.PID()), self: procCPU(os.Getpid())}
	for _, p := range e.pluginPIDs() {
		s.plugin += procCPU(p)
	}
	// The floor plugin (floor_test.go) is idle outside its own cells, and
	// the engine outside the issue cells: the plugin column is whichever
	// one served the cell.
	if e.floor {
		for _, p := range e.v.PluginPIDsNamed(floorPluginName) {
			s.plugin += procCPU(p)
		}
	}
	s.busy, s.steal, s.total = machineTicks()
	return s
}

// since is the CPU used from b to s over wall; loadgen is the load
// generator's own CPU seconds over the same span (0 if none ran).
func (s cpuSnap) since(b cpuSnap, wall time.Duration, loadgen float64) cpuUse {
	u := cpuUse{VaultSec: s.vault - b.vault, PluginSec: s.plugin - b.plugin, BenchSec: s.self - b.self, LoadgenSec: loadgen}
	u.Machine = (u.VaultSec + u.PluginSec + u.BenchSec + u.LoadgenSec) / (wall.Seconds() * float64(runtime.NumCPU()))
	if s.total > b.total {
		u.Busy = (s.busy - b.busy) / (s.total - b.total)
		u.Steal = (s.steal - b.steal) / (s.total - b.total)
	}
	return u
}

// machineTicks reads the aggregate "cpu" line of /proc/stat: busy ticks,
// ticks stolen by the hypervisor, and all ticks.
func machineTicks() (busy, steal, total float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	for i, x := range f[1:] {
		n, _ := strconv.ParseFloat(x, 64)
		if i >= 8 { // guest time is already counted in user
			break
		}
		total += n
		switch i {
		case 3, 4: // idle, iowait
		case 7:
			steal += n
		default:
			busy += n
		}
	}
	return busy, steal, total
}

// procCPU is user+system CPU seconds of pid (/proc/<pid>/stat, USER_HZ 100).
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100
}

// procMemMB returns the largest VmRSS and VmHWM among pids, in MiB.
func procMemMB(pids []int) (rss, hwm float64) {
	m := procMem(pids)
	return m["VmRSS"], m["VmHWM"]
}

// procMem returns the largest of each memory line of /proc/<pid>/status
// (VmRSS, VmHWM, RssAnon, RssFile) among pids, in MiB.
func procMem(pids []int) map[string]float64 {
	out := map[string]float64{}
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			k, val, ok := strings.Cut(line, ":")
			if !ok || (k != "VmRSS" && k != "VmHWM" && k != "RssAnon" && k != "RssFile") {
				continue
			}
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 64)
			out[k] = max(out[k], kb/1024)
		}
	}
	return out
}

// busyOver is the machine's busy share over the next d.
func busyOver(d time.Duration) float64 {
	b0, _, t0 := machineTicks()
	time.Sleep(d)
	if b1, _, t1 := machineTicks(); t1 > t0 {
		return (b1 - b0) / (t1 - t0)
	}
	return 0
}

func machine() machineInfo {
	m := machineInfo{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Plugin: harness.Suite.Version, PluginRace: raceEnabled}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, val, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(val)
				break
			}
		}
	}
	return m
}
