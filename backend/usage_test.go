package backend

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// callModel makes one POST /v1/responses with key at the fake and returns
// the HTTP status.
func (e *testEnv) callModel(key, model, input string) int {
	e.t.Helper()
	body, _ := json.Marshal(map[string]string{"model": model, "input": input})
	req, _ := http.NewRequest(http.MethodPost, e.url+"/responses", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (e *testEnv) addUsage(u fakeopenai.Usage) {
	e.t.Helper()
	if err := e.fake.AddUsage(u); err != nil {
		e.t.Fatal(err)
	}
}

// usageKeys indexes a usage response's keys by api_key_id.
func usageKeys(t *testing.T, resp *logical.Response) map[string]map[string]interface{} {
	t.Helper()
	out := map[string]map[string]interface{}{}
	for _, k := range resp.Data["keys"].([]map[string]interface{}) {
		out[k["api_key_id"].(string)] = k
	}
	return out
}

// assertMatchesFake compares one key's (or a total's) numbers with the
// fake's own count: tokens and requests exactly, cost to float rounding.
func assertMatchesFake(t *testing.T, what string, got map[string]interface{}, want fakeopenai.UsageTotal) {
	t.Helper()
	for field, w := range map[string]int64{
		"input_tokens": want.InputTokens, "output_tokens": want.OutputTokens,
		"input_cached_tokens": want.CachedInputTokens, "num_model_requests": want.Requests,
	} {
		if g := got[field].(int64); g != w {
			t.Errorf("%s: %s = %d, fake counted %d", what, field, g, w)
		}
	}
	cost := got["cost"].(map[string]interface{})
	if v := cost["value"].(float64); math.Abs(v-want.CostUSD) > 1e-9*math.Max(1, want.CostUSD) {
		t.Errorf("%s: cost %v, fake priced %v", what, v, want.CostUSD)
	}
	if want.CostUSD > 0 && cost["currency"] != "usd" {
		t.Errorf("%s: currency %v", what, cost["currency"])
	}
}

func sumTotals(ts ...fakeopenai.UsageTotal) fakeopenai.UsageTotal {
	var s fakeopenai.UsageTotal
	for _, t := range ts {
		s.InputTokens += t.InputTokens
		s.CachedInputTokens += t.CachedInputTokens
		s.OutputTokens += t.OutputTokens
		s.Requests += t.Requests
		s.CostUSD += t.CostUSD
	}
	return s
}

func TestUsage_MatchesFakeTotals(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	e.writeRole("batch", map[string]interface{}{})
	e.fake.SetCachedInputPercent(40)

	alice, err := e.issueAs("app", "token-alice")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := e.issueAs("app", "token-bob")
	if err != nil {
		t.Fatal(err)
	}
	carol, err := e.issueAs("batch", "token-carol")
	if err != nil {
		t.Fatal(err)
	}
	idle := e.issue("app", nil) // no usage at all: listed with zeros
	key := func(r *logical.Response) string { return r.Data["api_key"].(string) }
	id := func(r *logical.Response) string { return r.Data["api_key_id"].(string) }

	for i, in := range []string{"hello", "a somewhat longer prompt about vaults", "x"} {
		if s := e.callModel(key(alice), "gpt-4o-mini", in); s != 200 {
			t.Fatalf("model call %d: HTTP %d", i, s)
		}
	}
	if s := e.callModel(key(bob), "gpt-4.1", "price me with the expensive model"); s != 200 {
		t.Fatalf("model call: HTTP %d", s)
	}
	e.addUsage(fakeopenai.Usage{APIKeyID: id(bob), Model: "gpt-4.1", InputTokens: 123456, CachedInputTokens: 1000, OutputTokens: 7890, Requests: 17})
	e.addUsage(fakeopenai.Usage{APIKeyID: id(carol), InputTokens: 5000, OutputTokens: 300, Requests: 3})
	// A key revoked within the window still counts (the ledger keeps it).
	if err := e.revoke(bob.Secret); err != nil {
		t.Fatal(err)
	}
	if s := e.callModel(key(bob), "gpt-4.1", "after revocation"); s == 200 {
		t.Fatal("revoked key still works at the fake")
	}

	e.fake.ResetCalls()
	resp := e.mustOK(logical.ReadOperation, "usage/app", nil)
	calls := e.fake.Calls()
	if calls[fakeopenai.OpUsageCompletions] != 1 || calls[fakeopenai.OpCosts] != 1 {
		t.Fatalf("upstream calls %v, want one usage and one costs query", calls)
	}
	if got := resp.Data["upstream_calls"].(int); got != 2 {
		t.Fatalf("upstream_calls = %d, want 2", got)
	}
	totals := e.fake.UsageTotals()
	keys := usageKeys(t, resp)
	if len(keys) != 3 {
		t.Fatalf("want app's 3 keys, got %d: %v", len(keys), keys)
	}
	for _, r := range []*logical.Response{alice, bob, idle} {
		k := keys[id(r)]
		if k == nil {
			t.Fatalf("key %s missing from usage/app", id(r))
		}
		assertMatchesFake(t, id(r), k, totals[id(r)])
		if k["service_account_id"] != r.Data["service_account_id"] || k["issued"] == "" {
			t.Errorf("key %s: ledger fields %v", id(r), k)
		}
	}
	if keys[id(alice)]["display_name"] != "token-alice" || keys[id(bob)]["display_name"] != "token-bob" {
		t.Errorf("display names: %v / %v", keys[id(alice)]["display_name"], keys[id(bob)]["display_name"])
	}
	if keys[id(bob)]["revoked"] == "" || keys[id(bob)]["revoked_by"] != "revoke" {
		t.Errorf("revoked key: revoked %q by %q", keys[id(bob)]["revoked"], keys[id(bob)]["revoked_by"])
	}
	if keys[id(alice)]["revoked"] != "" {
		t.Errorf("live key shows revoked %q", keys[id(alice)]["revoked"])
	}
	appTotal := sumTotals(totals[id(alice)], totals[id(bob)], totals[id(idle)])
	assertMatchesFake(t, "usage/app totals", resp.Data["totals"].(map[string]interface{}), appTotal)
	if n := resp.Data["totals"].(map[string]interface{})["keys"].(int); n != 3 {
		t.Errorf("totals.keys = %d", n)
	}
	if appTotal.CachedInputTokens == 0 || appTotal.Requests < 20 {
		t.Fatalf("test set-up: want cached tokens and requests, got %+v", appTotal)
	}

	// usage/: every role, in the same call budget.
	e.fake.ResetCalls()
	all := e.mustOK(logical.ReadOperation, "usage/", nil)
	if calls := e.fake.Calls(); calls[fakeopenai.OpUsageCompletions] != 1 || calls[fakeopenai.OpCosts] != 1 {
		t.Fatalf("usage/: upstream calls %v, want one usage and one costs query", calls)
	}
	if n := len(usageKeys(t, all)); n != 4 {
		t.Fatalf("usage/: %d keys, want 4", n)
	}
	roles := all.Data["roles"].(map[string]interface{})
	assertMatchesFake(t, "usage/ app", roles["app"].(map[string]interface{}), appTotal)
	assertMatchesFake(t, "usage/ batch", roles["batch"].(map[string]interface{}), totals[id(carol)])
	assertMatchesFake(t, "usage/ totals", all.Data["totals"].(map[string]interface{}), sumTotals(appTotal, totals[id(carol)]))
}

func TestUsage_PagesAndBatches(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("many", map[string]interface{}{})
	n := usageKeyBatch + usageKeyBatch/2
	issued := e.issueN("many", n)
	for _, r := range issued { // issued well inside the window
		e.ageRecord(r.Data["service_account_id"].(string), time.Hour)
	}

	// A window of just under 31 days that does not start at midnight
	// covers 32 daily buckets: two completions pages of 31.
	end := time.Now().Add(-2 * time.Second).Truncate(time.Second)
	start := end.Add(-maxUsageWindow)
	if start.Unix()%86400 == 0 {
		start = start.Add(time.Second)
	}
	for i, r := range issued {
		id := r.Data["api_key_id"].(string)
		e.addUsage(fakeopenai.Usage{APIKeyID: id, At: end.Add(-time.Second), InputTokens: int64(100 + i), OutputTokens: int64(i), Requests: 1})
		if i%7 == 0 { // early in the window: on the first page
			e.addUsage(fakeopenai.Usage{APIKeyID: id, At: start.Add(time.Hour), Model: "gpt-4.1", InputTokens: 1000, CachedInputTokens: 10, OutputTokens: 5, Requests: 2})
		}
	}
	e.fake.ResetCalls()
	resp := e.mustOK(logical.ReadOperation, "usage/many", map[string]interface{}{
		"start_time": strconv.FormatInt(start.Unix(), 10), "end_time": end.UTC().Format(time.RFC3339),
	})
	// Two batches, each two completions pages and one costs page.
	calls := e.fake.Calls()
	if calls[fakeopenai.OpUsageCompletions] != 4 || calls[fakeopenai.OpCosts] != 2 || resp.Data["upstream_calls"].(int) != 6 {
		t.Fatalf("upstream calls %v (reported %v), want 4 usage pages and 2 costs pages", calls, resp.Data["upstream_calls"])
	}
	totals := e.fake.UsageTotals()
	keys := usageKeys(t, resp)
	if len(keys) != n {
		t.Fatalf("%d keys, want %d", len(keys), n)
	}
	var all []fakeopenai.UsageTotal
	for _, r := range issued {
		id := r.Data["api_key_id"].(string)
		assertMatchesFake(t, id, keys[id], totals[id])
		all = append(all, totals[id])
	}
	assertMatchesFake(t, "totals", resp.Data["totals"].(map[string]interface{}), sumTotals(all...))
}

func TestUsage_ThrottlingFailsWholeRequest(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	r := e.issue("app", nil)
	e.addUsage(fakeopenai.Usage{APIKeyID: r.Data["api_key_id"].(string), InputTokens: 10, OutputTokens: 1, Requests: 1})

	// Completions answer; every costs call is throttled: no partial answer.
	e.setFault(fakeopenai.OpCosts, fakeopenai.Fault429, 0, 1, 1)
	resp, err := e.do(logical.ReadOperation, "usage/app", nil)
	if err == nil || !strings.Contains(err.Error(), "rate limited by OpenAI") {
		t.Fatalf("want a rate-limit error, got resp %v err %v", resp, err)
	}
	if resp != nil && resp.Data["keys"] != nil {
		t.Fatalf("a throttled request returned data: %v", resp.Data)
	}
	e.setFault(fakeopenai.OpUsageCompletions, fakeopenai.Fault429, 0, 1, 1)
	if _, err := e.do(logical.ReadOperation, "usage/", nil); err == nil || !strings.Contains(err.Error(), "rate limited by OpenAI") {
		t.Fatalf("usage/: want a rate-limit error, got %v", err)
	}
}

func TestUsage_BadInputNamesTheField(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	now := time.Now()
	for _, c := range []struct {
		data map[string]interface{}
		want string
	}{
		{map[string]interface{}{"start_time": "yesterday"}, "start_time"},
		{map[string]interface{}{"end_time": "2026-13-01T00:00:00Z"}, "end_time"},
		{map[string]interface{}{"end_time": "-5"}, "end_time"},
		{map[string]interface{}{"start_time": "99999999999999"}, "start_time"},
		{map[string]interface{}{"start_time": now.Format(time.RFC3339), "end_time": now.Add(-time.Hour).Format(time.RFC3339)}, "start_time"},
		{map[string]interface{}{"start_time": strconv.FormatInt(now.Add(-32*24*time.Hour).Unix(), 10)}, "start_time"},
		{map[string]interface{}{"start_time": now.Add(time.Hour).Format(time.RFC3339)}, "start_time"},
	} {
		e.mustBadRequest(logical.ReadOperation, "usage/app", c.data, c.want)
		e.mustBadRequest(logical.ReadOperation, "usage/", c.data, c.want)
	}
	e.mustBadRequest(logical.ReadOperation, "usage/nosuch", nil, "name")
	e.mustBadRequest(logical.ReadOperation, "usage/a..b", nil, "name")

	// A role with no key yet answers zeros, with no upstream call.
	e.fake.ResetCalls()
	resp := e.mustOK(logical.ReadOperation, "usage/app", nil)
	if len(resp.Data["keys"].([]map[string]interface{})) != 0 || len(e.fake.Calls()) != 0 {
		t.Fatalf("empty role: %v, calls %v", resp.Data, e.fake.Calls())
	}
}

// A query whose answer does not end within maxUsagePages fails instead of
// summing the pages it read.
func TestUsage_PageBoundRefusesPartialAnswers(t *testing.T) {
	e := newTestEnv(t)
	c := newSDKClient(clientSettings{BaseURL: e.url, AdminAPIKey: e.fake.AdminKey(), RequestTimeout: 10 * time.Second, RetryBudget: time.Second})
	end := time.Now()
	fits := end.Add(-time.Duration(maxUsagePages*usageBucketsPerPage-1) * 24 * time.Hour)
	if _, err := c.CompletionsUsage(t.Context(), usageQuery{Start: fits.Unix(), End: end.Unix(), APIKeyIDs: []string{"key_x"}}); err != nil {
		t.Fatalf("a year of daily buckets must fit in %d pages: %v", maxUsagePages, err)
	}
	e.fake.ResetCalls()
	tooLong := end.Add(-time.Duration(maxUsagePages*usageBucketsPerPage+1) * 24 * time.Hour)
	_, err := c.CompletionsUsage(t.Context(), usageQuery{Start: tooLong.Unix(), End: end.Unix(), APIKeyIDs: []string{"key_x"}})
	if err == nil || !strings.Contains(err.Error(), "did not end within") {
		t.Fatalf("want the page bound, got %v", err)
	}
	if n := e.fake.Calls()[fakeopenai.OpUsageCompletions]; n != maxUsagePages {
		t.Fatalf("%d pages fetched, want the bound %d", n, maxUsagePages)
	}
}
