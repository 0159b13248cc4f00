package fakeopenai

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/openai/openai-go/v3/option"
)

func TestFault429RetriedBySDK(t *testing.T) {
	s, srv := startFake(t, Options{})
	s.SetFaults(Faults{Rules: []FaultRule{{Ops: []Op{OpCreateServiceAccount}, Kind: Fault429, Count: 1, RetryAfter: 1}}})
	c := newClient(t, srv.URL, s.AdminKey()) // default retries
	start := time.Now()
	if _, err := c.Admin.Organization.Projects.ServiceAccounts.New(context.Background(), ProjectActive, newSA("a")); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("SDK retried after %v, before Retry-After: 1", d)
	}
	if calls := s.Calls()[OpCreateServiceAccount]; calls != 2 {
		t.Fatalf("create calls = %d, want 2", calls)
	}
	if fc := s.FaultCounts(); fc[Fault429] != 1 {
		t.Fatalf("fault counts = %v", fc)
	}
	if got := len(s.LiveAccounts()); got != 1 {
		t.Fatalf("%d accounts", got)
	}
	// The header and envelope on the wire.
	s.SetFaults(Faults{Rules: []FaultRule{{Kind: Fault429, Count: 1, RetryAfter: 7}}})
	code, h, m := rawCall(t, s, "GET", "/v1/organization/projects/"+ProjectActive, s.AdminKey(), "")
	if code != 429 || h.Get("Retry-After") != "7" || errorOf(t, m)["type"] != "rate_limit_exceeded" {
		t.Fatalf("429: %d %q %v", code, h.Get("Retry-After"), m)
	}
	s.SetFaults(Faults{Rules: []FaultRule{{Kind: Fault429, Count: 1}}})
	if _, h, _ := rawCall(t, s, "GET", "/v1/organization/projects/"+ProjectActive, s.AdminKey(), ""); h.Get("Retry-After") != "1" {
		t.Fatalf("unset RetryAfter sent %q, the spec's minimum is 1", h.Get("Retry-After"))
	}
}

func TestFaultRefusals(t *testing.T) {
	s := New(Options{})
	s.FailOnViolations(t)
	path := "/v1/organization/projects/" + ProjectActive + "/service_accounts/svc_acct_x"
	for kind, want := range map[FaultKind]int{Fault400: 400, Fault401: 401, Fault403: 403} {
		s.SetFaults(Faults{Rules: []FaultRule{{Ops: []Op{OpDeleteServiceAccount}, Kind: kind, Count: 1, Message: "custom sk-test-message"}}})
		code, _, m := rawCall(t, s, "DELETE", path, s.AdminKey(), "")
		if e := errorOf(t, m); code != want || e["message"] != "custom sk-test-message" {
			t.Fatalf("%s: %d %v", kind, code, m)
		}
		if code, _, _ := rawCall(t, s, "DELETE", path, s.AdminKey(), ""); code != 404 {
			t.Fatalf("%s: after Count, %d, want the real 404", kind, code)
		}
	}
	if got := s.FaultCounts(); got[Fault400] != 1 || got[Fault401] != 1 || got[Fault403] != 1 {
		t.Fatalf("fault counts %v", got)
	}
}

func TestFault500(t *testing.T) {
	s := New(Options{})
	s.SetFaults(Faults{Rules: []FaultRule{{Ops: []Op{OpGetProject}, Kind: Fault500, Count: 2}}})
	for i := range 3 {
		code, _, m := rawCall(t, s, "GET", "/v1/organization/projects/"+ProjectActive, s.AdminKey(), "")
		want := 500
		if i == 2 {
			want = 200 // Count exhausted
		}
		if code != want {
			t.Fatalf("call %d: %d, want %d", i, code, want)
		}
		if code == 500 && errorOf(t, m)["type"] != "server_error" {
			t.Fatalf("500 envelope: %v", m)
		}
	}
	// Rules only hit their ops.
	if code, _, _ := rawCall(t, s, "GET", "/v1/organization/projects/"+ProjectActive+"/service_accounts", s.AdminKey(), ""); code != 200 {
		t.Fatal(code)
	}
}

