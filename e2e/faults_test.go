//go:build e2e

package e2e

// Fault scenarios, each against a real Vault and the fake, with the
// fake's record of live accounts as the verdict. Each prints one FIGURES line.
//
// Every scenario runs by default (make test) in a short version, sized to
// finish in about a minute while still injecting its fault for certain;
// E2E_FAULTS=1 (make test-faults) runs them at full size. Hostile input always runs in full.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

func faultsFull() bool { return os.Getenv("E2E_FAULTS") == "1" }

// rollbackSoon lowers the age at which the engine rolls back WAL entries, so
// a test waits for one of Vault's one-minute rollback ticks, not for minutes.
// The engine refuses a config whose creates could outlast that age (less a
// second): rollbackSoonConfig keeps retry_budget + request_timeout below it.
var (
	rollbackSoon       = []string{"OPENAI_PLUGIN_WAL_ROLLBACK_MIN_AGE=20s"}
	rollbackSoonConfig = map[string]any{"retry_budget": "8s", "request_timeout": "5s"}
)

// engine starts a Vault with the plugin mounted at openai/, configured against
// f with the given extra config and role "r".
func engine(t *testing.T, f *Fake, env []string, config, role map[string]any) *Vault {
	t.Helper()
	v := startVault(t, VaultOptions{})
	registerPlugin(t, v, env...)
	mountPlugin(t, v, "openai")
	writeConfig(t, v, "openai", f, config)
	writeRole(t, v, "openai", "r", role)
	return v
}

// issueMany issues n keys from openai/creds/r at the given concurrency;
// data (may be nil) is computed per request.
func issueMany(v *Vault, n, concurrency int, data func() map[string]any) (creds []*Creds, errs []error, took time.Duration) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan struct{})
	start := time.Now()
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				var d map[string]any
				if data != nil {
					d = data()
				}
				c, err := tryIssue(v, "openai", "r", d)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					creds = append(creds, c)
				}
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	return creds, errs, time.Since(start)
}

func ownedIDs(creds []*Creds) map[string]bool {
	m := map[string]bool{}
	for _, c := range creds {
		m[c.ServiceAccountID] = true
	}
	return m
}

// unowned counts live accounts at the fake that no issued lease owns.
func unowned(f *Fake, owned map[string]bool) int {
	n := 0
	for _, a := range f.LiveAccounts() {
		if !owned[a.ID] {
			n++
		}
	}
	return n
}

func revokePrefixAsync(t *testing.T, v *Vault) {
	t.Helper()
	if _, err := v.Client.Logical().Write("sys/leases/revoke-prefix/openai/creds/r", map[string]any{"sync": false}); err != nil {
		t.Fatalf("revoke-prefix: %v", err)
	}
}

func irrevocableLeases(t *testing.T, v *Vault) int {
	t.Helper()
	s, err := v.Client.Logical().ReadWithData("sys/leases/count", map[string][]string{"type": {"irrevocable"}})
	if err != nil {
		t.Fatalf("counting irrevocable leases: %v", err)
	}
	if s == nil {
		return 0
	}
	n, _ := s.Data["lease_count"].(json.Number).Int64()
	return int(n)
}

// checkVaultLog fails on a panic in the log, or on any of the secrets
// appearing in it (the plugin's log is part of Vault's).
func checkVaultLog(t *testing.T, v *Vault, secrets ...string) (panics int) {
	t.Helper()
	text := v.Log()
	panics = len(grepLines(text, "panic:")) + len(grepLines(text, "runtime error:"))
	if panics > 0 {
		t.Errorf("the Vault log shows %d panic lines", panics)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("the Vault log contains a secret")
			break
		}
	}
	return panics
}

func secretsOf(f *Fake, creds []*Creds) []string {
	out := []string{f.AdminKey()}
	for _, c := range creds {
		out = append(out, c.APIKey)
	}
	return out
}

// pluginErrorLines are error-level lines in the log after offset that come
// from the engine or from revoking its leases.
func pluginErrorLines(v *Vault, offset int) []string {
	text := v.Log()
	if offset > len(text) {
		offset = len(text)
	}
	var out []string
	for _, l := range grepLines(text[offset:], "[ERROR]") {
		if strings.Contains(l, pluginName) || strings.Contains(l, "openai/") {
			out = append(out, l)
		}
	}
	return out
}

