package main

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// synthetic is a recording of 61 scrapes 5 s apart of a target whose
// counter grows by 1 per scrape (12 a minute), whose histogram puts every
// observation in the 0.05 s bucket, and whose gauge for role "gone"
// disappears after scrape 30 and comes back at scrape 50.
func synthetic() *Recording {
	r := &Recording{Job: "vault-openai", Instance: "127.0.0.1:8200"}
	t0 := time.Unix(1_800_000_000, 0)
	for i := 0; i <= 60; i++ {
		var b bytes.Buffer
		fmt.Fprintf(&b, "# TYPE openai_keys_issued_total counter\nopenai_keys_issued_total{role=\"app\"} %d\n", i)
		fmt.Fprintf(&b, "# TYPE openai_live_keys gauge\nopenai_live_keys{role=\"app\"} 7\n")
		if i <= 30 || i >= 50 {
			fmt.Fprintf(&b, "openai_live_keys{role=\"gone\"} 3\n")
		}
		fmt.Fprintf(&b, "# TYPE openai_upstream_request_duration_seconds histogram\n")
		for _, le := range []string{"0.025", "0.05", "0.1", "+Inf"} {
			n := i
			if le == "0.025" {
				n = 0
			}
			fmt.Fprintf(&b, "openai_upstream_request_duration_seconds_bucket{operation=\"create\",status=\"2xx\",le=%q} %d\n", le, n)
		}
		fmt.Fprintf(&b, "openai_upstream_request_duration_seconds_sum{operation=\"create\",status=\"2xx\"} %g\n", 0.04*float64(i))
		fmt.Fprintf(&b, "openai_upstream_request_duration_seconds_count{operation=\"create\",status=\"2xx\"} %d\n", i)
		r.Scrapes = append(r.Scrapes, Scrape{At: t0.Add(time.Duration(i) * 5 * time.Second), Body: b.Bytes()})
	}
	return r
}

func panelOf(title, unit string, targets ...Target) Panel {
	p := Panel{Type: "timeseries", Title: title, Targets: targets, GridPos: GridPos{W: 12, H: 8}}
	p.Field.Defaults.Unit = unit
	return p
}

