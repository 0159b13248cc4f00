// One request's way through the fake: body read, base faults, routing,
// injected faults, the handler, then the contract check of the answer.

package fakeopenai

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// ServeHTTP serves the OpenAI API under /v1 and the control endpoints under /_fake/.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_fake/") {
		s.serveControl(w, r)
		return
	}
	op, args, status := resolve(r.Method, r.URL.Path)
	if op != "" {
		s.countCall(op)
	}
	// Read the body up front: net/http notices a client hanging up (and
	// cancels r.Context()) only once the body has been consumed, and
	// Latency must end when the client gives up. The contract check needs
	// the bytes too.
	var reqBody []byte
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		_ = r.Body.Close()
		if err != nil {
			return
		}
		reqBody = b
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	// Every answer goes through out; with the contract on, it is held back,
	// checked, and only then written to w.
	out := http.ResponseWriter(w)
	var held *heldResponse
	if s.contract != nil {
		held = &heldResponse{header: http.Header{}}
		out = held
	}
	noAnswer := func() {
		if s.contract != nil {
			s.validate(nil, exchange{req: r, reqBody: reqBody})
		}
		abortConn(w)
	}
	latency, down := s.baseFaults()
	if down {
		s.logf("%s %s op=%s fault=down", r.Method, r.URL.Path, op)
		noAnswer()
		return
	}
	if latency > 0 && !sleepCtx(r.Context(), latency) {
		return
	}
	if status != http.StatusOK {
		msg := fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path)
		if status == http.StatusMethodNotAllowed {
			msg = fmt.Sprintf("Method %s not allowed on %s", r.Method, r.URL.Path)
		}
		writeError(out, status, "invalid_request_error", nil, nil, msg)
		s.finish(w, r, reqBody, held)
		return
	}
	if rule, fired := s.pickFault(op); fired {
		s.logf("%s %s op=%s fault=%s", r.Method, r.URL.Path, op, rule.Kind)
		if rule.OnFire != nil {
			rule.OnFire(op)
		}
		switch rule.Kind {
		case FaultDrop:
			noAnswer()
			return
		case FaultLostResponse:
			s.handle(&discardWriter{}, r, op, args)
			noAnswer()
			return
		case FaultHold:
			time.Sleep(rule.Hold)
		case FaultHoldAnswer:
			s.holdAnswer(w, r, reqBody, op, args, rule.Hold)
			return
		default:
			if writeFault(out, rule) {
				s.finish(w, r, reqBody, held)
				return
			}
		}
	}
	sw := &statusWriter{ResponseWriter: out, status: http.StatusOK}
	s.handle(sw, r, op, args)
	s.logf("%s %s op=%s status=%d", r.Method, r.URL.Path, op, sw.status)
	s.finish(w, r, reqBody, held)
}

// holdAnswer performs op into a buffer, waits hold unless the client hangs up
// first (then it gets no answer), and sends the answer as finish would.
func (s *Server) holdAnswer(w http.ResponseWriter, r *http.Request, reqBody []byte, op Op, args []string, hold time.Duration) {
	held := &heldResponse{header: http.Header{}}
	sw := &statusWriter{ResponseWriter: held, status: http.StatusOK}
	s.handle(sw, r, op, args)
	s.logf("%s %s op=%s status=%d", r.Method, r.URL.Path, op, sw.status)
	if !sleepCtx(r.Context(), hold) {
		return
	}
	if s.contract != nil {
		s.finish(w, r, reqBody, held)
		return
	}
	for k, v := range held.header {
		w.Header()[k] = v
	}
	w.WriteHeader(max(held.status, http.StatusOK))
	_, _ = w.Write(held.body.Bytes())
}

// finish checks a held answer against the contract and writes it to w; a
// violation is recorded and replaced by a loud error (see validate).
func (s *Server) finish(w http.ResponseWriter, r *http.Request, reqBody []byte, held *heldResponse) {
	if held == nil {
		return
	}
	status := held.status
	if status == 0 {
		status = http.StatusOK
	}
	body := held.body.Bytes()
	if s.validate(w, exchange{req: r, reqBody: reqBody, status: status, header: held.header, body: body}) {
		return
	}
	for k, v := range held.header {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// heldResponse records an answer so it can be checked before it is sent.
type heldResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (h *heldResponse) Header() http.Header { return h.header }

func (h *heldResponse) WriteHeader(code int) {
	if h.status == 0 {
		h.status = code
	}
}

func (h *heldResponse) Write(b []byte) (int, error) {
	if h.status == 0 {
		h.status = http.StatusOK
	}
	return h.body.Write(b)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