// 1. 30% of upstream writes answer 429 with Retry-After: 1. Every issue
// succeeds (retries absorb it) and revoke-prefix converges on its own.
func TestFaultThrottledIssueAndRevoke(t *testing.T) {
	t.Parallel()
	n, conc := 60, 8
	if faultsFull() {
		n, conc = 500, 16
	}
	f := newFake(t)
	// The default config: retries are bounded by retry_budget (30s), not by a
	// count, so sustained 30% throttling with Retry-After 1 fails no issue.
	v := engine(t, f, nil, nil, map[string]any{"ttl": "1h"})
	f.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{{
		Ops: []fakeopenai.Op{fakeopenai.OpCreateServiceAccount, fakeopenai.OpDeleteServiceAccount}, Kind: fakeopenai.Fault429, Rate: 0.3, RetryAfter: 1,
	}}})
	f.ResetFaultCounts()

	creds, errs, took := issueMany(v, n, conc, nil)
	issue429 := f.FaultCounts()[fakeopenai.Fault429]
	// At 30% over n creates, no 429 at all has odds 0.7^60 ~ 5e-10: zero
	// means injection is broken and the scenario proved nothing.
	if issue429 == 0 {
		t.Errorf("no 429 was injected during %d issues", n)
	}
	for _, err := range errs {
		t.Errorf("issue failed under throttling: %v", err)
	}
	if live := len(f.LiveAccounts()); live != len(creds) {
		t.Errorf("%d live accounts for %d issued keys", live, len(creds))
	}

	f.ResetFaultCounts()
	start := time.Now()
	revokePrefixAsync(t, v)
	converge := waitFor(t, 60*time.Second, "zero live accounts after revoke-prefix", func() bool {
		return len(f.LiveAccounts()) == 0
	})
	waitFor(t, 60*time.Second, "Vault to drop the revoked leases", func() bool {
		return len(leasesUnder(t, v, "openai/creds/r/")) == 0
	})
	revoke429 := f.FaultCounts()[fakeopenai.Fault429]
	if revoke429 == 0 {
		t.Errorf("no 429 was injected during the revocation of %d leases", len(creds))
	}
	irrevocable := irrevocableLeases(t, v)
	if irrevocable != 0 {
		t.Errorf("%d irrevocable leases", irrevocable)
	}
	panics := checkVaultLog(t, v, secretsOf(f, creds)...)
	figures(t, "throttled", "issues", n, "concurrency", conc, "failures", len(errs), "issue_429s", issue429,
		"issue_seconds", took, "revoke_429s", revoke429, "live_left", len(f.LiveAccounts()),
		"converge", converge, "revoke_total", time.Since(start), "irrevocable", irrevocable, "panics", panics)
}

