package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// The picture's geometry, in pixels at 96 dpi: Grafana's grid has 24
// columns; its rows are 30 px, drawn a little taller here so each panel's
// legend fits beside its plot.
const (
	dpi      = 96
	colPx    = 72
	rowPx    = 40
	headerPx = 56
	marginPx = 6
	// A panel's legend, on its right, takes the width of its longest
	// entry, within these shares of the panel's width.
	legendMin, legendMax = 0.18, 0.40
)

func px(n float64) vg.Length { return vg.Length(n) * vg.Inch / dpi }

// Render draws the panels on Grafana's grid into a PNG at path, under a
// header that says what the picture is.
func Render(path, title, caption string, panels []PanelData) error {
	rows := 0
	for _, p := range panels {
		rows = max(rows, p.Panel.GridPos.Y+p.Panel.GridPos.H)
	}
	w, h := px(24*colPx+2*marginPx), px(float64(rows*rowPx+headerPx+marginPx))
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(dpi), vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)

	head := func(text string, size vg.Length, y vg.Length) {
		st := draw.TextStyle{Color: color.Black, Font: font.From(plot.DefaultFont, size), Handler: plot.DefaultTextHandler}
		dc.FillText(st, vg.Point{X: px(marginPx + 4), Y: h - y}, text)
	}
	head(title, 18, px(24))
	head(caption, 11, px(44))

	for _, pd := range panels {
		g := pd.Panel.GridPos
		x0 := px(float64(marginPx + g.X*colPx))
		x1 := px(float64(marginPx + (g.X+g.W)*colPx))
		top := h - px(float64(headerPx+g.Y*rowPx))
		bottom := h - px(float64(headerPx+(g.Y+g.H)*rowPx))
		cell := draw.Canvas{Canvas: dc.Canvas, Rectangle: vg.Rectangle{
			Min: vg.Point{X: x0 + px(3), Y: bottom + px(3)},
			Max: vg.Point{X: x1 - px(3), Y: top - px(3)},
		}}
		frame(cell)
		inner := draw.Crop(cell, px(4), -px(4), px(4), -px(4))
		p, entries, err := panelPlot(pd)
		if err != nil {
			return err
		}
		split := inner.Max.X - legendWidth(inner, entries)
		p.Draw(draw.Canvas{Canvas: inner.Canvas, Rectangle: vg.Rectangle{Min: inner.Min, Max: vg.Point{X: split, Y: inner.Max.Y}}})
		drawLegend(draw.Canvas{Canvas: inner.Canvas, Rectangle: vg.Rectangle{
			Min: vg.Point{X: split + px(8), Y: inner.Min.Y},
			Max: vg.Point{X: inner.Max.X, Y: inner.Max.Y - px(28)},
		}}, entries)
	}

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	png := vgimg.PngCanvas{Canvas: img}
	if _, err := png.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// frame draws a panel's border, as Grafana's panels have one.
func frame(c draw.Canvas) {
	r := c.Rectangle
	c.StrokeLines(draw.LineStyle{Color: color.Gray{Y: 200}, Width: px(1)}, []vg.Point{
		r.Min, {X: r.Max.X, Y: r.Min.Y}, r.Max, {X: r.Min.X, Y: r.Max.Y}, r.Min,
	})
}

// legendEntry is one line of a panel's legend.
type legendEntry struct {
	name  string
	thumb plot.Thumbnailer
}

var legendFont = font.From(plot.DefaultFont, 9)

func legendStyle() draw.TextStyle {
	return draw.TextStyle{Color: color.Black, Font: legendFont, Handler: plot.DefaultTextHandler}
}

const thumbWidth = 14 // px

// legendWidth is the width the longest entry needs, within the bounds.
func legendWidth(c draw.Canvas, entries []legendEntry) vg.Length {
	w := c.Max.X - c.Min.X
	need := vg.Length(0)
	for _, e := range entries {
		need = max(need, legendStyle().Rectangle(" "+e.name).Max.X)
	}
	need += px(thumbWidth + 16)
	return min(max(need, w*legendMin), w*legendMax)
}

// drawLegend lists the entries top to bottom, in as many columns as the
// height needs (a panel may have more series than lines fit).
func drawLegend(c draw.Canvas, entries []legendEntry) {
	rowH := legendStyle().Rectangle("Xg").Max.Y + px(2)
	perCol := max(1, int((c.Max.Y-c.Min.Y)/rowH))
	cols := (len(entries) + perCol - 1) / perCol
	colW := (c.Max.X - c.Min.X) / vg.Length(max(cols, 1))
	for i := 0; i < cols; i++ {
		l := plot.NewLegend()
		l.Top, l.Left = true, true
		l.TextStyle = legendStyle()
		l.ThumbnailWidth = px(thumbWidth)
		l.Padding = px(2)
		for _, e := range entries[i*perCol : min(len(entries), (i+1)*perCol)] {
			l.Add(e.name, e.thumb)
		}
		x0 := c.Min.X + colW*vg.Length(i)
		l.Draw(draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{Min: vg.Point{X: x0, Y: c.Min.Y}, Max: vg.Point{X: x0 + colW, Y: c.Max.Y}}})
	}
}

