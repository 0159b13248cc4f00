package harness

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// FakeRequests is every request a fake answered, read from its one log line
// per request, so a test can count calls per resource (how often each
// account was deleted) and see when each happened: Calls counts per
// operation only.
type FakeRequests struct {
	mu  sync.Mutex
	all []FakeRequest
}

// FakeRequest is one answered request. Requests an injected fault kept from
// the handler (drop, lost, error answers) are not in the log as answered.
type FakeRequest struct {
	At     time.Time // when the fake logged the answer
	Method string
	Path   string // e.g. /v1/organization/projects/proj_x/service_accounts/svc_y
	Op     fakeopenai.Op
	Status int
}

// ID is the path's last segment: the resource of a get, update or delete.
func (r FakeRequest) ID() string { return r.Path[strings.LastIndexByte(r.Path, '/')+1:] }

// NewRecordingFake is NewFake whose answered requests are recorded.
func NewRecordingFake(t testing.TB) (*Fake, *FakeRequests) {
	t.Helper()
	rec := &FakeRequests{}
	return newFake(t, rec), rec
}

// Write takes the fake's log lines: "METHOD PATH op=OP status=N" for an
// answer; other lines (injected faults) are skipped.
func (r *FakeRequests) Write(p []byte) (int, error) {
	now := time.Now()
	for _, line := range strings.Split(strings.TrimSpace(string(p)), "\n") {
		var q FakeRequest
		var op string
		if n, _ := fmt.Sscanf(line, "%s %s op=%s status=%d", &q.Method, &q.Path, &op, &q.Status); n != 4 {
			continue
		}
		q.At, q.Op = now, fakeopenai.Op(op)
		r.mu.Lock()
		r.all = append(r.all, q)
		r.mu.Unlock()
	}
	return len(p), nil
}

// Of lists the answered requests of op, oldest first.
func (r *FakeRequests) Of(op fakeopenai.Op) []FakeRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []FakeRequest
	for _, q := range r.all {
		if q.Op == op {
			out = append(out, q)
		}
	}
	return out
}

// PerID counts the answered requests of op per resource id (ID).
func (r *FakeRequests) PerID(op fakeopenai.Op) map[string]int {
	out := map[string]int{}
	for _, q := range r.Of(op) {
		out[q.ID()]++
	}
	return out
}