// 2. 2,000 leases (short: 60) with a 10s TTL expire together while 20% of
// deletes answer 500: Vault's expiration alone deletes every account within
// 3 minutes.
func TestFaultMassExpiryWithServerErrors(t *testing.T) {
	t.Parallel()
	n, conc := 60, 8
	if faultsFull() {
		n, conc = 2000, 16
	}
	f := newFake(t)
	v := engine(t, f, nil, nil, map[string]any{"ttl": "1h", "max_ttl": "2h"})

	// One common expiry, far enough out that the last lease still gets 10s.
	plannedFill := time.Duration(float64(n) / 40 * float64(time.Second))
	expiry := time.Now().Add(plannedFill + 10*time.Second)
	var lastTTL int
	var mu sync.Mutex
	ttl := func() map[string]any {
		secs := int(math.Ceil(time.Until(expiry).Seconds()))
		if secs < 10 {
			secs = 10
		}
		mu.Lock()
		lastTTL = secs
		mu.Unlock()
		return map[string]any{"ttl": fmt.Sprintf("%ds", secs)}
	}
	creds, errs, took := issueMany(v, n, conc, ttl)
	for i, err := range errs {
		if i < 5 {
			t.Errorf("issue failed: %v", err)
		}
	}
	if len(errs) > 0 {
		t.Fatalf("%d of %d issues failed", len(errs), n)
	}
	latestExpiry := time.Now().Add(time.Duration(lastTTL) * time.Second)
	if latestExpiry.Before(expiry) {
		latestExpiry = expiry
	}
	f.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{{
		Ops: []fakeopenai.Op{fakeopenai.OpDeleteServiceAccount}, Kind: fakeopenai.Fault500, Rate: 0.2,
	}}})
	f.ResetFaultCounts()
	f.ResetCalls()

	time.Sleep(time.Until(expiry))
	converge := waitFor(t, 3*time.Minute, "zero live accounts after mass expiry", func() bool {
		return len(f.LiveAccounts()) == 0
	})
	waitFor(t, time.Minute, "Vault to drop the expired leases", func() bool {
		return len(leasesUnder(t, v, "openai/creds/r/")) == 0
	})
	// At 20% over n deletes, no 500 at all has odds 0.8^60 ~ 2e-6.
	if f.FaultCounts()[fakeopenai.Fault500] == 0 {
		t.Errorf("no 500 was injected while %d leases expired: the scenario proved nothing", n)
	}
	irrevocable := irrevocableLeases(t, v)
	if irrevocable != 0 {
		t.Errorf("%d irrevocable leases", irrevocable)
	}
	panics := checkVaultLog(t, v, secretsOf(f, creds)...)
	figures(t, "mass-expiry", "leases", n, "issue_seconds", took, "expiry_spread", latestExpiry.Sub(expiry),
		"delete_calls", f.Calls()[fakeopenai.OpDeleteServiceAccount], "delete_500s", f.FaultCounts()[fakeopenai.Fault500],
		"live_left", len(f.LiveAccounts()), "converge_after_expiry", converge, "irrevocable", irrevocable, "panics", panics)
}

// An operator deletes accounts by hand at OpenAI: their leases still
// revoke cleanly (404 is success) and nothing logs errors afterwards.
func TestFaultAccountsDeletedByHand(t *testing.T) {
	t.Parallel()
	deleted, kept := 10, 3
	if faultsFull() {
		deleted, kept = 50, 5
	}
	f := newFake(t)
	v := engine(t, f, nil, nil, map[string]any{"ttl": "20s", "max_ttl": "1h"})
	creds, errs, _ := issueMany(v, deleted+kept, 8, nil)
	if len(errs) > 0 {
		t.Fatalf("issue failed: %v", errs[0])
	}
	for _, c := range creds[:deleted] {
		if !f.DeleteAccount(c.ProjectID, c.ServiceAccountID) {
			t.Fatalf("deleting %s by hand failed", c.ServiceAccountID)
		}
	}
	offset := len(v.Log())
	f.ResetCalls()

	// The leases expire on their own; Vault revokes each once.
	start := time.Now()
	waitFor(t, 2*time.Minute, "Vault to revoke every lease", func() bool {
		return len(leasesUnder(t, v, "openai/creds/r/")) == 0
	})
	revoked := time.Since(start)
	if live := len(f.LiveAccounts()); live != 0 {
		t.Errorf("%d accounts live after their leases expired", live)
	}
	if d := f.Calls()[fakeopenai.OpDeleteServiceAccount]; d != deleted+kept {
		t.Errorf("%d delete calls for %d leases: a 404 must settle a revocation, not be retried", d, deleted+kept)
	}
	observed := revoked
	if faultsFull() {
		// Two of Vault's one-minute ticks (rollback, periodic sweep): any
		// error repeating every minute would show here.
		time.Sleep(130 * time.Second)
		observed = time.Since(start)
	}
	noise := pluginErrorLines(v, offset)
	for i, l := range noise {
		if i < 5 {
			t.Errorf("error in the Vault log: %s", v.redact(l))
		}
	}
	// Revocations Vault reports failed (its expiration manager logs each
	// failed attempt before retrying it).
	failures := len(grepLines(v.Log()[offset:], "failed to revoke lease"))
	if failures != 0 {
		t.Errorf("Vault logged %d failed revocations for leases whose accounts were already gone", failures)
	}
	irrevocable := irrevocableLeases(t, v)
	if irrevocable != 0 {
		t.Errorf("%d irrevocable leases", irrevocable)
	}
	panics := checkVaultLog(t, v, secretsOf(f, creds)...)
	figures(t, "deleted-by-hand", "leases", deleted+kept, "deleted_by_hand", deleted, "failures", failures,
		"delete_calls", f.Calls()[fakeopenai.OpDeleteServiceAccount], "live_left", len(f.LiveAccounts()),
		"revoke_after_first_expiry", revoked, "observed", observed, "error_lines", len(noise), "irrevocable", irrevocable, "panics", panics)
}

