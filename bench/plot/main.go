// Command plot draws bench/results/throughput.png from bench.json: issue
// throughput against clients for each upstream latency, with the KV-write floor
// and, per latency, the ideal (Vault's own request and write plus one upstream
// call, back to back).
//
// It lives in its own module (bench/go.mod) so that gonum/plot, which only this
// picture needs, stays out of the plugin's dependencies. The benchmark itself
// (e2e/bench_*_test.go) writes bench.json and bench.md; `make bench` and
// `make bench-smoke` run this afterwards.
//
// Usage: go run ./plot DIR   (reads DIR/bench.json, writes DIR/throughput.png)
package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// report is the part of bench.json the picture needs (field names as the
// benchmark writes them).
type report struct {
	Config struct {
		Concurrency []int           `json:"concurrency"`
		Latencies   []time.Duration `json:"latencies"`
	} `json:"config"`
	Machine struct {
		CPUs int `json:"cpus"`
	} `json:"machine"`
	Issue   []cell `json:"issue"`
	KVFloor []cell `json:"kv_write_floor"`
	Ratios  []struct {
		LatencyMS   int     `json:"upstream_latency_ms"`
		Concurrency int     `json:"concurrency"`
		IdealPerSec float64 `json:"ideal_per_second"`
	} `json:"ratios"`
}

type cell struct {
	LatencyMS   int     `json:"upstream_latency_ms"`
	Concurrency int     `json:"concurrency"`
	PerSecond   float64 `json:"per_second"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: plot DIR  (reads DIR/bench.json, writes DIR/throughput.png)")
		os.Exit(2)
	}
	dir := os.Args[1]
	b, err := os.ReadFile(filepath.Join(dir, "bench.json"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "plot:", err)
		os.Exit(1)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		fmt.Fprintln(os.Stderr, "plot: bench.json:", err)
		os.Exit(1)
	}
	if len(rep.Issue) == 0 {
		fmt.Fprintln(os.Stderr, "plot: bench.json has no issue measurements")
		os.Exit(1)
	}
	out := filepath.Join(dir, "throughput.png")
	if err := plotThroughput(&rep, out); err != nil {
		fmt.Fprintln(os.Stderr, "plot:", err)
		os.Exit(1)
	}
	fmt.Println("wrote", out)
}

func plotThroughput(rep *report, path string) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Issue throughput vs clients (%d CPUs, Vault dev server, fake Admin API)", rep.Machine.CPUs)
	p.X.Label.Text = "concurrent clients"
	p.Y.Label.Text = "requests per second"
	p.X.Scale = plot.LogScale{}
	p.Y.Scale = plot.LogScale{}
	var ticks []plot.Tick
	for _, c := range rep.Config.Concurrency {
		ticks = append(ticks, plot.Tick{Value: float64(c), Label: strconv.Itoa(c)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	// Bottom right is empty: the 100 ms line starts low on the left.
	p.Legend.Top = false
	p.Legend.Left = false

	var series []any
	for _, lat := range rep.Config.Latencies {
		ms := int(lat.Milliseconds())
		var issue, ideal plotter.XYs
		for _, c := range rep.Issue {
			if c.LatencyMS == ms {
				issue = append(issue, plotter.XY{X: float64(c.Concurrency), Y: math.Max(c.PerSecond, 1e-3)})
			}
		}
		for _, r := range rep.Ratios {
			if r.LatencyMS == ms {
				ideal = append(ideal, plotter.XY{X: float64(r.Concurrency), Y: r.IdealPerSec})
			}
		}
		series = append(series, fmt.Sprintf("issue, %d ms upstream", ms), issue)
		if len(ideal) > 0 {
			series = append(series, fmt.Sprintf("ideal, %d ms upstream", ms), ideal)
		}
	}
	var kv plotter.XYs
	for _, c := range rep.KVFloor {
		kv = append(kv, plotter.XY{X: float64(c.Concurrency), Y: c.PerSecond})
	}
	series = append(series, "KV v2 write (Vault floor)", kv)
	if err := plotutil.AddLinePoints(p, series...); err != nil {
		return err
	}
	return p.Save(9*vg.Inch, 5.5*vg.Inch, path)
}
