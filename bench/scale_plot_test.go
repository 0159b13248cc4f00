//go:build scale

package bench

import (
	"fmt"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// plotScaleThroughput draws issue throughput against live leases: each
// issue cell (per cluster and upstream latency) and the fills' chunks (64
// clients, 0 ms upstream), with the token fills beside them for Vault's own
// rate of lease-creating requests.
func plotScaleThroughput(rep *scaleReport, path string) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Issue throughput vs live leases (%d CPUs, shared; Raft storage)", rep.Machine.CPUs)
	p.X.Label.Text = "live leases (tokens for the token fill)"
	p.Y.Label.Text = "requests per second"
	p.Legend.Top = true
	var series []any
	for _, tr := range rep.Topologies {
		for i, lat := range rep.Config.Latencies {
			var xy plotter.XYs
			for _, c := range tr.Cells {
				if c.Op != opKV && c.LatencyMS == lat && c.Clients == rep.Config.Clients[i] {
					xy = append(xy, plotter.XY{X: float64(c.LiveAtStart), Y: c.PerSecond})
				}
			}
			series = append(series, fmt.Sprintf("%s: issue, %d ms, %d clients", topologyName(tr.Nodes), lat, rep.Config.Clients[i]), xy)
		}
		var kv plotter.XYs
		for _, c := range tr.Cells {
			if c.Op == opKV {
				kv = append(kv, plotter.XY{X: float64(c.LiveAtStart), Y: c.PerSecond})
			}
		}
		if len(kv) > 0 {
			series = append(series, fmt.Sprintf("%s: KV v2 write (control), %d clients", topologyName(tr.Nodes), rep.Config.Clients[0]), kv)
		}
		for _, fills := range [][]fillChunk{tr.Fill, tr.TokenFill} {
			var xy plotter.XYs
			for _, f := range fills {
				xy = append(xy, plotter.XY{X: float64(f.LiveBefore+f.LiveAfter) / 2, Y: f.PerSecond})
			}
			if len(fills) > 0 {
				series = append(series, fmt.Sprintf("%s: %s fill, 0 ms, %d clients", topologyName(tr.Nodes), fills[0].Kind, rep.Config.FillClients), xy)
			}
		}
	}
	if err := plotutil.AddLinePoints(p, series...); err != nil {
		return err
	}
	p.Y.Min = 0
	return p.Save(10*vg.Inch, 6*vg.Inch, path)
}

// plotScaleMemory draws Vault's and the plugin's memory against live leases.
func plotScaleMemory(rep *scaleReport, path string) error {
	p := plot.New()
	p.Title.Text = "Memory vs live leases (active node)"
	p.X.Label.Text = "live leases"
	p.Y.Label.Text = "MB"
	p.Legend.Top = true
	p.Legend.Left = true
	var series []any
	for _, tr := range rep.Topologies {
		for _, s := range []struct {
			name string
			f    func(memPoint) float64
		}{
			{"Vault RSS", func(m memPoint) float64 { return m.VaultRSSMB }},
			{"Vault heap after GC", func(m memPoint) float64 { return m.VaultHeapGCMB }},
			{"plugin RSS", func(m memPoint) float64 { return m.PluginRSSMB }},
			{"plugin heap after GC", func(m memPoint) float64 { return m.PluginHeapGCMB }},
			{"Raft on disk", func(m memPoint) float64 { return m.RaftMB }},
		} {
			var xy plotter.XYs
			for _, m := range tr.Memory {
				if m.Tokens == 0 && m.LiveLeases > 0 {
					xy = append(xy, plotter.XY{X: float64(m.LiveLeases), Y: s.f(m)})
				}
			}
			series = append(series, topologyName(tr.Nodes)+": "+s.name, xy)
		}
	}
	if err := plotutil.AddLinePoints(p, series...); err != nil {
		return err
	}
	p.Y.Min = 0
	return p.Save(10*vg.Inch, 6*vg.Inch, path)
}
