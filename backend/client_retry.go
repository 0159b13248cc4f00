package backend

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/openai/openai-go/v3/option"
)

// callGuard is one call's retry policy on top of the SDK's own retries
// (which honour Retry-After and back off): it lets the SDK retry 429, 408,
// 409, 5xx and connection errors only while the next attempt would still
// begin within the retry budget, and for creates it records whether any
// attempt may have created something. Each page of a list is a request of
// its own with a fresh budget.
type callGuard struct {
	budget time.Duration
	cancel context.CancelFunc

	mu        sync.Mutex
	start     time.Time // first attempt of the current request
	attempts  int
	ambiguous int // attempts that ended without proving nothing was done
	// stoppedBy is the connection error after which the guard ended the
	// call (by cancelling it: the SDK retries those regardless of headers).
	stoppedBy error
}

// guard derives the call's context; done must be called when it returns.
func (c *sdkClient) guard(ctx context.Context) (*callGuard, context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	return &callGuard{budget: c.budget, cancel: cancel}, ctx, cancel
}

// guardCreate is guard for a create, whose whole call is also bounded by
// callLimit so that it ends before the WAL entry guarding it can be rolled
// back.
func (c *sdkClient) guardCreate(ctx context.Context) (*callGuard, context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, c.callLimit)
	g, ctx, done := c.guard(ctx)
	return g, ctx, func() { done(); cancel() }
}

func (g *callGuard) option() option.RequestOption { return option.WithMiddleware(g.middleware) }

func (g *callGuard) middleware(req *http.Request, next option.MiddlewareNext) (*http.Response, error) {
	retryCount := req.Header.Get("X-Stainless-Retry-Count")
	g.mu.Lock()
	if g.start.IsZero() || retryCount == "0" {
		g.start = time.Now()
	}
	start := g.start
	g.mu.Unlock()

	res, err := next(req)

	g.mu.Lock()
	defer g.mu.Unlock()
	g.attempts++
	if attemptMayHaveActed(res, err) {
		g.ambiguous++
	}
	if !sdkWillRetry(res, err) {
		return res, err
	}
	n, _ := strconv.Atoi(retryCount)
	end := start.Add(g.budget)
	// The attempt's context carries the call's deadline and, within it, the
	// attempt's own request_timeout, which the SDK also applies to the wait
	// before the next attempt: a wait past either would end in a bare
	// "deadline exceeded" instead of this attempt's answer.
	if d, ok := req.Context().Deadline(); ok && d.Before(end) {
		end = d
	}
	if time.Now().Add(retryWait(res, n)).Before(end) {
		return res, err
	}
	// The next attempt would begin past the budget: end the call with this
	// attempt's answer, which says what went wrong (throttled, 5xx, down).
	if res != nil {
		res.Header.Set("X-Should-Retry", "false")
		return res, err
	}
	g.stoppedBy = err
	g.cancel()
	return res, err
}

// attemptMayHaveActed: an attempt proves OpenAI did nothing only when it was
// refused with a 4xx other than 408 and 409 (429 included). No answer, a
// 5xx, 408, 409, or a success whose body was then lost may each have acted.
func attemptMayHaveActed(res *http.Response, err error) bool {
	if err != nil || res == nil {
		return true
	}
	s := res.StatusCode
	return s < 400 || s >= 500 || s == http.StatusRequestTimeout || s == http.StatusConflict
}

// sdkWillRetry mirrors the SDK's own decision (requestconfig.shouldRetry).
func sdkWillRetry(res *http.Response, err error) bool {
	if res == nil {
		return err != nil
	}
	switch res.Header.Get("X-Should-Retry") {
	case "true":
		return true
	case "false":
		return false
	}
	s := res.StatusCode
	return s == http.StatusRequestTimeout || s == http.StatusConflict || s == http.StatusTooManyRequests || s >= 500
}

// retryWait is how long the SDK will wait before retry n+1: Retry-After-Ms
// or Retry-After when given, else its backoff of 0.5s doubling to 8s.
func retryWait(res *http.Response, n int) time.Duration {
	if res != nil {
		if v, err := strconv.ParseFloat(res.Header.Get("Retry-After-Ms"), 64); err == nil && v >= 0 {
			return time.Duration(v * float64(time.Millisecond))
		}
		ra := res.Header.Get("Retry-After")
		if v, err := strconv.ParseFloat(ra, 64); err == nil && v >= 0 {
			return time.Duration(v * float64(time.Second))
		}
		if t, err := time.Parse(time.RFC1123, ra); err == nil {
			return time.Until(t)
		}
	}
	wait := 8 * time.Second
	if n < 4 {
		wait = (500 * time.Millisecond) << n
	}
	return wait
}

// upstreamError classifies the call's error; a call the guard ended after a
// connection error reports that error, not the cancellation.
func (g *callGuard) upstreamError(op string, err error) error {
	if err == nil {
		return nil
	}
	g.mu.Lock()
	stoppedBy := g.stoppedBy
	g.mu.Unlock()
	if stoppedBy != nil && errors.Is(err, context.Canceled) {
		err = stoppedBy
	}
	return upstreamError(op, err)
}

// createError is upstreamError for a create: it marks the error when any
// attempt may have created something, so the caller keeps its WAL entry.
func (g *callGuard) createError(op string, err error) error {
	err = g.upstreamError(op, err)
	var u *upstreamErr
	if errors.As(err, &u) {
		g.mu.Lock()
		u.mayHaveCreated = g.ambiguous > 0
		g.mu.Unlock()
	}
	return err
}

// outcome of a successful create: how many attempts it took, and whether an
// attempt before the successful one may have created a twin.
func (g *callGuard) outcome() (attempts int, earlierMayHaveCreated bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.attempts, g.ambiguous > 1
}