// The fake creates the account but drops the connection on 10% of
// creates (short: the first 4 of 40). WAL rollback (and tidy after it) leave
// no account that no lease owns.
func TestFaultLostCreateResponses(t *testing.T) {
	t.Parallel()
	n, conc := 40, 4
	rule := fakeopenai.FaultRule{Ops: []fakeopenai.Op{fakeopenai.OpCreateServiceAccount}, Kind: fakeopenai.FaultLostResponse, Count: 4}
	if faultsFull() {
		n, conc = 200, 8
		rule.Count, rule.Rate = 0, 0.1
	}
	f := newFake(t)
	// Vault's rollback manager ticks once a minute; the engine acts on WAL
	// entries older than this.
	v := engine(t, f, rollbackSoon, rollbackSoonConfig, map[string]any{"ttl": "1h"})
	f.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{rule}})
	f.ResetFaultCounts()
	creds, errs, took := issueMany(v, n, conc, nil)
	lost := f.FaultCounts()[fakeopenai.FaultLostResponse]
	f.SetFaults(fakeopenai.Faults{})
	owned := ownedIDs(creds)
	peak := unowned(f, owned)
	if lost == 0 || peak == 0 {
		t.Fatalf("the fault never fired (lost=%d, unowned=%d)", lost, peak)
	}
	if peak != lost {
		t.Errorf("%d unowned accounts for %d lost responses", peak, lost)
	}

	start := time.Now()
	converge := waitFor(t, 3*time.Minute, "rollback to remove every unowned account", func() bool {
		return unowned(f, owned) == 0
	})
	for id := range owned {
		if !f.Has(id) {
			t.Errorf("rollback deleted %s, which a live lease owns", id)
		}
	}
	s, err := v.Client.Logical().Write("openai/tidy", nil)
	if err != nil || s == nil {
		t.Fatalf("tidy: %v", err)
	}
	tidyDeleted, _ := s.Data["deleted"].(json.Number).Int64()
	untracked, _ := s.Data["untracked_marked"].(json.Number).Int64()
	if tidyDeleted != 0 || untracked != 0 {
		t.Errorf("tidy after rollback: deleted=%d untracked_marked=%d, want 0 and 0", tidyDeleted, untracked)
	}
	liveUnowned := unowned(f, owned)

	revokePrefixAsync(t, v)
	waitFor(t, time.Minute, "zero live accounts after revoke-prefix", func() bool { return len(f.LiveAccounts()) == 0 })
	panics := checkVaultLog(t, v, secretsOf(f, creds)...)
	figures(t, "lost-creates", "issues", n, "failures", len(errs), "lost_responses", lost, "unowned_peak", peak,
		"issue_seconds", took, "converge", converge, "unowned_left", liveUnowned, "tidy_deleted", tidyDeleted,
		"live_left", len(f.LiveAccounts()), "panics", panics, "rollback_wait_from", start.Format("15:04:05"))
}

// switchableFake serves the fake on a fixed loopback port that can be shut
// (connections refused) and reopened, as an upstream outage looks.
type switchableFake struct {
	*Fake
	addr string
	mu   sync.Mutex
	srv  *http.Server
}

func newSwitchableFake(t *testing.T) *switchableFake {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := fakeopenai.New(fakeopenai.Options{Logger: log.New(io.Discard, "", 0)})
	srv.FailOnViolations(t)
	s := &switchableFake{Fake: &Fake{Server: srv, URL: "http://" + l.Addr().String() + "/v1"}, addr: l.Addr().String()}
	s.serve(l)
	t.Cleanup(s.down)
	return s
}

func (s *switchableFake) serve(l net.Listener) {
	hs := &http.Server{Handler: s.Server}
	s.mu.Lock()
	s.srv = hs
	s.mu.Unlock()
	go func() { _ = hs.Serve(l) }()
}

