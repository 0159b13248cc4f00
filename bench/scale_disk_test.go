//go:build scale

package bench

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The scale cells share one disk with everything else on the machine, and a
// Raft node's every write waits for an fsync. Filling 50,000 leases leaves
// hundreds of MB of dirty pages (Raft's BoltDB files, the audit log) that the
// kernel writes back later; on ext4 an fsync can wait behind that writeback
// for seconds. A cell measured right after the big fill would pay for the
// fill, one after the small fill would not. So every cell starts with the
// page cache written back (sync), and a probe measures the disk's own fsync
// latency during the cell: a cell that waited on the disk says so.

// diskState is what the disk did around one cell.
type diskState struct {
	DirtyMBBefore float64 `json:"dirty_mb_before_sync"` // /proc/meminfo Dirty+Writeback
	SyncSeconds   float64 `json:"sync_seconds"`         // the sync that emptied it
	FsyncP50MS    float64 `json:"fsync_p50_ms"`         // the probe's 8 KB write+fdatasync during the cell
	FsyncP99MS    float64 `json:"fsync_p99_ms"`
	FsyncMaxMS    float64 `json:"fsync_max_ms"`
	FsyncOver100  int     `json:"fsync_over_100ms"` // probes slower than 100 ms
}

// settleDisk writes back every dirty page (sync(2)) before a cell and says
// how much there was and how long it took.
func settleDisk() (dirtyMB, seconds float64) {
	dirtyMB = dirtyMBNow()
	t0 := time.Now()
	syscall.Sync()
	return dirtyMB, time.Since(t0).Seconds()
}

// dirtyMBNow is the kernel's dirty and under-writeback page cache in MB.
func dirtyMBNow() float64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	var kb float64
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && (f[0] == "Dirty:" || f[0] == "Writeback:") {
			n, _ := strconv.ParseFloat(f[1], 64)
			kb += n
		}
	}
	return kb / 1024
}

// fsyncProbe writes 8 KB and fdatasyncs it every 50 ms in dir (the Raft
// node's filesystem) until stopped, and reports the latencies. At 20 probes
// a second it adds no load worth counting; its figures are the disk's, not
// Vault's.
type fsyncProbe struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	lat  []float64 // ms
}

func startFsyncProbe(dir string) *fsyncProbe {
	p := &fsyncProbe{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		f, err := os.OpenFile(filepath.Join(dir, "fsync-probe"), os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return
		}
		defer os.Remove(f.Name())
		defer f.Close()
		buf := make([]byte, 8192)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			if _, err := f.WriteAt(buf, int64(i%128)*8192); err != nil {
				return
			}
			t0 := time.Now()
			if err := syscall.Fdatasync(int(f.Fd())); err != nil {
				return
			}
			p.mu.Lock()
			p.lat = append(p.lat, float64(time.Since(t0).Microseconds())/1000)
			p.mu.Unlock()
		}
	}()
	return p
}

// finish stops the probe and fills d's fsync figures.
func (p *fsyncProbe) finish(d *diskState) {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	lat := slices.Clone(p.lat)
	p.mu.Unlock()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(q float64) float64 { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	d.FsyncP50MS, d.FsyncP99MS, d.FsyncMaxMS = at(0.5), at(0.99), lat[len(lat)-1]
	for _, x := range lat {
		if x > 100 {
			d.FsyncOver100++
		}
	}
}

// String is the disk's part of a cell's log line.
func (d diskState) String() string {
	return "disk: " + strconv.FormatFloat(d.DirtyMBBefore, 'f', 0, 64) + " MB dirty, sync " + strconv.FormatFloat(d.SyncSeconds, 'f', 1, 64) +
		" s, fsync p50/p99/max " + strconv.FormatFloat(d.FsyncP50MS, 'f', 1, 64) + "/" + strconv.FormatFloat(d.FsyncP99MS, 'f', 1, 64) + "/" +
		strconv.FormatFloat(d.FsyncMaxMS, 'f', 0, 64) + " ms"
}
