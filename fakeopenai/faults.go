package fakeopenai

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"
)

// Faults is the set of failures to inject. SetFaults replaces the whole set
// atomically; the zero value means healthy.
//
// In JSON (PUT /_fake/faults) the keys are snake_case and durations are Go
// duration strings: {"latency":"100ms","rules":[{"ops":["create_service_account"],
// "kind":"429","count":1,"retry_after":1}]}.
type Faults struct {
	Latency time.Duration // added to every request before handling (respects request context)
	Down    bool          // close every connection at once without a response
	Rules   []FaultRule
}

// FaultRule injects one kind of failure into matching requests. The first
// rule that fires for a request wins.
type FaultRule struct {
	Ops        []Op          // empty: every operation
	Kind       FaultKind     //
	Rate       float64       // probability 0..1 per matching request
	Count      int           // if > 0, fires for the next Count matching requests only, ignoring Rate
	RetryAfter int           // seconds, for Fault429 (Retry-After header; at least 1, as the spec requires)
	Hold       time.Duration // for FaultHold
	// Message replaces the error message of an injected error answer. OpenAI
	// echoes part of a wrong key in its 401 message ("Incorrect API key
	// provided: sk-admi*****abcd"), so tests set a key-shaped message to prove
	// the client never lets upstream text carry a key into logs.
	Message string
}

// FaultKind is what a FaultRule does to a request.
type FaultKind string

// Fault kinds.
const (
	// Fault429 answers 429 rate_limit_exceeded with a Retry-After header.
	Fault429 FaultKind = "429"
	// Fault500 answers 500 server_error.
	Fault500 FaultKind = "500"
	// Fault400, Fault401 and Fault403 answer a refusal: the request was
	// understood and not performed (bad request, admin key rejected, admin
	// key lacking permission).
	Fault400 FaultKind = "400"
	Fault401 FaultKind = "401"
	Fault403 FaultKind = "403"
	// FaultDrop closes the connection without a response; nothing is done.
	FaultDrop FaultKind = "drop"
	// FaultLostResponse performs the operation, then closes the connection
	// without a response: the client cannot tell whether it happened.
	FaultLostResponse FaultKind = "lost"
	// FaultHold waits Hold, then performs the operation normally. The
	// operation completes even if the client has gone away meanwhile, as a
	// request that reached OpenAI would (for crash-mid-request tests).
	FaultHold FaultKind = "hold"
	// FaultDown is only a FaultCounts key: requests refused by Faults.Down.
	FaultDown FaultKind = "down"
)

// SetFaults replaces the injected faults; Count budgets start afresh.
func (s *Server) SetFaults(f Faults) {
	f.Rules = slices.Clone(f.Rules)
	remain := make([]int, len(f.Rules))
	for i, r := range f.Rules {
		remain[i] = r.Count
	}
	s.fmu.Lock()
	s.faults, s.ruleRemain = f, remain
	s.fmu.Unlock()
}

// CurrentFaults returns the faults in force.
func (s *Server) CurrentFaults() Faults {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	f := s.faults
	f.Rules = slices.Clone(f.Rules)
	return f
}

// FaultCounts returns how many faults of each kind were injected.
func (s *Server) FaultCounts() map[FaultKind]int {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	out := make(map[FaultKind]int, len(s.faultCounts))
	for k, v := range s.faultCounts {
		out[k] = v
	}
	return out
}

// ResetFaultCounts zeroes the injected-fault counters.
func (s *Server) ResetFaultCounts() {
	s.fmu.Lock()
	s.faultCounts = map[FaultKind]int{}
	s.fmu.Unlock()
}

func (s *Server) baseFaults() (latency time.Duration, down bool) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if s.faults.Down {
		s.faultCounts[FaultDown]++
	}
	return s.faults.Latency, s.faults.Down
}

// pickFault decides whether a rule fires for op, consuming Count budgets.
func (s *Server) pickFault(op Op) (FaultRule, bool) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	for i, r := range s.faults.Rules {
		if len(r.Ops) > 0 && !slices.Contains(r.Ops, op) {
			continue
		}
		fire := false
		if r.Count > 0 {
			if s.ruleRemain[i] > 0 {
				s.ruleRemain[i]--
				fire = true
			}
		} else if r.Rate > 0 {
			fire = rand.Float64() < r.Rate
		}
		if fire {
			s.faultCounts[r.Kind]++
			return r, true
		}
	}
	return FaultRule{}, false
}

// sleepCtx waits d or until ctx is done; it reports whether d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// abortConn closes the client connection without writing a response.
func abortConn(w http.ResponseWriter) {
	if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
		_ = c.Close()
		return
	}
	// Not hijackable (HTTP/2): aborting the handler resets the stream.
	panic(http.ErrAbortHandler)
}

// discardWriter swallows the response of an operation whose answer is "lost".
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header {
	if d.h == nil {
		d.h = http.Header{}
	}
	return d.h
}
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// JSON forms, with durations as strings.

type faultsJSON struct {
	Latency string      `json:"latency,omitempty"`
	Down    bool        `json:"down,omitempty"`
	Rules   []FaultRule `json:"rules,omitempty"`
}

type faultRuleJSON struct {
	Ops        []Op      `json:"ops,omitempty"`
	Kind       FaultKind `json:"kind"`
	Rate       float64   `json:"rate,omitempty"`
	Count      int       `json:"count,omitempty"`
	RetryAfter int       `json:"retry_after,omitempty"`
	Hold       string    `json:"hold,omitempty"`
	Message    string    `json:"message,omitempty"`
}

func durString(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

func parseDur(name, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s: want a non-negative Go duration such as \"100ms\", got %q", name, v)
	}
	return d, nil
}

// MarshalJSON writes durations as Go duration strings.
func (f Faults) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultsJSON{Latency: durString(f.Latency), Down: f.Down, Rules: f.Rules})
}

// UnmarshalJSON reads durations as Go duration strings.
func (f *Faults) UnmarshalJSON(b []byte) error {
	var j faultsJSON
	if err := strictUnmarshal(b, &j); err != nil {
		return err
	}
	lat, err := parseDur("latency", j.Latency)
	if err != nil {
		return err
	}
	*f = Faults{Latency: lat, Down: j.Down, Rules: j.Rules}
	return nil
}

// MarshalJSON writes Hold as a Go duration string.
func (r FaultRule) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultRuleJSON{Ops: r.Ops, Kind: r.Kind, Rate: r.Rate, Count: r.Count, RetryAfter: r.RetryAfter, Hold: durString(r.Hold), Message: r.Message})
}

// UnmarshalJSON reads Hold as a Go duration string and checks the kind.
func (r *FaultRule) UnmarshalJSON(b []byte) error {
	var j faultRuleJSON
	if err := strictUnmarshal(b, &j); err != nil {
		return err
	}
	switch j.Kind {
	case Fault429, Fault500, Fault400, Fault401, Fault403, FaultDrop, FaultLostResponse, FaultHold:
	default:
		return fmt.Errorf("unknown fault kind %q", j.Kind)
	}
	if j.Rate < 0 || j.Rate > 1 {
		return fmt.Errorf("rate %v outside 0..1", j.Rate)
	}
	hold, err := parseDur("hold", j.Hold)
	if err != nil {
		return err
	}
	*r = FaultRule{Ops: j.Ops, Kind: j.Kind, Rate: j.Rate, Count: j.Count, RetryAfter: j.RetryAfter, Hold: hold, Message: j.Message}
	return nil
}

// strictUnmarshal rejects unknown keys, so a misspelt fault is an error
// rather than a silently healthy fake.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
