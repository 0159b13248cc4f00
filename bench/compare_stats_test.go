package bench

// The statistics of an A/B comparison: per figure, each side's median, range
// and the median's confidence interval, the ratio B ÷ A, the ratios within
// each repetition's pair, and a verdict from the Mann-Whitney U test
// (golang.org/x/perf/benchmath, the statistics benchstat uses), with a sign
// test on the pairs beside it (its binomial distribution from go-moremath,
// which benchmath is built on).

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/aclements/go-moremath/stats"
	"golang.org/x/perf/benchmath"
)

// compareAlpha is the significance level of the verdict (benchstat's default).
const compareAlpha = 0.05

// sideStats summarises one side's repetitions of one figure.
type sideStats struct {
	Values []float64 `json:"values"` // in repetition order
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	// The median's confidence interval from order statistics (benchmath's
	// AssumeNothing); infinite bounds, written as null, mean too few
	// repetitions for one at 95%.
	CILo       *float64 `json:"median_ci_lo"`
	CIHi       *float64 `json:"median_ci_hi"`
	Confidence float64  `json:"median_ci_confidence"`
}

// figureComparison is one figure of one cell, A against B.
type figureComparison struct {
	Figure string    `json:"figure"`
	A      sideStats `json:"a"`
	B      sideStats `json:"b"`
	Ratio  float64   `json:"ratio_b_over_a"` // of the medians
	// B ÷ A within each repetition: the two ran next to each other, so a
	// slow spell of the machine weighs on both.
	PairRatios   []float64 `json:"pair_ratios"`
	PairRatioMed float64   `json:"pair_ratio_median"`
	PairRatioMin float64   `json:"pair_ratio_min"`
	PairRatioMax float64   `json:"pair_ratio_max"`
	P            float64   `json:"mann_whitney_p"` // two-sided
	// The pairs in which B was higher, of those that differ, and the
	// two-sided sign test on them: a paired test, which the interleaving
	// allows, beside the unpaired U test the verdict rests on.
	PairsBHigher  int     `json:"pairs_b_higher"`
	PairsDiffer   int     `json:"pairs_differ"`
	SignP         float64 `json:"sign_test_p"`
	RangesOverlap bool    `json:"ranges_overlap"`
	// Differs is P < compareAlpha; Verdict says it in words.
	Differs bool   `json:"differs"`
	Verdict string `json:"verdict"`
}

// compareFigure compares a and b, paired by index (repetition r of A ran
// next to repetition r of B). higherIsBetter names the direction in the
// verdict (throughput: higher; latency and CPU: lower).
func compareFigure(figure string, a, b []float64, higherIsBetter bool) figureComparison {
	c := figureComparison{Figure: figure, A: summarise(a), B: summarise(b)}
	if c.A.Median != 0 {
		c.Ratio = c.B.Median / c.A.Median
	}
	for i := range min(len(a), len(b)) {
		if a[i] != 0 {
			c.PairRatios = append(c.PairRatios, b[i]/a[i])
		}
	}
	if len(c.PairRatios) > 0 {
		c.PairRatioMed = median(c.PairRatios)
		c.PairRatioMin, c.PairRatioMax = slices.Min(c.PairRatios), slices.Max(c.PairRatios)
	}
	for i := range min(len(a), len(b)) {
		if b[i] != a[i] {
			c.PairsDiffer++
			if b[i] > a[i] {
				c.PairsBHigher++
			}
		}
	}
	c.SignP = signTestP(c.PairsBHigher, c.PairsDiffer)
	c.RangesOverlap = c.A.Min <= c.B.Max && c.B.Min <= c.A.Max
	cmp := benchmath.AssumeNothing.Compare(newSample(a), newSample(b))
	c.P = cmp.P
	c.Differs = cmp.P < compareAlpha
	c.Verdict = verdict(c, higherIsBetter)
	return c
}

// signTestP is the two-sided sign test's p for k of n pairs going one way.
func signTestP(k, n int) float64 {
	if n == 0 {
		return 1
	}
	d := stats.BinomialDist{N: n, P: 0.5}
	return min(1, 2*min(d.CDF(float64(k)), 1-d.CDF(float64(k-1))))
}

