package bench

import (
	"fmt"
	"math"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// rangeXYs is a series of medians with their min–max range as error bars.
type rangeXYs struct {
	plotter.XYs
	plotter.YErrors
}

func rangeSeries(cells []cellResult, keep func(cellResult) bool) rangeXYs {
	var r rangeXYs
	for _, c := range cells {
		if !keep(c) {
			continue
		}
		y := math.Max(c.PerSecond, 1e-3)
		r.XYs = append(r.XYs, plotter.XY{X: float64(c.Concurrency), Y: y})
		r.YErrors = append(r.YErrors, struct{ Low, High float64 }{Low: y - math.Max(c.PerSecondMin, 1e-3), High: math.Max(c.PerSecondMax, 1e-3) - y})
	}
	return r
}

// plotThroughput draws issue throughput against clients for each upstream
// latency (medians over the repetitions, with their range as error bars),
// with the KV-write floor and, per latency, the ideal (Vault's own request
// and write plus one upstream call, back to back).
func plotThroughput(rep *benchReport, path string) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Issue throughput vs clients (%d CPUs, Vault dev server, fake Admin API; median of %d, bars: range)", rep.Machine.CPUs, rep.Config.Reps)
	p.X.Label.Text = "concurrent clients"
	p.Y.Label.Text = "requests per second"
	p.X.Scale = plot.LogScale{}
	p.Y.Scale = plot.LogScale{}
	var clients []int
	var lats []int
	for _, c := range rep.Cells {
		clients = append(clients, c.Concurrency)
		if c.Op == opIssue {
			lats = append(lats, c.LatencyMS)
		}
	}
	slices.Sort(clients)
	slices.Sort(lats)
	var ticks []plot.Tick
	for _, c := range slices.Compact(clients) {
		ticks = append(ticks, plot.Tick{Value: float64(c), Label: strconv.Itoa(c)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	// Bottom right is empty: the 100 ms line starts low on the left.
	p.Legend.Top = false
	p.Legend.Left = false

	var series []any
	var bars []rangeXYs
	for _, ms := range slices.Compact(lats) {
		issue := rangeSeries(rep.Issue, func(c cellResult) bool { return c.LatencyMS == ms })
		var ideal plotter.XYs
		for _, r := range rep.Ratios {
			if r.LatencyMS == ms {
				ideal = append(ideal, plotter.XY{X: float64(r.Concurrency), Y: r.IdealPerSec})
			}
		}
		series = append(series, fmt.Sprintf("issue, %d ms upstream", ms), issue.XYs)
		bars = append(bars, issue)
		if len(ideal) > 0 {
			series = append(series, fmt.Sprintf("ideal, %d ms upstream", ms), ideal)
		}
	}
	kv := rangeSeries(rep.KVFloor, func(cellResult) bool { return true })
	series = append(series, "KV v2 write (Vault floor)", kv.XYs)
	bars = append(bars, kv)
	if err := plotutil.AddLinePoints(p, series...); err != nil {
		return err
	}
	for _, b := range bars {
		if len(b.XYs) == 0 {
			continue
		}
		eb, err := plotter.NewYErrorBars(b)
		if err != nil {
			return err
		}
		p.Add(eb)
	}
	return p.Save(9*vg.Inch, 5.5*vg.Inch, path)
}