func TestFaultRate(t *testing.T) {
	s := New(Options{})
	s.SetFaults(Faults{Rules: []FaultRule{{Kind: Fault500, Rate: 1}}})
	for range 20 {
		if code, _, _ := rawCall(t, s, "GET", "/v1/organization/projects/"+ProjectActive, s.AdminKey(), ""); code != 500 {
			t.Fatalf("rate 1 let a request through: %d", code)
		}
	}
	s.SetFaults(Faults{Rules: []FaultRule{{Kind: Fault500, Rate: 0.5}}})
	failed := 0
	for range 400 {
		if code, _, _ := rawCall(t, s, "GET", "/v1/organization/projects/"+ProjectActive, s.AdminKey(), ""); code == 500 {
			failed++
		}
	}
	if failed < 120 || failed > 280 { // ~10 sigma either way
		t.Fatalf("rate 0.5 failed %d of 400", failed)
	}
	s.SetFaults(Faults{})
	if code, _, _ := rawCall(t, s, "GET", "/v1/organization/projects/"+ProjectActive, s.AdminKey(), ""); code != 200 {
		t.Fatalf("healthy again: %d", code)
	}
}

func TestFaultLostResponseLeavesAccount(t *testing.T) {
	s, srv := startFake(t, Options{})
	s.SetFaults(Faults{Rules: []FaultRule{{Ops: []Op{OpCreateServiceAccount}, Kind: FaultLostResponse, Count: 1}}})
	c := newClient(t, srv.URL, s.AdminKey(), option.WithMaxRetries(0))
	_, err := c.Admin.Organization.Projects.ServiceAccounts.New(context.Background(), ProjectActive, newSA("orphan"))
	if err == nil || statusOf(err) != 0 {
		t.Fatalf("lost response reached the client: %v", err)
	}
	live := s.LiveAccounts()
	if len(live) != 1 || live[0].Name != "orphan" {
		t.Fatalf("live = %+v, want the orphan", live)
	}
	if s.FaultCounts()[FaultLostResponse] != 1 {
		t.Fatalf("fault counts = %v", s.FaultCounts())
	}
}

func TestFaultDropLeavesNothing(t *testing.T) {
	s, srv := startFake(t, Options{})
	s.SetFaults(Faults{Rules: []FaultRule{{Ops: []Op{OpCreateServiceAccount}, Kind: FaultDrop, Count: 1}}})
	c := newClient(t, srv.URL, s.AdminKey(), option.WithMaxRetries(0))
	_, err := c.Admin.Organization.Projects.ServiceAccounts.New(context.Background(), ProjectActive, newSA("never"))
	if err == nil || statusOf(err) != 0 {
		t.Fatalf("dropped request answered: %v", err)
	}
	if n := len(s.LiveAccounts()); n != 0 {
		t.Fatalf("drop created %d accounts", n)
	}
	// The SDK retries connection errors: with retries the next attempt succeeds.
	s.SetFaults(Faults{Rules: []FaultRule{{Ops: []Op{OpCreateServiceAccount}, Kind: FaultDrop, Count: 1}}})
	retrying := newClient(t, srv.URL, s.AdminKey(), option.WithMaxRetries(1))
	if _, err := retrying.Admin.Organization.Projects.ServiceAccounts.New(context.Background(), ProjectActive, newSA("second try")); err != nil {
		t.Fatal(err)
	}
	if n := len(s.LiveAccounts()); n != 1 {
		t.Fatalf("%d accounts after retried drop", n)
	}
	if calls := s.Calls()[OpCreateServiceAccount]; calls != 3 {
		t.Fatalf("create calls = %d, want 3", calls)
	}
}

