package fakeopenai

import (
	"context"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Faults is the set of failures to inject. SetFaults replaces the whole set
// atomically; the zero value means healthy.
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
	Hold       time.Duration // for FaultHold and FaultHoldAnswer
	// Message replaces the error message of an injected error answer. OpenAI
	// echoes part of a wrong key in its 401 message ("Incorrect API key
	// provided: sk-admi*****abcd"), so tests set a key-shaped message to prove
	// the client never lets upstream text carry a key into logs.
	Message string
	// OnFire, if set, is called (in the request's goroutine, before the
	// fault takes effect) each time the rule fires, with the operation it
	// fired on. With FaultHold on OpCreateServiceAccountKey, a test learns
	// the exact moment the second call of a scoped issue has arrived, and
	// can kill the client there.
	OnFire func(Op)
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
	// FaultHoldAnswer performs the operation at once, then holds its answer
	// Hold (or until the client goes away, which then gets none): the
	// resource exists at OpenAI while its creator still waits, so a test can
	// kill the creator at a moment when the result is real but unknown to it.
	FaultHoldAnswer FaultKind = "hold_answer"
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
	return maps.Clone(s.faultCounts)
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

// faultAnswers are the injected faults answered with an OpenAI error.
var faultAnswers = map[FaultKind]struct {
	status     int
	typ        string
	code       *string
	defaultMsg string
}{
	Fault429: {http.StatusTooManyRequests, "rate_limit_exceeded", ptr("rate_limit_exceeded"), "Rate limit reached for requests (injected by the fake)."},
	Fault500: {http.StatusInternalServerError, "server_error", nil, "The server had an error while processing your request (injected by the fake)."},
	Fault400: {http.StatusBadRequest, "invalid_request_error", nil, "Bad request (injected by the fake)."},
	Fault401: {http.StatusUnauthorized, "invalid_request_error", ptr("invalid_api_key"), "Incorrect API key provided (injected by the fake)."},
	Fault403: {http.StatusForbidden, "invalid_request_error", nil, "You have insufficient permissions for this operation (injected by the fake)."},
}

// writeFault answers an error fault (429, 500, 400, 401, 403) as OpenAI
// would; other kinds are not answers, and it reports false.
func writeFault(w http.ResponseWriter, rule FaultRule) bool {
	a, ok := faultAnswers[rule.Kind]
	if !ok {
		return false
	}
	msg := a.defaultMsg
	if rule.Message != "" {
		msg = rule.Message
	}
	if rule.Kind == Fault429 {
		w.Header().Set("Retry-After", strconv.Itoa(max(rule.RetryAfter, 1))) // the spec: minimum 1
	}
	writeError(w, a.status, a.typ, nil, a.code, msg)
	return true
}
