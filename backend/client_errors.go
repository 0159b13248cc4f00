package backend

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/openai/openai-go/v3"
)

// Every HTTP status the engine reacts to is classified here, so the rest of
// the engine asks questions (not found? throttled? auth?) instead of
// comparing status codes.

// upstreamErr is an OpenAI API failure reduced to what is safe to show: the
// SDK's own error may carry the request, whose headers hold the admin key.
type upstreamErr struct {
	op      string
	status  int
	code    string
	message string
	cause   error // transport errors only; never an *openai.Error
	// mayHaveCreated is set by a create call when any of its attempts ended
	// in a way that does not prove OpenAI created nothing (a transport error,
	// a timeout, a 5xx): the caller must keep its WAL entry.
	mayHaveCreated bool
}

func (e *upstreamErr) Error() string {
	switch {
	case e.status == http.StatusTooManyRequests:
		return fmt.Sprintf("%s: rate limited by OpenAI (HTTP 429) after retries: %s", e.op, e.message)
	case e.status != 0:
		return fmt.Sprintf("%s: OpenAI returned HTTP %d: %s", e.op, e.status, e.message)
	case errors.Is(e.cause, context.DeadlineExceeded):
		// The SDK also ends here when a Retry-After wait would outlast the deadline.
		return fmt.Sprintf("%s: no answer from OpenAI in time (request_timeout, or retries outlasting the request's deadline)", e.op)
	case errors.Is(e.cause, context.Canceled):
		return fmt.Sprintf("%s: cancelled before OpenAI answered", e.op)
	default:
		return fmt.Sprintf("%s: OpenAI unreachable: %s", e.op, redactKeys(fmt.Sprint(e.cause)))
	}
}

func (e *upstreamErr) Unwrap() error { return e.cause }

func upstreamError(op string, err error) error {
	if err == nil {
		return nil
	}
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		msg := redactKeys(apiErr.Message)
		if len(msg) > 500 {
			msg = msg[:500] + "..."
		}
		if msg == "" {
			msg = http.StatusText(apiErr.StatusCode)
		}
		return &upstreamErr{op: op, status: apiErr.StatusCode, code: apiErr.Code, message: msg}
	}
	// Keep the transport failure's kind (refused, reset, deadline) but not
	// the *url.Error wrapper, which repeats the request URL.
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	return &upstreamErr{op: op, cause: err}
}

func httpStatus(err error) int {
	var u *upstreamErr
	if errors.As(err, &u) {
		return u.status
	}
	return 0
}

func isNotFound(err error) bool { return httpStatus(err) == http.StatusNotFound }

// isClientError reports an upstream 4xx other than throttling: the request
// was understood and refused, so nothing was created.
func isClientError(err error) bool {
	s := httpStatus(err)
	return s >= 400 && s < 500 && s != http.StatusTooManyRequests && s != http.StatusRequestTimeout && s != http.StatusConflict
}

// isAuthError: OpenAI rejected the admin key (wrong, revoked, or lacking a scope).
func isAuthError(err error) bool {
	s := httpStatus(err)
	return s == http.StatusUnauthorized || s == http.StatusForbidden
}

// mayHaveCreated reports whether a failed create may still have created
// something at OpenAI (see upstreamErr.mayHaveCreated). Errors that are not
// upstream errors (a storage failure, a bug) are treated as "may have".
func mayHaveCreated(err error) bool {
	var u *upstreamErr
	if errors.As(err, &u) {
		return u.mayHaveCreated
	}
	return err != nil
}

// withMayHaveCreated returns err with its "may have created" mark set to
// may: a caller that made several calls for one create (scoped_create.go)
// knows better than any one of them whether something is left behind. A
// storage failure or a bug stays "may have" whatever may says.
func withMayHaveCreated(err error, may bool) error {
	var u *upstreamErr
	if !errors.As(err, &u) {
		return err
	}
	c := *u
	c.mayHaveCreated = may
	return &c
}

// isThrottled: OpenAI answered 429 and the client's retries ran out.
func isThrottled(err error) bool { return httpStatus(err) == http.StatusTooManyRequests }

// isBadRequest: OpenAI answered 400. On a service-account call this is how
// OpenAI refuses a project that is archived (see account_gone.go); whether it
// is that must be confirmed with the project itself.
func isBadRequest(err error) bool { return httpStatus(err) == http.StatusBadRequest }

// mayBeArchivedProjectRefusal reports an answer that an archived project
// gives to any call on its service accounts: a 400 (ADMIN-API.md). The code
// and message are not contractual, so the project's own status decides
// (projectArchived).
func mayBeArchivedProjectRefusal(err error) bool { return isBadRequest(err) }

// projectArchived is the status OpenAI reports for an archived project.
func projectArchived(p *project) bool { return p != nil && p.Status == "archived" }

// isUnreachable: no HTTP answer at all (refused, reset, timed out).
func isUnreachable(err error) bool {
	var u *upstreamErr
	return errors.As(err, &u) && u.status == 0
}
