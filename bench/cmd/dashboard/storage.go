package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
)

// memStorage holds a recording's samples as Prometheus would after
// scraping them: each exposition parsed by Prometheus' own text parser
// (classic histograms become their _bucket, _sum and _count series), the
// target's job and instance labels added, and a staleness marker written
// when a series present in one scrape is missing from the next. It is a
// storage.Queryable for the PromQL engine; Prometheus' TSDB would do the
// same but brings cloud SDKs into the module for nothing a few minutes of
// samples need.
type memStorage struct {
	series []*memSeries
}

type memSeries struct {
	lset    labels.Labels
	samples []chunks.Sample
}

// fSample is one float sample.
type fSample struct {
	t int64
	f float64
}

func (s fSample) T() int64                    { return s.t }
func (s fSample) ST() int64                   { return 0 }
func (s fSample) F() float64                  { return s.f }
func (fSample) H() *histogram.Histogram       { return nil }
func (fSample) FH() *histogram.FloatHistogram { return nil }
func (fSample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s fSample) Copy() chunks.Sample         { return s }

// ingest builds the storage from every scrape of r.
func ingest(r *Recording) (*memStorage, error) {
	st := &memStorage{}
	byKey := map[string]*memSeries{}
	symbols := labels.NewSymbolTable()
	target := labels.FromStrings("job", r.Job, "instance", r.Instance)
	var previous map[string]bool
	for i, sc := range r.Scrapes {
		ts := sc.At.UnixMilli()
		seen := map[string]bool{}
		p := textparse.NewPromParser(sc.Body, symbols, false)
		for {
			e, err := p.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("scrape %d (%s): %w", i, sc.At.UTC().Format("15:04:05"), err)
			}
			if e != textparse.EntrySeries {
				continue // HELP, TYPE, comments
			}
			_, _, v := p.Series()
			var lset labels.Labels
			p.Labels(&lset)
			b := labels.NewBuilder(lset)
			target.Range(func(l labels.Label) { b.Set(l.Name, l.Value) })
			lset = b.Labels()
			key := lset.String()
			s := byKey[key]
			if s == nil {
				s = &memSeries{lset: lset}
				byKey[key] = s
				st.series = append(st.series, s)
			}
			s.samples = append(s.samples, fSample{t: ts, f: v})
			seen[key] = true
		}
		for key := range previous {
			if !seen[key] {
				// As Prometheus' scrape loop does for a series that vanished.
				byKey[key].samples = append(byKey[key].samples, fSample{t: ts, f: math.Float64frombits(value.StaleNaN)})
			}
		}
		previous = seen
	}
	slices.SortFunc(st.series, func(a, b *memSeries) int { return labels.Compare(a.lset, b.lset) })
	return st, nil
}

// Querier implements storage.Queryable.
func (st *memStorage) Querier(mint, maxt int64) (storage.Querier, error) {
	return &memQuerier{st: st, mint: mint, maxt: maxt}, nil
}

type memQuerier struct {
	st         *memStorage
	mint, maxt int64
}

func (q *memQuerier) Select(_ context.Context, _ bool, _ *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	out := &memSeriesSet{i: -1}
	for _, s := range q.st.series { // sorted at ingest
		if !matchesAll(s.lset, ms) {
			continue
		}
		var in []chunks.Sample
		for _, smp := range s.samples {
			if smp.T() >= q.mint && smp.T() <= q.maxt {
				in = append(in, smp)
			}
		}
		if len(in) > 0 {
			out.series = append(out.series, storage.NewListSeries(s.lset, in))
		}
	}
	return out
}

func matchesAll(lset labels.Labels, ms []*labels.Matcher) bool {
	for _, m := range ms {
		if !m.Matches(lset.Get(m.Name)) {
			return false
		}
	}
	return true
}

func (q *memQuerier) LabelValues(_ context.Context, name string, _ *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	var vals []string
	for _, s := range q.st.series {
		if v := s.lset.Get(name); v != "" && matchesAll(s.lset, ms) {
			vals = append(vals, v)
		}
	}
	slices.Sort(vals)
	return slices.Compact(vals), nil, nil
}

func (q *memQuerier) LabelNames(_ context.Context, _ *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	var names []string
	for _, s := range q.st.series {
		if matchesAll(s.lset, ms) {
			s.lset.Range(func(l labels.Label) { names = append(names, l.Name) })
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil, nil
}

func (*memQuerier) Close() error { return nil }

type memSeriesSet struct {
	series []storage.Series
	i      int
}

func (s *memSeriesSet) Next() bool                      { s.i++; return s.i < len(s.series) }
func (s *memSeriesSet) At() storage.Series              { return s.series[s.i] }
func (*memSeriesSet) Err() error                        { return nil }
func (*memSeriesSet) Warnings() annotations.Annotations { return nil }
