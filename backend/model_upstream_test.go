package backend

import (
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// The model test's view of OpenAI: the in-process fake behind a handler that
// injects one planned fault per request, in order, so a seed reproduces the
// same sequence of upstream answers. Plain faults (429, 500, lost response,
// dropped connection) are the fake's own, armed for exactly one request; a
// "done then 502" (OpenAI did the work, a proxy lost the answer) is made
// here, since it needs the fake to act and the client to see a 5xx.

type modelFault int

const (
	mfOK modelFault = iota
	mf429
	mf500
	mfLost // the fake acts, then closes the connection (transport error)
	mfDrop // the fake closes the connection without acting
	mfDone502
	// mfDone502Rotate acts, rotates the admin key through the backend while
	// the caller still waits, then answers 502: the caller's retry meets
	// the rotated-away key (issue 9, defect 5).
	mfDone502Rotate
)

func (f modelFault) String() string {
	return [...]string{"ok", "429", "500", "lost", "drop", "done502", "done502+rotate"}[f]
}

// modelUpstream is shared by the model's two organizations (two fakes).
type modelUpstream struct {
	mu   sync.Mutex
	plan map[fakeopenai.Op][]modelFault
	// rotate runs mfDone502Rotate's rotation; set by the model.
	rotate func()
	// injected counts faults actually served, for the run's summary.
	injected map[modelFault]int
}

func newModelUpstream() *modelUpstream {
	return &modelUpstream{plan: map[fakeopenai.Op][]modelFault{}, injected: map[modelFault]int{}}
}

func (u *modelUpstream) setPlan(op fakeopenai.Op, faults ...modelFault) {
	u.mu.Lock()
	u.plan[op] = append([]modelFault(nil), faults...)
	u.mu.Unlock()
}

func (u *modelUpstream) clearPlans() {
	u.mu.Lock()
	u.plan = map[fakeopenai.Op][]modelFault{}
	u.mu.Unlock()
}

func (u *modelUpstream) next(op fakeopenai.Op) modelFault {
	u.mu.Lock()
	defer u.mu.Unlock()
	q := u.plan[op]
	if len(q) == 0 {
		return mfOK
	}
	u.plan[op] = q[1:]
	u.injected[q[0]]++
	return q[0]
}

// handler serves one organization's fake through the plan.
func (u *modelUpstream) handler(fake *fakeopenai.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := modelClassify(r)
		f := mfOK
		if op != "" {
			f = u.next(op)
		}
		fw := &fastRetryWriter{ResponseWriter: w}
		switch f {
		case mfOK:
			fake.ServeHTTP(fw, r)
		case mf429, mf500, mfLost, mfDrop:
			kind := map[modelFault]fakeopenai.FaultKind{
				mf429: fakeopenai.Fault429, mf500: fakeopenai.Fault500,
				mfLost: fakeopenai.FaultLostResponse, mfDrop: fakeopenai.FaultDrop,
			}[f]
			// Requests reach the fake one at a time (the model is
			// sequential), so a one-shot rule hits exactly this one.
			fake.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{{Ops: []fakeopenai.Op{op}, Kind: kind, Count: 1, RetryAfter: 1}}})
			fake.ServeHTTP(fw, r)
			fake.SetFaults(fakeopenai.Faults{})
		case mfDone502, mfDone502Rotate:
			fake.ServeHTTP(&modelDiscardWriter{h: http.Header{}}, r)
			if f == mfDone502Rotate && u.rotate != nil {
				u.rotate()
			}
			fw.Header().Set("Content-Type", "application/json")
			fw.WriteHeader(http.StatusBadGateway)
			_, _ = fw.Write([]byte(`{"error":{"message":"Bad gateway (injected by the model test).","type":"server_error","param":null,"code":null}}`))
		}
	})
}

// fastRetryWriter turns every retryable answer's wait into 1 ms
// (Retry-After-Ms, which the SDK reads before Retry-After), so thousands of
// retried steps fit in a unit test. What is retried, and how often, is
// unchanged.
type fastRetryWriter struct{ http.ResponseWriter }

func (w *fastRetryWriter) WriteHeader(code int) {
	if code == http.StatusTooManyRequests || code >= 500 {
		w.Header().Del("Retry-After")
		w.Header().Set("Retry-After-Ms", strconv.Itoa(1))
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets the fake hijack the connection for lost responses.
func (w *fastRetryWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type modelDiscardWriter struct{ h http.Header }

func (d *modelDiscardWriter) Header() http.Header         { return d.h }
func (d *modelDiscardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *modelDiscardWriter) WriteHeader(int)             {}

// modelClassify names the Admin API operation of a request ("" for others).
func modelClassify(r *http.Request) fakeopenai.Op {
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/organization/")
	if !ok {
		return ""
	}
	s := strings.Split(rest, "/")
	switch {
	case len(s) == 3 && s[0] == "projects" && s[2] == "service_accounts" && r.Method == http.MethodPost:
		return fakeopenai.OpCreateServiceAccount
	case len(s) == 3 && s[0] == "projects" && s[2] == "service_accounts" && r.Method == http.MethodGet:
		return fakeopenai.OpListServiceAccounts
	case len(s) == 4 && s[0] == "projects" && s[2] == "service_accounts" && r.Method == http.MethodDelete:
		return fakeopenai.OpDeleteServiceAccount
	case len(s) == 5 && s[0] == "projects" && s[2] == "service_accounts" && s[4] == "api_keys" && r.Method == http.MethodPost:
		return fakeopenai.OpCreateServiceAccountKey
	case len(s) == 4 && s[0] == "projects" && s[2] == "api_keys" && r.Method == http.MethodPost:
		return fakeopenai.OpUpdateProjectKey
	case len(s) == 2 && s[0] == "projects" && r.Method == http.MethodGet:
		return fakeopenai.OpGetProject
	case len(s) == 1 && s[0] == "admin_api_keys" && r.Method == http.MethodPost:
		return fakeopenai.OpCreateAdminKey
	case len(s) == 1 && s[0] == "admin_api_keys" && r.Method == http.MethodGet:
		return fakeopenai.OpListAdminKeys
	case len(s) == 2 && s[0] == "admin_api_keys" && r.Method == http.MethodGet:
		return fakeopenai.OpGetAdminKey
	case len(s) == 2 && s[0] == "admin_api_keys" && r.Method == http.MethodDelete:
		return fakeopenai.OpDeleteAdminKey
	}
	return ""
}
