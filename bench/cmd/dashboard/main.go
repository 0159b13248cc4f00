// Command dashboard draws examples/grafana/openai-engine-dashboard.json as
// Grafana would, from a recorded run of the engine, without Grafana: the
// recording holds the engine's metrics path as scraped every few seconds;
// each panel's PromQL queries (the dashboard's own, with $job and $instance
// filled in) run on Prometheus' PromQL engine over those samples; the
// panels are drawn on the dashboard's grid with their titles and units.
// A query that does not parse or returns nothing fails the run.
//
// The recording comes from scenario_test.go (build tag bench; make
// dashboard), which drives the plugin on the real Vault against the fake
// Admin API and scrapes it. This command re-renders a recording:
//
//	go run ./cmd/dashboard -recording ../examples/grafana/dashboard-run.prom.gz -out dashboard.png
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"
)

func main() {
	dash := flag.String("dashboard", "../examples/grafana/openai-engine-dashboard.json", "Grafana dashboard JSON")
	rec := flag.String("recording", "", "recorded scrapes (written by make dashboard)")
	out := flag.String("out", "dashboard.png", "PNG to write")
	step := flag.Duration("step", 5*time.Second, "query resolution")
	flag.Parse()
	if *rec == "" {
		fmt.Fprintln(os.Stderr, "dashboard: -recording is required")
		os.Exit(2)
	}
	r, err := ReadRecording(*rec)
	if err == nil {
		err = Draw(context.Background(), *dash, r, *out, *step)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dashboard:", err)
		os.Exit(1)
	}
}

// Draw evaluates every panel of the dashboard at path over the recording
// and renders the picture to out.
func Draw(ctx context.Context, path string, r *Recording, out string, step time.Duration) error {
	d, err := ReadDashboard(path)
	if err != nil {
		return err
	}
	st, err := ingest(r)
	if err != nil {
		return err
	}
	panels, err := Evaluate(ctx, d, st, TargetVars(r), r.Start(), r.End(), step)
	if err != nil {
		return err
	}
	caption := "Rendered by bench/cmd/dashboard from this dashboard's own PromQL queries over a recorded run " +
		"(real Vault 1.21.0, the plugin, the fake OpenAI Admin API), " + timeRange(r.Start(), r.End()) + "; not a Grafana screenshot."
	return Render(out, d.Title, caption, panels)
}

// TargetVars fills the dashboard's variables for the recorded target as
// Grafana does for one selected value: $job verbatim, $instance (used with
// =~) as a regular expression matching exactly it, escaped for a PromQL
// string.
func TargetVars(r *Recording) Vars {
	return Vars{
		"job":      r.Job,
		"instance": strings.ReplaceAll(regexp.QuoteMeta(r.Instance), `\`, `\\`),
	}
}
