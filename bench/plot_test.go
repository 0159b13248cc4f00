package bench

import (
	"fmt"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// plotThroughput draws issue throughput against clients for each upstream
// latency, with the KV-write floor and, per latency, the ideal (Vault's own
// request and write plus one upstream call, back to back).
func plotThroughput(rep *benchReport, path string) error {
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