// The dashboard's own query shapes, run by Prometheus' engine over the
// synthetic scrapes, give the numbers the scrapes imply.
func TestEvaluate_QueriesGiveWhatTheScrapesImply(t *testing.T) {
	r := synthetic()
	st, err := ingest(r)
	if err != nil {
		t.Fatal(err)
	}
	d := &Dashboard{Panels: []Panel{
		panelOf("issued", "short", Target{RefID: "A", LegendFormat: "{{role}}",
			Expr: `sum by (role) (rate(openai_keys_issued_total{job="$job", instance=~"$instance"}[5m])) * 60`}),
		panelOf("live", "short", Target{RefID: "A", LegendFormat: "{{role}}",
			Expr: `sum by (role) (openai_live_keys{job="$job", instance=~"$instance"})`}),
		panelOf("p50", "s", Target{RefID: "A", LegendFormat: "p50 {{operation}}",
			Expr: `histogram_quantile(0.5, sum by (le, operation) (rate(openai_upstream_request_duration_seconds_bucket{job="$job", instance=~"$instance"}[5m])))`}),
	}}
	panels, err := Evaluate(context.Background(), d, st, TargetVars(r), r.Start(), r.End(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	last := func(l Line) float64 { return l.V[len(l.V)-1] }

	issued := panels[0].Lines
	if len(issued) != 1 || issued[0].Legend != "app" || math.Abs(last(issued[0])-12) > 1e-9 {
		t.Errorf("issued per minute: %+v, want one line \"app\" ending at 12", issued)
	}
	live := map[string]Line{}
	for _, l := range panels[1].Lines {
		live[l.Legend] = l
	}
	if last(live["app"]) != 7 {
		t.Errorf("live app keys end at %v, want 7", last(live["app"]))
	}
	// The staleness marker ends the vanished series at once, not 5 minutes
	// later, and the picture draws it as two runs with a gap between.
	gone := runs(live["gone"], 5*time.Second)
	if len(gone) != 2 || len(gone[0]) != 31 || len(gone[1]) != 11 {
		t.Fatalf("the gauge that vanished and came back is drawn in %d runs, want 2 of 31 and 11 points", len(gone))
	}
	if end := gone[0][30].X; end != float64(r.Scrapes[30].At.Unix()) {
		t.Errorf("the vanished gauge lasts until %v, want its last scrape %v", end, r.Scrapes[30].At.Unix())
	}
	// Every observation in (0.025, 0.05]: the median interpolates to 0.0375.
	if p50 := last(panels[2].Lines[0]); math.Abs(p50-0.0375) > 1e-9 || panels[2].Lines[0].Legend != "p50 create" {
		t.Errorf("p50 %v (%q), want 0.0375 (\"p50 create\")", p50, panels[2].Lines[0].Legend)
	}
}

// A query that does not parse, names a metric the engine does not export,
// or uses a variable the tool does not know fails the run, naming the panel.
func TestEvaluate_FailsLoudly(t *testing.T) {
	r := synthetic()
	st, err := ingest(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ expr, want string }{
		{`sum by (role) (rate(openai_keys_issued_total[5m]`, "unclosed"},
		{`sum(openai_keys_issued_totl{job="$job"})`, "returned no value"},
		{`sum(openai_keys_issued_total{job="$cluster"})`, "unknown variable"},
	} {
		d := &Dashboard{Panels: []Panel{panelOf("the panel", "short", Target{RefID: "B", Expr: c.expr})}}
		_, err := Evaluate(context.Background(), d, st, TargetVars(r), r.Start(), r.End(), 5*time.Second)
		if err == nil || !strings.Contains(err.Error(), `panel "the panel" target B`) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming the panel and saying %q", c.expr, err, c.want)
		}
	}
}

// The shipped dashboard parses, and a recording survives a gzipped write and read;
// the picture is a PNG of the grid's size.
func TestRecordingRoundTripAndRender(t *testing.T) {
	d, err := ReadDashboard("../../../examples/grafana/openai-engine-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Panels) < 7 {
		t.Fatalf("the dashboard has %d panels", len(d.Panels))
	}
	r := synthetic()
	path := filepath.Join(t.TempDir(), "run.prom.gz")
	if err := r.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	back, err := ReadRecording(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.Job != r.Job || back.Instance != r.Instance || len(back.Scrapes) != len(r.Scrapes) {
		t.Fatalf("read back job %q instance %q %d scrapes, wrote %q %q %d", back.Job, back.Instance, len(back.Scrapes), r.Job, r.Instance, len(r.Scrapes))
	}
	for i := range r.Scrapes {
		if !back.Scrapes[i].At.Equal(r.Scrapes[i].At) || !bytes.Equal(back.Scrapes[i].Body, r.Scrapes[i].Body) {
			t.Fatalf("scrape %d differs after the round trip", i)
		}
	}
	st, err := ingest(back)
	if err != nil {
		t.Fatal(err)
	}
	one := &Dashboard{Panels: []Panel{panelOf("issued", "short", Target{RefID: "A", Expr: `rate(openai_keys_issued_total[5m])`})}}
	panels, err := Evaluate(context.Background(), one, st, TargetVars(back), back.Start(), back.End(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "d.png")
	if err := Render(out, "title", "caption", panels); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if w := img.Bounds().Dx(); w != 24*colPx+2*marginPx {
		t.Errorf("picture %d px wide, want %d", w, 24*colPx+2*marginPx)
	}
}

func TestFormatUnit(t *testing.T) {
	for _, c := range []struct {
		v    float64
		unit string
		want string
	}{
		{0.05, "s", "50 ms"}, {2.5, "s", "2.5 s"}, {0, "s", "0 s"}, {1.5, "reqps", "1.5 req/s"}, {1500, "short", "1.5 K"}, {12, "short", "12"},
	} {
		if got := formatUnit(c.v, c.unit); got != c.want {
			t.Errorf("formatUnit(%v, %q) = %q, want %q", c.v, c.unit, got, c.want)
		}
	}
}
