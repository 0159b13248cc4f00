package fakeopenai

import (
	"fmt"
	"net/http"
	"strings"
)

// A contract violation is a bug: in the client when its request breaks the
// contract, in the fake when its answer does. The fake records each one and
// makes it loud on the wire, so the test driving the client fails even if it
// never looks at the record:
//
//   - an answer that breaks the contract is replaced by a 500 naming the
//     violation (the client may retry, but the test sees errors);
//   - a request that breaks it and that the fake would have served (the fake
//     was more lenient than the contract) is answered 400 instead; one the
//     fake already refused keeps its refusal, which names the field.
//
// Tests should also assert at cleanup that the record is empty
// (FailOnViolations), since a client can swallow an error.

// violationCode marks the loud answers, so they are easy to tell from
// OpenAI-like refusals in logs.
const violationCode = "fake_contract_violation"

// maxViolations bounds the record; a broken client can send thousands.
const maxViolations = 1000

// validate checks x against the contract and records what breaks it. With a
// non-nil w it answers a loud error in place of the fake's answer when one is
// due, and reports whether it did.
func (s *Server) validate(w http.ResponseWriter, x exchange) (answered bool) {
	op, reqErrs, respErrs := s.contract.check(x)
	where := x.req.Method + " " + x.req.URL.Path
	var lines []string
	for _, e := range reqErrs {
		lines = append(lines, "request "+where+": "+scrub(e))
	}
	for _, e := range respErrs {
		lines = append(lines, fmt.Sprintf("answer %d to %s: %s", x.status, where, scrub(e)))
	}
	s.vmu.Lock()
	if x.status != 0 {
		s.seen[fmt.Sprintf("%s %d", op, x.status)] = true
	}
	for _, l := range lines {
		if len(s.violations) < maxViolations {
			s.violations = append(s.violations, l)
		}
	}
	s.vmu.Unlock()
	for _, l := range lines {
		s.logf("CONTRACT VIOLATION %s", l)
		if s.onViolation != nil {
			s.onViolation(l)
		}
	}
	if w == nil {
		return false
	}
	switch {
	case len(respErrs) > 0:
		writeError(w, http.StatusInternalServerError, "server_error", nil, ptr(violationCode),
			"fakeopenai: the fake's answer breaks OpenAI's API contract (a bug in the fake): "+firstLine(respErrs))
		return true
	case len(reqErrs) > 0 && x.status/100 == 2:
		writeError(w, http.StatusBadRequest, "invalid_request_error", nil, ptr(violationCode),
			"fakeopenai: the request breaks OpenAI's API contract (a bug in the client): "+firstLine(reqErrs))
		return true
	}
	return false
}

func firstLine(errs []error) string {
	l, _, _ := strings.Cut(scrub(errs[0]), "\n")
	return l
}

// Violations returns every contract violation seen so far (key values
// masked), oldest first. Empty when the contract is off (SkipContract).
func (s *Server) Violations() []string {
	s.vmu.Lock()
	defer s.vmu.Unlock()
	return append([]string(nil), s.violations...)
}

// TakeViolations returns the violations seen so far and forgets them, for
// tests that break the contract on purpose.
func (s *Server) TakeViolations() []string {
	s.vmu.Lock()
	defer s.vmu.Unlock()
	v := s.violations
	s.violations = nil
	return v
}

// TB is the part of testing.TB that FailOnViolations uses.
type TB interface {
	Helper()
	Cleanup(func())
	Errorf(format string, args ...any)
}

// FailOnViolations makes t fail at cleanup if any exchange with the fake
// broke the contract. Every test that drives a client against the fake
// should call it.
func (s *Server) FailOnViolations(t TB) {
	t.Helper()
	t.Cleanup(func() {
		for _, v := range s.Violations() {
			t.Errorf("fakeopenai contract violation: %s", v)
		}
	})
}
