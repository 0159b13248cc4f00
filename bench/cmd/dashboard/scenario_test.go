//go:build bench

package main

import (
	"context"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vault-plugin-openai/vault-plugin-openai/e2e/harness"
	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// TestMain builds the plugin (as the e2e suite does) for the scenario.
func TestMain(m *testing.M) {
	harness.Main(m, "../../..", harness.Build{}, nil)
}

// TestDashboardScenario records a run of the engine on the real Vault and
// draws the dashboard from it (make dashboard). The run, over
// DASHBOARD_DURATION (default 6m): keys issued at a varying pace under two
// roles, renewed and revoked, a third role's keys expiring; a key over its
// token budget killed by the periodic function; issues refused by a
// live-key cap, by OpenAI's 400 and by a stretch of 500s; a lost create
// answer rolled back by Vault's rollback tick; the upstream latency raised
// for a while; one admin-key rotation. The metrics path is scraped every 5
// s throughout. Writes DASHBOARD_OUT (default: the test's temp dir) and the
// recording beside it.
func TestDashboardScenario(t *testing.T) {
	d := 6 * time.Minute
	if s := os.Getenv("DASHBOARD_DURATION"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			t.Fatalf("DASHBOARD_DURATION: %v", err)
		}
	}
	out := os.Getenv("DASHBOARD_OUT")
	if out == "" {
		out = filepath.Join(t.TempDir(), "dashboard.png")
	}
	dash := filepath.Join(harness.Suite.RepoRoot, "examples", "grafana", "openai-engine-dashboard.json")

	v := harness.StartVault(t, harness.VaultOptions{})
	f := harness.NewFake(t)
	const baseLatency = 40 * time.Millisecond
	f.SetFaults(fakeopenai.Faults{Latency: baseLatency})
	// A rollback age above retry_budget + request_timeout, short enough that
	// Vault's one-minute rollback tick handles the lost create within the run.
	harness.RegisterPlugin(t, v, "OPENAI_PLUGIN_WAL_ROLLBACK_MIN_AGE=10s")
	harness.MountPlugin(t, v, "openai")
	harness.WriteConfig(t, v, "openai", f, map[string]any{"retry_budget": "3s", "request_timeout": "5s"})
	perCall := int64(fakeopenai.ResponseOutputTokens) + fakeopenai.TextTokens("Say hello.")
	harness.WriteRole(t, v, "openai", "app", map[string]any{"ttl": "10m"})
	harness.WriteRole(t, v, "openai", "batch", map[string]any{"ttl": "40s", "max_ttl": "40s"})
	harness.WriteRole(t, v, "openai", "metered", map[string]any{"ttl": "30m", "max_tokens_per_key": 2 * perCall})
	harness.WriteRole(t, v, "openai", "capped", map[string]any{"ttl": "30m", "max_live_keys": 3})

	rec := &Recording{Job: "vault-openai", Instance: strings.TrimPrefix(v.Addr, "http://")}
	sc := &Scraper{URL: v.Addr + "/v1/openai/metrics", Token: v.Token, Client: &http.Client{Timeout: 10 * time.Second}}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	begin := time.Now()
	at := func(frac float64) time.Time { return begin.Add(time.Duration(frac * float64(d))) }

	var wg sync.WaitGroup
	var mu sync.Mutex
	var scrapeErr error
	counts := map[string]int{}
	count := func(k string) { mu.Lock(); counts[k]++; mu.Unlock() }
	wg.Add(1)
	go func() { // the Prometheus server's part
		defer wg.Done()
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			s, err := sc.Scrape(context.Background())
			mu.Lock()
			if err != nil && scrapeErr == nil {
				scrapeErr = err
			}
			if err == nil {
				rec.Scrapes = append(rec.Scrapes, s)
			}
			mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()

	// pace is the pause between two issues of a role: slow, busier in the
	// middle of the run, slow again.
	pace := func(base time.Duration) time.Duration {
		el := time.Since(begin)
		if el > d/4 && el < d*3/5 {
			return base / 3
		}
		return base
	}
	sleep := func(x time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(x):
			return true
		}
	}
	wg.Add(2)
	go func() { // role app: issue, renew some, revoke the oldest beyond 20
		defer wg.Done()
		var live []*harness.Creds
		for i := 0; sleep(pace(1500 * time.Millisecond)); i++ {
			c, err := harness.TryIssue(v, "openai", "app", nil)
			if err != nil {
				count("app issue failed")
				continue
			}
			count("app issued")
			live = append(live, c)
			if i%3 == 0 {
				if _, err := v.Client.Sys().Renew(live[rand.IntN(len(live))].LeaseID, 600); err == nil {
					count("app renewed")
				}
			}
			for len(live) > 20 {
				if err := v.Client.Sys().Revoke(live[0].LeaseID); err == nil {
					count("app revoked")
				}
				live = live[1:]
			}
		}
	}()
	go func() { // role batch: short leases that Vault expires
		defer wg.Done()
		for sleep(pace(3 * time.Second)) {
			if _, err := harness.TryIssue(v, "openai", "batch", nil); err != nil {
				count("batch issue failed")
				continue
			}
			count("batch issued")
		}
	}()

	step := func(frac float64, what string, do func()) bool {
		if !sleep(time.Until(at(frac))) {
			return false
		}
		t.Logf("%5.1fs %s", time.Since(begin).Seconds(), what)
		do()
		return true
	}
	overBudget := func() {
		c, err := harness.TryIssue(v, "openai", "metered", nil)
		if err != nil {
			t.Errorf("issuing a metered key: %v", err)
			return
		}
		for i := 0; i < 3; i++ {
			if a := f.CreateResponse(t, c.APIKey); a.Status != http.StatusOK {
				t.Errorf("model call with the metered key: %d %s", a.Status, a.Body)
			}
		}
	}
	// Two: a counter series is born at its first increment, so rate() and
	// increase() cannot see that one; they see the second.
	_ = step(0.12, "a metered key spends over its budget", overBudget) &&
		step(0.30, "six issues against a live-key cap of 3", func() {
			var held []*harness.Creds
			for i := 0; i < 6; i++ {
				if c, err := harness.TryIssue(v, "openai", "capped", nil); err == nil {
					held = append(held, c)
				} else {
					count("cap refusals")
				}
			}
			for _, c := range held {
				_ = v.Client.Sys().Revoke(c.LeaseID)
			}
		}) && step(0.45, "upstream latency 40 ms -> 300 ms; two creates refused with 400", func() {
		f.SetFaults(fakeopenai.Faults{Latency: 300 * time.Millisecond, Rules: []fakeopenai.FaultRule{
			{Ops: []fakeopenai.Op{fakeopenai.OpCreateServiceAccount}, Kind: fakeopenai.Fault400, Count: 2},
		}})
	}) && step(0.55, "creates answer 500 for 15 s", func() {
		f.SetFaults(fakeopenai.Faults{Latency: 300 * time.Millisecond, Rules: []fakeopenai.FaultRule{
			{Ops: []fakeopenai.Op{fakeopenai.OpCreateServiceAccount}, Kind: fakeopenai.Fault500, Rate: 1},
		}})
		sleep(15 * time.Second)
		f.SetFaults(fakeopenai.Faults{Latency: 300 * time.Millisecond})
	}) && step(0.65, "latency back to 40 ms; one create's answer lost", func() {
		f.SetFaults(fakeopenai.Faults{Latency: baseLatency, Rules: []fakeopenai.FaultRule{
			{Ops: []fakeopenai.Op{fakeopenai.OpCreateServiceAccount}, Kind: fakeopenai.FaultLostResponse, Count: 1},
		}})
	}) && step(0.70, "a second metered key spends over its budget", overBudget) &&
		step(0.75, "admin key rotation", func() {
			if _, err := v.Client.Logical().Write("openai/config/rotate-root", nil); err != nil {
				t.Errorf("rotate-root: %v", err)
			}
		})
	<-ctx.Done()
	wg.Wait()
	if scrapeErr != nil {
		t.Fatalf("scraping the metrics path: %v", scrapeErr)
	}
	t.Logf("operations: %v; %d scrapes over %s", counts, len(rec.Scrapes), rec.End().Sub(rec.Start()).Round(time.Second))

	recPath := strings.TrimSuffix(out, filepath.Ext(out)) + "-run.prom.gz"
	if err := rec.WriteFile(recPath); err != nil {
		t.Fatal(err)
	}
	if err := Draw(context.Background(), dash, rec, out, 5*time.Second); err != nil {
		t.Fatalf("drawing the dashboard: %v", err)
	}
	t.Logf("wrote %s and its recording %s", out, recPath)
}