// down closes the listener and every connection: new ones are refused.
func (s *switchableFake) down() {
	s.mu.Lock()
	hs := s.srv
	s.srv = nil
	s.mu.Unlock()
	if hs != nil {
		_ = hs.Close()
	}
}

func (s *switchableFake) up(t *testing.T) {
	t.Helper()
	var l net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if l, err = net.Listen("tcp", s.addr); err == nil {
			s.serve(l)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("reopening the fake on %s: %v", s.addr, err)
}

// Upstream refuses connections for 30 seconds (short: 12, still longer
// than a request's retry budget, 8s) during issuance: requests fail with a
// clear error meanwhile, all succeed afterwards, no orphans.
func TestFaultUpstreamDown(t *testing.T) {
	t.Parallel()
	warm, outage, recovery := 3*time.Second, 12*time.Second, 15*time.Second
	if faultsFull() {
		warm, outage, recovery = 10*time.Second, 30*time.Second, 25*time.Second
	}
	sf := newSwitchableFake(t)
	v := engine(t, sf.Fake, rollbackSoon, rollbackSoonConfig, map[string]any{"ttl": "1h"})

	type result struct {
		at  time.Time
		c   *Creds
		err error
	}
	var mu sync.Mutex
	var results []result
	stop := issueLoop(v, "openai", "r", 4, func(c *Creds, err error) {
		mu.Lock()
		results = append(results, result{time.Now(), c, err})
		mu.Unlock()
		if err != nil {
			time.Sleep(200 * time.Millisecond)
		}
	})
	time.Sleep(warm)
	downAt := time.Now()
	sf.down()
	time.Sleep(outage)
	sf.up(t)
	upAt := time.Now()
	time.Sleep(recovery)
	stop()

	// A request that began while down can fail until its retries run out
	// (retry_budget 8s, rollbackSoonConfig); past that, every one must succeed.
	settled := upAt.Add(10 * time.Second)
	var creds []*Creds
	var before, during, after, failedAfter, unclear int
	var sample string
	for _, r := range results {
		switch {
		case r.at.Before(downAt):
			before++
		case r.at.Before(settled):
			during++
		default:
			after++
		}
		if r.err == nil {
			creds = append(creds, r.c)
			continue
		}
		msg := r.err.Error()
		if sample == "" {
			code, errs := responseError(r.err)
			sample = fmt.Sprintf("HTTP %d: %s", code, strings.Join(strings.Fields(v.redact(errs)), " "))
		}
		if !strings.Contains(msg, "OpenAI unreachable") && !strings.Contains(msg, "no answer from OpenAI") {
			unclear++
			if unclear <= 3 {
				t.Errorf("unclear error during the outage: %s", v.redact(msg))
			}
		}
		if r.at.Before(downAt) || r.at.After(settled) {
			failedAfter++
			t.Errorf("issue outside the outage failed at %s: %s", r.at.Format("15:04:05.000"), v.redact(msg))
		}
	}
	failures := len(results) - len(creds)
	if failures == 0 {
		t.Errorf("no issue failed during a %s outage: the scenario proved nothing", outage)
	}
	okAfter := 0
	for _, r := range results {
		if r.err == nil && r.at.After(settled) {
			okAfter++
		}
	}
	if okAfter == 0 {
		t.Errorf("no successful issue after the outage")
	}

	owned := ownedIDs(creds)
	converge := waitFor(t, 3*time.Minute, "no account without a lease", func() bool { return unowned(sf.Fake, owned) == 0 })
	revokePrefixAsync(t, v)
	waitFor(t, time.Minute, "zero live accounts after revoke-prefix", func() bool { return len(sf.LiveAccounts()) == 0 })
	panics := checkVaultLog(t, v, secretsOf(sf.Fake, creds)...)
	figures(t, "upstream-down", "requests", len(results), "failures", failures, "unclear_errors", unclear,
		"requests_before", before, "requests_outage_and_settle", during, "requests_after", after, "failed_outside_outage", failedAfter,
		"ok_after_recovery", okAfter, "orphans_converge", converge, "live_left", len(sf.LiveAccounts()), "panics", panics)
	t.Logf("first error during the outage: %s", sample)
}

// rawRequest sends body (any JSON, or raw bytes) to Vault and returns the status.
func rawRequest(t *testing.T, v *Vault, method, path string, body any) (int, string) {
	t.Helper()
	r := v.Client.NewRequest(method, "/v1/"+path)
	switch b := body.(type) {
	case nil:
	case map[string]any:
		if method == http.MethodDelete { // Vault reads a DELETE's data from the query
			for k, val := range b {
				r.Params.Set(k, fmt.Sprint(val))
			}
		} else if err := r.SetJSONBody(b); err != nil {
			t.Fatal(err)
		}
	case []byte:
		r.BodyBytes = b
	default:
		if err := r.SetJSONBody(b); err != nil {
			t.Fatal(err)
		}
	}
	// Logical() cannot send raw bytes or a body with DELETE, which hostile input needs;
	// RawRequest is deprecated only in favour of those higher-level calls.
	//lint:ignore SA1019 see above
	resp, err := v.Client.RawRequest(r)
	if resp == nil {
		t.Fatalf("%s %s: no response: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// state is everything hostile input must not change.
func state(t *testing.T, v *Vault, f *Fake) string {
	t.Helper()
	var b strings.Builder
	for _, p := range []string{"openai/config", "openai/roles/r"} {
		s, err := v.Client.Logical().Read(p)
		if err != nil {
			t.Fatalf("reading %s: %v", p, err)
		}
		if s != nil {
			delete(s.Data, "last_rotated")
			j, _ := json.Marshal(s.Data)
			fmt.Fprintf(&b, "%s=%s\n", p, j)
		}
	}
	s, err := v.Client.Logical().List("openai/roles")
	if err != nil {
		t.Fatalf("listing roles: %v", err)
	}
	if s != nil {
		fmt.Fprintf(&b, "roles=%v\n", s.Data["keys"])
	}
	ids := []string{}
	for _, a := range f.LiveAccounts() {
		ids = append(ids, a.ID)
	}
	sort.Strings(ids)
	fmt.Fprintf(&b, "accounts=%v leases=%v admin_keys=%d\n", ids, allLeaseIDs(t, v, "openai/"), len(f.LiveAdminKeys()))
	return b.String()
}

// allLeaseIDs lists every lease id Vault holds under prefix, descending into
// folders (sys/leases/lookup lists one level: "creds/" hides every lease).
func allLeaseIDs(t *testing.T, v *Vault, prefix string) []string {
	t.Helper()
	var out []string
	for _, k := range leasesUnder(t, v, prefix) {
		if strings.HasSuffix(k, "/") {
			out = append(out, allLeaseIDs(t, v, prefix+k)...)
			continue
		}
		out = append(out, prefix+k)
	}
	sort.Strings(out)
	return out
}

// Hostile input on every path: each answered 4xx, no panic in the Vault
// log, and no change to config, roles, leases or accounts.
func TestFaultHostileInput(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	v := engine(t, f, nil, nil, map[string]any{"ttl": "10m", "max_ttl": "1h"})
	c := issue(t, v, "openai", "r", nil)
	before := state(t, v, f)
	// The state must name the lease itself, or a lease added or lost by
	// hostile input would go unseen.
	if !strings.Contains(before, c.LeaseID) {
		t.Fatalf("state does not list the issued lease %s:\n%s", c.LeaseID, v.redact(before))
	}

	huge := strings.Repeat("A", 1<<20)
	durations := []any{-1, "-1s", "-9223372036854775808", "9223372036854775807", "1e400", 1e300, "99999999999h", "NaN", "∞", "1h-", true, []any{1}, map[string]any{"a": 1}, huge}
	// Strings that no field accepts; numbers and booleans are added where
	// Vault's weak typing would turn them into a valid value (42 -> "42").
	strs := []any{[]any{"a"}, map[string]any{"x": "y"}, huge, "ünïcødé ✓ \u202e\u0000", "{{ .RoleName }}", "{{ range 100000000 }}x{{ end }}", "../../admin_api_keys"}
	coercible := []any{42, 1.5, true}
	type req struct {
		method, path string
		body         any
	}
	var reqs []req
	for _, d := range durations {
		reqs = append(reqs,
			req{"POST", "openai/roles/r", map[string]any{"ttl": d}},
			req{"POST", "openai/roles/r", map[string]any{"max_ttl": d}},
			req{"POST", "openai/creds/r", map[string]any{"ttl": d}},
			req{"POST", "openai/config", map[string]any{"request_timeout": d}},
			req{"POST", "openai/config", map[string]any{"tidy_interval": d}},
			req{"POST", "openai/config", map[string]any{"rotation_period": d}},
			req{"POST", "openai/config", map[string]any{"admin_api_key_ttl": d}},
		)
	}
	for _, d := range durations {
		if d != true { // weak typing reads true as 1, a valid retry count
			reqs = append(reqs, req{"POST", "openai/config", map[string]any{"max_retries": d}})
		}
	}
	for _, s := range strs {
		reqs = append(reqs,
			req{"POST", "openai/roles/r", map[string]any{"project_id": s}},
			req{"POST", "openai/config", map[string]any{"admin_api_key": s}},
			req{"POST", "openai/config", map[string]any{"admin_api_key_id": s}},
			req{"POST", "openai/config", map[string]any{"base_url": s}},
			req{"POST", "openai/config", map[string]any{"organization_id": s}},
			req{"POST", "openai/tidy", map[string]any{"dry_run": s}},
			req{"DELETE", "openai/config", map[string]any{"force": s}},
		)
	}
	// Since the engine appends its own unique token to every name, any
	// template text is a valid name_template; only these are not.
	for _, s := range []any{[]any{"a"}, map[string]any{"x": "y"}, huge, "{{ range 100000000 }}x{{ end }}", "{{ .Nope }}", "{{"} {
		reqs = append(reqs, req{"POST", "openai/roles/r", map[string]any{"name_template": s}})
	}
	for _, s := range coercible {
		reqs = append(reqs,
			req{"POST", "openai/roles/r", map[string]any{"project_id": s}},
			req{"POST", "openai/config", map[string]any{"admin_api_key": s}},
			req{"POST", "openai/config", map[string]any{"base_url": s}},
		)
	}
	for _, name := range []string{"{{x}}", "a{{.RoleName}}b", "%7B%7Bx%7D%7D", "..", "a%2Fb", "%00", "ü", strings.Repeat("{", 4096), "-x", "x.", "a b"} {
		reqs = append(reqs,
			req{"POST", "openai/roles/" + name, map[string]any{"project_id": fakeopenai.ProjectActive}},
			req{"GET", "openai/creds/" + name, nil},
			req{"DELETE", "openai/roles/" + name, nil},
		)
	}
	reqs = append(reqs, req{"GET", "openai/creds/nope", nil}, req{"POST", "openai/creds/nope", map[string]any{"ttl": "1m"}})
	reqs = append(reqs,
		req{"POST", "openai/roles/r", map[string]any{"project_id": fakeopenai.ProjectArchived}},
		req{"POST", "openai/roles/r", map[string]any{"project_id": "proj_missing"}},
		req{"POST", "openai/roles/r", map[string]any{"ttl": "2h"}}, // above max_ttl 1h
		req{"POST", "openai/config", map[string]any{"base_url": "http://example.com/v1"}},
		req{"POST", "openai/config", map[string]any{"admin_api_key": "sk-admin-wrong0000000000000000"}},
		req{"DELETE", "openai/config", nil}, // a key is live: refused
		req{"PUT", "openai/roles/", map[string]any{"project_id": fakeopenai.ProjectActive}},
	)

	statuses := map[int]int{}
	var server []string
	for _, r := range reqs {
		code, body := rawRequest(t, v, r.method, r.path, r.body)
		statuses[code]++
		if code >= 500 || code < 400 {
			short := r.path
			if len(short) > 60 {
				short = short[:60] + "..."
			}
			in, _ := json.Marshal(r.body)
			server = append(server, fmt.Sprintf("%s %s %.120s -> %d %s", r.method, short, in, code, v.redact(body[:min(200, len(body))])))
		}
	}
	for i, s := range server {
		if i < 10 {
			t.Errorf("not a 4xx: %s", s)
		}
	}
	// Bodies Vault itself cannot parse never reach the engine: Vault answers
	// them (some with its own 500 "malformed JSON"), and they must not
	// change anything either.
	core := map[int]int{}
	for _, body := range [][]byte{[]byte(`{`), []byte(`[]`), []byte(`"x"`), []byte(`{"ttl":`), []byte("\xff\xfe"), []byte(`{"ttl":"1h","ttl":"-1h"}`)} {
		for _, p := range []string{"openai/roles/r", "openai/creds/r", "openai/config"} {
			code, out := rawRequest(t, v, "POST", p, body)
			core[code]++
			if code < 400 || (code >= 500 && !strings.Contains(out, "malformed JSON") && !strings.Contains(out, "duplicate key")) {
				t.Errorf("unparseable body %q on %s: %d %s", body, p, code, v.redact(out[:min(200, len(out))]))
			}
		}
	}
	after := state(t, v, f)
	if after != before {
		t.Errorf("hostile input changed state:\nbefore %s\nafter  %s", v.redact(before), v.redact(after))
	}
	// The engine still works.
	if err := v.Client.Sys().Revoke(c.LeaseID); err != nil {
		t.Errorf("revoke after hostile input: %v", err)
	}
	c2 := issue(t, v, "openai", "r", nil)
	if !f.Has(c2.ServiceAccountID) {
		t.Errorf("issue after hostile input not at the fake")
	}
	panics := checkVaultLog(t, v, f.AdminKey(), c.APIKey, c2.APIKey)
	figures(t, "hostile-input", "requests", len(reqs), "not_4xx", len(server), "statuses", fmt.Sprint(statuses), "unparseable_bodies", fmt.Sprint(core),
		"state_changed", after != before, "panics", panics)
}

// The least-privilege policy for applications (README): read on one role's
// creds, nothing else of the mount.
func TestAppPolicyLeastPrivilege(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	v := engine(t, f, nil, nil, map[string]any{"ttl": "10m"})
	writeRole(t, v, "openai", "other", nil)
	const policy = `
path "openai/creds/r" {
  capabilities = ["read"]
}
`
	if err := v.Client.Sys().PutPolicy("openai-app-r", policy); err != nil {
		t.Fatal(err)
	}
	tok, err := v.Client.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"openai-app-r"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	app, err := v.Client.Clone()
	if err != nil {
		t.Fatal(err)
	}
	app.SetToken(tok.Auth.ClientToken)
	v.AddSecret(tok.Auth.ClientToken)

	s, err := app.Logical().Read("openai/creds/r")
	if key, _ := dataString(s, "api_key"); err != nil || key == "" {
		t.Fatalf("the app cannot issue its key: %v", err)
	}
	v.AddSecret(fmt.Sprint(s.Data["api_key"]))
	// Renewing its own lease works through the default policy.
	if _, err := app.Sys().Renew(s.LeaseID, 60); err != nil {
		t.Errorf("the app cannot renew its lease: %v", err)
	}
	denied := []func() error{
		func() error { _, err := app.Logical().Read("openai/config"); return err },
		func() error {
			_, err := app.Logical().Write("openai/config", map[string]any{"max_retries": 1})
			return err
		},
		func() error { _, err := app.Logical().Read("openai/roles/r"); return err },
		func() error { _, err := app.Logical().Write("openai/roles/r", map[string]any{"ttl": "1h"}); return err },
		func() error { _, err := app.Logical().List("openai/roles"); return err },
		func() error { _, err := app.Logical().Read("openai/creds/other"); return err },
		func() error { _, err := app.Logical().Write("openai/creds/r", map[string]any{"ttl": "1m"}); return err },
		func() error { _, err := app.Logical().Write("openai/tidy", nil); return err },
		func() error { _, err := app.Logical().Write("openai/config/rotate-root", nil); return err },
		func() error { _, err := app.Logical().Delete("openai/config"); return err },
	}
	for i, call := range denied {
		err := call()
		var re *api.ResponseError
		if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
			t.Errorf("call %d: want 403, got %v", i, err)
		}
	}
	checkVaultLog(t, v, f.AdminKey(), fmt.Sprint(s.Data["api_key"]))
}