// palette is Grafana's classic series palette, so that a panel's many
// series (p50 and p95 of every operation) keep distinct colours.
var palette = func() []color.Color {
	var out []color.Color
	for _, h := range []uint32{0x7EB26D, 0xEAB839, 0x6ED0E0, 0xEF843C, 0xE24D42, 0x1F78C1, 0xBA43A9, 0x705DA0,
		0x508642, 0xCCA300, 0x447EBC, 0xC15C17, 0x890F02, 0x0A437C, 0x6D1F62, 0x584477,
		0x3F6833, 0x967302, 0x2F575E, 0x99440A, 0x58140C, 0x052B51, 0x511749, 0x3F2B5B} {
		out = append(out, color.RGBA{R: uint8(h >> 16), G: uint8(h >> 8), B: uint8(h), A: 255})
	}
	return out
}()

// panelPlot is one panel's plot (title, time axis, unit ticks) and its
// legend entries, which the caller draws beside it.
func panelPlot(pd PanelData) (*plot.Plot, []legendEntry, error) {
	p := plot.New()
	p.Title.Text = pd.Panel.Title
	p.Title.TextStyle.Font.Size = 13
	p.X.Tick.Marker = plot.TimeTicks{Format: "15:04:05"}
	p.X.Label.Text = "UTC"
	p.X.Label.TextStyle.Font.Size = 9
	p.Y.Tick.Marker = unitTicks{unit: pd.Panel.Field.Defaults.Unit}
	p.Add(plotter.NewGrid())
	var leg []legendEntry
	ymax := 0.0
	for i, l := range pd.Lines {
		var first *plotter.Line
		for _, seg := range runs(l, pd.Step) {
			ln, err := plotter.NewLine(seg)
			if err != nil {
				return nil, nil, fmt.Errorf("panel %q, %s: %w", pd.Panel.Title, l.Legend, err)
			}
			ln.Color = palette[i%len(palette)]
			ln.Width = vg.Points(1.6)
			p.Add(ln)
			if first == nil {
				first = ln
			}
			for _, pt := range seg {
				ymax = math.Max(ymax, pt.Y)
			}
		}
		if first == nil {
			// Plotted nowhere: still listed, so the reader sees the series exists.
			first = &plotter.Line{LineStyle: draw.LineStyle{Color: palette[i%len(palette)], Width: vg.Points(1.6)}}
		}
		leg = append(leg, legendEntry{name: l.Legend, thumb: first})
	}
	p.Y.Min = 0
	if ymax == 0 {
		ymax = 1
	}
	p.Y.Max = ymax * 1.08
	return p, leg, nil
}

// runs splits a line where it has no value, as Grafana leaves a gap
// there: a step the range query skipped (no sample, or a series ended by
// its staleness marker) or a NaN (a quantile of nothing).
func runs(l Line, step time.Duration) []plotter.XYs {
	var out []plotter.XYs
	var cur plotter.XYs
	flush := func() {
		if len(cur) > 0 {
			out = append(out, cur)
			cur = nil
		}
	}
	for i, v := range l.V {
		if i > 0 && l.T[i].Sub(l.T[i-1]) > step*3/2 {
			flush()
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			flush()
			continue
		}
		cur = append(cur, plotter.XY{X: float64(l.T[i].UnixMilli()) / 1000, Y: v})
	}
	flush()
	return out
}

// unitTicks labels the y axis in the panel's Grafana unit.
type unitTicks struct{ unit string }

func (u unitTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = formatUnit(ticks[i].Value, u.unit)
		}
	}
	return ticks
}

// formatUnit writes v as Grafana writes its units "s", "reqps" and "short".
func formatUnit(v float64, unit string) string {
	num := func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
	round := func(x float64) float64 { return math.Round(x*1000) / 1000 }
	switch unit {
	case "s":
		if v != 0 && math.Abs(v) < 1 {
			return num(round(v*1000)) + " ms"
		}
		return num(round(v)) + " s"
	case "reqps":
		return num(round(v)) + " req/s"
	default:
		switch {
		case math.Abs(v) >= 1e6:
			return num(round(v/1e6)) + " Mil"
		case math.Abs(v) >= 1e3:
			return num(round(v/1e3)) + " K"
		}
		return num(round(v))
	}
}

// timeRange is the recording's span, for the caption.
func timeRange(start, end time.Time) string {
	return fmt.Sprintf("%s to %s UTC (%s)", start.UTC().Format("2006-01-02 15:04:05"), end.UTC().Format("15:04:05"),
		strings.TrimSuffix(end.Sub(start).Round(time.Second).String(), "0s"))
}