func TestFaultDown(t *testing.T) {
	s, srv := startFake(t, Options{})
	s.SetFaults(Faults{Down: true})
	c := newClient(t, srv.URL, s.AdminKey(), option.WithMaxRetries(0))
	if _, err := c.Admin.Organization.Projects.Get(context.Background(), ProjectActive); err == nil || statusOf(err) != 0 {
		t.Fatalf("down server answered: %v", err)
	}
	// The control endpoints stay up, so a test can heal the fake.
	resp, err := http.Get(srv.URL + "/_fake/accounts")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("control while down: %d", resp.StatusCode)
	}
	if s.FaultCounts()[FaultDown] != 1 {
		t.Fatalf("fault counts = %v", s.FaultCounts())
	}
	s.SetFaults(Faults{})
	if _, err := c.Admin.Organization.Projects.Get(context.Background(), ProjectActive); err != nil {
		t.Fatal(err)
	}
}

func TestLatencyRespectsCancellation(t *testing.T) {
	s, srv := startFake(t, Options{})
	s.SetFaults(Faults{Latency: 10 * time.Second})
	c := newClient(t, srv.URL, s.AdminKey(), option.WithMaxRetries(0))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Admin.Organization.Projects.ServiceAccounts.New(ctx, ProjectActive, newSA("late"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	// The handler gives up with the client: closing the server (which waits
	// for handlers) is quick, and nothing was created.
	srv.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("handler outlived its request by %v", d)
	}
	if n := len(s.LiveAccounts()); n != 0 {
		t.Fatalf("cancelled request created %d accounts", n)
	}

	// Latency delays a request that waits for it.
	s2, srv2 := startFake(t, Options{})
	s2.SetFaults(Faults{Latency: 150 * time.Millisecond})
	c2 := newClient(t, srv2.URL, s2.AdminKey())
	start = time.Now()
	if _, err := c2.Admin.Organization.Projects.Get(context.Background(), ProjectActive); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("answered in %v despite 150ms latency", d)
	}
}

func TestFaultHoldCompletesAfterClientLeaves(t *testing.T) {
	s, srv := startFake(t, Options{})
	s.SetFaults(Faults{Rules: []FaultRule{{Ops: []Op{OpCreateServiceAccount}, Kind: FaultHold, Count: 1, Hold: 300 * time.Millisecond}}})
	c := newClient(t, srv.URL, s.AdminKey(), option.WithMaxRetries(0))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Admin.Organization.Projects.ServiceAccounts.New(ctx, ProjectActive, newSA("held")); err == nil {
		t.Fatal("held request answered before the hold ended")
	}
	if n := len(s.LiveAccounts()); n != 0 {
		t.Fatalf("created before the hold ended: %d", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(s.LiveAccounts()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if live := s.LiveAccounts(); len(live) != 1 || live[0].Name != "held" {
		t.Fatalf("after the hold: %+v", live)
	}
}

// FaultHoldAnswer creates at once and holds the answer: the account exists
// while the client still waits, and a client that gives up gets nothing.
func TestFaultHoldAnswerCreatesFirst(t *testing.T) {
	s, srv := startFake(t, Options{})
	fired := make(chan struct{}, 1)
	s.SetFaults(Faults{Rules: []FaultRule{{Ops: []Op{OpCreateServiceAccount}, Kind: FaultHoldAnswer, Count: 2, Hold: time.Minute,
		OnFire: func(Op) { fired <- struct{}{} }}}})
	c := newClient(t, srv.URL, s.AdminKey(), option.WithMaxRetries(0))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Admin.Organization.Projects.ServiceAccounts.New(ctx, ProjectActive, newSA("held"))
		errc <- err
	}()
	<-fired
	deadline := time.Now().Add(5 * time.Second)
	for len(s.LiveAccounts()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if live := s.LiveAccounts(); len(live) != 1 || live[0].Name != "held" {
		t.Fatalf("while the answer is held: %+v", live)
	}
	select {
	case err := <-errc:
		t.Fatalf("answered while held: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("a client that gave up got an answer")
	}

	// A short hold answers normally once it ends.
	s.SetFaults(Faults{Rules: []FaultRule{{Ops: []Op{OpCreateServiceAccount}, Kind: FaultHoldAnswer, Count: 1, Hold: 50 * time.Millisecond}}})
	sa, err := c.Admin.Organization.Projects.ServiceAccounts.New(context.Background(), ProjectActive, newSA("late"))
	if err != nil || sa.Name != "late" {
		t.Fatalf("after a short hold: %v %+v", err, sa)
	}
}
