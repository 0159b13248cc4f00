package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
)

// Dashboard is the part of a Grafana dashboard JSON this tool draws: the
// panels, their grid positions, units and Prometheus targets.
type Dashboard struct {
	Title  string  `json:"title"`
	Panels []Panel `json:"panels"`
}

// Panel is one Grafana panel.
type Panel struct {
	ID      int     `json:"id"`
	Type    string  `json:"type"`
	Title   string  `json:"title"`
	GridPos GridPos `json:"gridPos"`
	Field   struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Targets []Target `json:"targets"`
}

// GridPos is a panel's place on Grafana's 24-column grid.
type GridPos struct{ X, Y, W, H int }

// Target is one PromQL query of a panel.
type Target struct {
	RefID        string `json:"refId"`
	Expr         string `json:"expr"`
	LegendFormat string `json:"legendFormat"`
}

// ReadDashboard loads a dashboard JSON file.
func ReadDashboard(path string) (*Dashboard, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d Dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(d.Panels) == 0 {
		return nil, fmt.Errorf("%s: no panels", path)
	}
	return &d, nil
}

// Line is one series of a panel as Grafana would plot it: its legend and
// its points (NaN where the query had no value at a step).
type Line struct {
	Legend string
	T      []time.Time
	V      []float64
}

// PanelData is a panel with every target evaluated.
type PanelData struct {
	Panel Panel
	Lines []Line
	Step  time.Duration // between two evaluations
}

// Vars are the dashboard variables' values, substituted the way Grafana
// does before a query goes to Prometheus ($job, $instance).
type Vars map[string]string

func (vs Vars) apply(expr string) string {
	return regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`).ReplaceAllStringFunc(expr, func(m string) string {
		name := strings.Trim(m, "${}")
		if v, ok := vs[name]; ok {
			return v
		}
		return m
	})
}

// Evaluate runs every target of every panel over [start, end] at step with
// Prometheus' own PromQL engine. A query that does not parse, fails, or
// returns no finite value at all is an error naming the panel: a picture
// with an empty panel would hide a dashboard query that is wrong against
// the engine's real metrics.
func Evaluate(ctx context.Context, d *Dashboard, q *memStorage, vars Vars, start, end time.Time, step time.Duration) ([]PanelData, error) {
	engine := promql.NewEngine(promql.EngineOpts{
		MaxSamples: 50_000_000,
		Timeout:    time.Minute,
		// Prometheus' default: a gauge's last value holds for 5 minutes
		// unless a staleness marker ends it.
		LookbackDelta: 5 * time.Minute,
	})
	var out []PanelData
	for _, p := range d.Panels {
		if p.Type != "timeseries" {
			return nil, fmt.Errorf("panel %q: type %q, this tool draws only timeseries panels", p.Title, p.Type)
		}
		if len(p.Targets) == 0 {
			return nil, fmt.Errorf("panel %q: no targets", p.Title)
		}
		pd := PanelData{Panel: p, Step: step}
		for _, tg := range p.Targets {
			expr := vars.apply(tg.Expr)
			if strings.Contains(expr, "$") {
				return nil, fmt.Errorf("panel %q target %s: unknown variable left in %q", p.Title, tg.RefID, expr)
			}
			// NewRangeQuery parses the query with the engine's parser.
			qry, err := engine.NewRangeQuery(ctx, q, nil, expr, start, end, step)
			if err != nil {
				return nil, fmt.Errorf("panel %q target %s: %q: %w", p.Title, tg.RefID, expr, err)
			}
			res := qry.Exec(ctx)
			if res.Err != nil {
				qry.Close()
				return nil, fmt.Errorf("panel %q target %s: %q: %w", p.Title, tg.RefID, expr, res.Err)
			}
			m, err := res.Matrix()
			if err != nil {
				qry.Close()
				return nil, fmt.Errorf("panel %q target %s: %w", p.Title, tg.RefID, err)
			}
			finite := 0
			for _, s := range m {
				l := Line{Legend: legend(tg.LegendFormat, s.Metric)}
				for _, pt := range s.Floats {
					l.T = append(l.T, time.UnixMilli(pt.T))
					l.V = append(l.V, pt.F)
					if !math.IsNaN(pt.F) && !math.IsInf(pt.F, 0) {
						finite++
					}
				}
				pd.Lines = append(pd.Lines, l)
			}
			qry.Close()
			if finite == 0 {
				return nil, fmt.Errorf("panel %q target %s: %q returned no value over the recording (%d series)", p.Title, tg.RefID, expr, len(m))
			}
		}
		out = append(out, pd)
	}
	return out, nil
}

// legend fills a Grafana legendFormat ("p50 {{operation}}") from a
// series' labels; an empty format is the series' label set, as Grafana shows it.
func legend(format string, l labels.Labels) string {
	if format == "" {
		return l.String()
	}
	return regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`).ReplaceAllStringFunc(format, func(m string) string {
		name := strings.Trim(m, "{} ")
		return l.Get(name)
	})
}