// verdict is "within noise" unless the U test finds the two sides differ;
// then B's change of the median in percent and whether that is better.
func verdict(c figureComparison, higherIsBetter bool) string {
	if !c.Differs {
		return fmt.Sprintf("within noise (p=%.2f)", c.P)
	}
	better := (c.Ratio > 1) == higherIsBetter
	word := "worse"
	if better {
		word = "better"
	}
	s := fmt.Sprintf("B %+.1f%%, %s (p=%.3f)", 100*(c.Ratio-1), word, c.P)
	if c.RangesOverlap {
		s += ", ranges overlap"
	}
	return s
}

func summarise(xs []float64) sideStats {
	s := sideStats{Values: slices.Clone(xs)}
	if len(xs) == 0 {
		return s
	}
	s.Median, s.Min, s.Max = median(xs), slices.Min(xs), slices.Max(xs)
	sum := benchmath.AssumeNothing.Summary(newSample(xs), 0.95)
	s.Confidence = sum.Confidence
	if !math.IsInf(sum.Lo, 0) {
		s.CILo = &sum.Lo
	}
	if !math.IsInf(sum.Hi, 0) {
		s.CIHi = &sum.Hi
	}
	return s
}

// newSample copies xs: benchmath sorts a sample's values in place.
func newSample(xs []float64) *benchmath.Sample {
	return benchmath.NewSample(slices.Clone(xs), &benchmath.DefaultThresholds)
}

// TestCompareFigure checks the verdict on samples whose answer is known: the
// same values on both sides are within noise, eight repetitions entirely
// apart differ in the right direction, and interleaved ones do not.
func TestCompareFigure(t *testing.T) {
	a := []float64{100, 104, 98, 101, 103, 99, 102, 97}
	if c := compareFigure("issues/s", a, a, true); c.Differs || c.Ratio != 1 || c.PairRatioMed != 1 || !c.RangesOverlap {
		t.Errorf("identical samples: %+v", c)
	}
	b := make([]float64, len(a))
	for i, x := range a {
		b[i] = x * 1.2
	}
	c := compareFigure("issues/s", a, b, true)
	if !c.Differs || c.P >= 0.001 || c.RangesOverlap || math.Abs(c.PairRatioMed-1.2) > 1e-9 || c.Verdict != fmt.Sprintf("B +20.0%%, better (p=%.3f)", c.P) {
		t.Errorf("B 20%% higher throughput: %+v", c)
	}
	if c.PairsBHigher != 8 || c.PairsDiffer != 8 || math.Abs(c.SignP-2.0/256) > 1e-12 {
		t.Errorf("8 of 8 pairs higher: %d of %d, sign test p %v (want 2/256)", c.PairsBHigher, c.PairsDiffer, c.SignP)
	}
	if p := signTestP(4, 8); p != 1 {
		t.Errorf("sign test, 4 of 8: p %v, want 1", p)
	}
	if p := signTestP(1, 8); math.Abs(p-18.0/256) > 1e-12 {
		t.Errorf("sign test, 1 of 8: p %v, want 18/256", p)
	}
	if c := compareFigure("p50 ms", a, b, false); !c.Differs || c.Verdict[:len("B +20.0%, worse")] != "B +20.0%, worse" {
		t.Errorf("B 20%% higher latency: verdict %q", c.Verdict)
	}
	mixed := []float64{101, 97, 103, 100, 98, 104, 99, 102}
	if c := compareFigure("issues/s", a, mixed, true); c.Differs || c.P < 0.5 {
		t.Errorf("interleaved samples: p %.3f, verdict %q", c.P, c.Verdict)
	}
	if s := summarise(a); s.CILo == nil || s.CIHi == nil || *s.CILo > s.Median || *s.CIHi < s.Median || s.Min != 97 || s.Max != 104 {
		t.Errorf("summary of %v: %+v", a, s)
	}
	if s := summarise(a[:3]); s.CILo != nil {
		t.Errorf("a 95%% interval of a median from 3 values: %+v", s)
	}
}
