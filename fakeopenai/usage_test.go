package fakeopenai

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
)

// usageEnv is a fake on a settable clock with two keys in two projects.
type usageEnv struct {
	fake         *Server
	srv          *httptest.Server
	clock        *testClock
	org          openai.AdminOrganizationService
	k1, k2       string // key ids: k1 in ProjectActive, k2 in projB
	v1, v2       string // their values
	day0         int64  // the UTC day the clock starts in
	projB        string
	secondModel  string
	defaultModel string
}

func newUsageEnv(t *testing.T, opts Options) *usageEnv {
	t.Helper()
	clock := newTestClock()
	opts.Now = clock.now
	fake, srv := startFake(t, opts)
	e := &usageEnv{fake: fake, srv: srv, clock: clock, projB: "proj_usage_b", defaultModel: "gpt-4o-mini", secondModel: "gpt-4.1"}
	fake.AddProject(e.projB, "Second project", "active")
	admin := newClient(t, srv.URL, fake.AdminKey(), option.WithMaxRetries(0))
	e.org = admin.Admin.Organization
	ctx := context.Background()
	a1, err := e.org.Projects.ServiceAccounts.New(ctx, ProjectActive, newSA("one"))
	if err != nil {
		t.Fatal(err)
	}
	a2, err := e.org.Projects.ServiceAccounts.New(ctx, e.projB, newSA("two"))
	if err != nil {
		t.Fatal(err)
	}
	e.k1, e.v1, e.k2, e.v2 = a1.APIKey.ID, a1.APIKey.Value, a2.APIKey.ID, a2.APIKey.Value
	now := clock.now().Unix()
	e.day0 = now - now%86400
	return e
}

func (e *usageEnv) respond(t *testing.T, key, model, input string) *responses.Response {
	t.Helper()
	c := openai.NewClient(option.WithBaseURL(e.srv.URL+"/v1"), option.WithAPIKey(key), option.WithMaxRetries(0))
	r, err := c.Responses.New(context.Background(), responses.ResponseNewParams{Model: model, Input: responses.ResponseNewParamsInputUnion{OfString: openai.String(input)}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (e *usageEnv) add(t *testing.T, u Usage) {
	t.Helper()
	if err := e.fake.AddUsage(u); err != nil {
		t.Fatal(err)
	}
}

// completions runs the report through the SDK and flattens its results.
func (e *usageEnv) completions(t *testing.T, p openai.AdminOrganizationUsageCompletionsParams) (*openai.AdminOrganizationUsageCompletionsResponse, []openai.AdminOrganizationUsageCompletionsResponseDataResultOrganizationUsageCompletionsResult) {
	t.Helper()
	page, err := e.org.Usage.Completions(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	var out []openai.AdminOrganizationUsageCompletionsResponseDataResultOrganizationUsageCompletionsResult
	for _, b := range page.Data {
		for _, r := range b.Results {
			out = append(out, r.AsOrganizationUsageCompletionsResult())
		}
	}
	return page, out
}

func (e *usageEnv) costs(t *testing.T, p openai.AdminOrganizationUsageCostsParams) (*openai.AdminOrganizationUsageCostsResponse, []openai.AdminOrganizationUsageCostsResponseDataResultOrganizationCostsResult) {
	t.Helper()
	page, err := e.org.Usage.Costs(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	var out []openai.AdminOrganizationUsageCostsResponseDataResultOrganizationCostsResult
	for _, b := range page.Data {
		for _, r := range b.Results {
			out = append(out, r.AsOrganizationCostsResult())
		}
	}
	return page, out
}

func TestUsageRecordsResponses(t *testing.T) {
	e := newUsageEnv(t, Options{})
	r := e.respond(t, e.v1, e.defaultModel, strings.Repeat("x", 41)) // 11 tokens
	if r.Usage.InputTokens != 11 || r.Usage.InputTokensDetails.CachedTokens != 0 || r.Usage.OutputTokens != ResponseOutputTokens {
		t.Fatalf("response usage = %s", r.Usage.RawJSON())
	}
	e.fake.SetCachedInputPercent(50)
	r = e.respond(t, e.v1, e.secondModel, strings.Repeat("y", 40)) // 10 tokens, 5 cached
	if r.Usage.InputTokens != 10 || r.Usage.InputTokensDetails.CachedTokens != 5 {
		t.Fatalf("response usage with 50%% cached = %s", r.Usage.RawJSON())
	}
	e.fake.SetCachedInputPercent(0)
	e.respond(t, e.v2, e.defaultModel, "hi") // 1 token
	// An array input counts its compacted JSON.
	user := openai.NewClient(option.WithBaseURL(e.srv.URL+"/v1"), option.WithAPIKey(e.v2), option.WithMaxRetries(0))
	if _, err := user.Models.List(context.Background()); err != nil { // records nothing
		t.Fatal(err)
	}
	code, _, m := rawCall(t, e.fake, "POST", "/v1/responses", e.v2, `{"model":"gpt-4o-mini","input":[ {"role":"user","content":"hello"} ]}`)
	arrayTokens := TextTokens(`[{"role":"user","content":"hello"}]`)
	if code != 200 || m["usage"].(map[string]any)["input_tokens"] != float64(arrayTokens) {
		t.Fatalf("array input: %d %v, want %d input tokens", code, m["usage"], arrayTokens)
	}
	// A refused call records nothing.
	if code, _, _ := rawCall(t, e.fake, "POST", "/v1/responses", e.v2, `{"model":"","input":"x"}`); code != 400 {
		t.Fatalf("empty model: %d", code)
	}
	e.fake.TakeViolations()

	tot := e.fake.UsageTotals()
	p1, p4 := DefaultPrices["gpt-4o-mini"], DefaultPrices["gpt-4.1"]
	want1 := UsageTotal{APIKeyID: e.k1, ProjectID: ProjectActive, InputTokens: 21, CachedInputTokens: 5, OutputTokens: 20, Requests: 2,
		CostUSD: 11*p1.Input + 10*p1.Output + 5*p4.Input + 5*p4.CachedInput + 10*p4.Output}
	want2 := UsageTotal{APIKeyID: e.k2, ProjectID: e.projB, InputTokens: 1 + arrayTokens, OutputTokens: 20, Requests: 2,
		CostUSD: float64(1+arrayTokens)*p1.Input + 20*p1.Output}
	for _, w := range []UsageTotal{want1, want2} {
		got := tot[w.APIKeyID]
		if math.Abs(got.CostUSD-w.CostUSD) > 1e-12 {
			t.Errorf("cost of %s = %v, want %v", w.APIKeyID, got.CostUSD, w.CostUSD)
		}
		got.CostUSD, w.CostUSD = 0, 0
		if got != w {
			t.Errorf("totals of %s = %+v, want %+v", w.APIKeyID, got, w)
		}
	}
	if recs := e.fake.UsageRecords(); len(recs) != 4 || recs[0].Model != e.defaultModel || recs[1].CachedInputTokens != 5 || !recs[0].At.Equal(e.clock.now()) {
		t.Fatalf("records = %+v", recs)
	}

	// GET /_fake/usage serves the same totals.
	code, body := controlGet(t, e.fake, "/_fake/usage")
	var list []UsageTotal
	if err := json.Unmarshal(body, &list); code != 200 || err != nil || len(list) != 2 || list[0].APIKeyID > list[1].APIKeyID {
		t.Fatalf("/_fake/usage = %d %s", code, body)
	}
	if list[0].Requests != 2 || list[1].Requests != 2 {
		t.Fatalf("/_fake/usage = %s", body)
	}

	// The report agrees with the totals.
	_, res := e.completions(t, openai.AdminOrganizationUsageCompletionsParams{StartTime: e.day0, GroupBy: []string{"api_key_id"}})
	if len(res) != 2 {
		t.Fatalf("results = %+v", res)
	}
	for _, r := range res {
		w := tot[r.APIKeyID]
		if r.InputTokens != w.InputTokens || r.InputCachedTokens != w.CachedInputTokens || r.OutputTokens != w.OutputTokens ||
			r.NumModelRequests != w.Requests || r.InputUncachedTokens != w.InputTokens-w.CachedInputTokens {
			t.Errorf("report for %s = %s, want %+v", r.APIKeyID, r.RawJSON(), w)
		}
	}
	_, cres := e.costs(t, openai.AdminOrganizationUsageCostsParams{StartTime: e.day0, GroupBy: []string{"api_key_id"}})
	for _, c := range cres {
		if math.Abs(c.Amount.Value-tot[c.APIKeyID].CostUSD) > 1e-12 {
			t.Errorf("cost report for %s = %v, want %v", c.APIKeyID, c.Amount.Value, tot[c.APIKeyID].CostUSD)
		}
	}
}

func controlGet(t *testing.T, h http.Handler, path string) (int, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec.Code, rec.Body.Bytes()
}

func TestAddUsage(t *testing.T) {
	e := newUsageEnv(t, Options{})
	for _, bad := range []Usage{
		{}, {APIKeyID: "key_unknown"}, {APIKeyID: e.k1, InputTokens: -1}, {APIKeyID: e.k1, InputTokens: 1, CachedInputTokens: 2},
	} {
		if err := e.fake.AddUsage(bad); err == nil {
			t.Errorf("AddUsage(%+v) = nil, want an error", bad)
		}
	}
	e.add(t, Usage{APIKeyID: e.k1, InputTokens: 5_000_000, OutputTokens: 1_000_000, Requests: 3})
	e.add(t, Usage{APIKeyID: "key_gone", ProjectID: ProjectActive, InputTokens: 7, Requests: 1, Model: e.secondModel})
	recs := e.fake.UsageRecords()
	if len(recs) != 2 || recs[0].ProjectID != ProjectActive || recs[0].Model != "gpt-4o-mini" || !recs[0].At.Equal(e.clock.now()) || recs[1].Model != e.secondModel {
		t.Fatalf("records = %+v", recs)
	}
	if tot := e.fake.UsageTotals()[e.k1]; tot.InputTokens != 5_000_000 || tot.CostUSD != 5_000_000*DefaultPrice.Input+1_000_000*DefaultPrice.Output {
		t.Fatalf("totals = %+v", tot)
	}
}

func TestUsageFiltersAndGroupBy(t *testing.T) {
	e := newUsageEnv(t, Options{})
	at := e.clock.now()
	e.add(t, Usage{APIKeyID: e.k1, Model: e.defaultModel, InputTokens: 100, CachedInputTokens: 10, OutputTokens: 1, Requests: 1, At: at})
	e.add(t, Usage{APIKeyID: e.k1, Model: e.secondModel, InputTokens: 200, OutputTokens: 2, Requests: 2, At: at})
	e.add(t, Usage{APIKeyID: e.k2, Model: e.defaultModel, InputTokens: 400, OutputTokens: 4, Requests: 4, At: at})
	base := openai.AdminOrganizationUsageCompletionsParams{StartTime: e.day0}
	type row struct {
		project, key, model string
		in, out, reqs       int64
	}
	get := func(mod func(*openai.AdminOrganizationUsageCompletionsParams)) []row {
		t.Helper()
		p := base
		mod(&p)
		page, res := e.completions(t, p)
		if page.Object != "page" || len(page.Data) != 1 || page.Data[0].StartTime != e.day0 || page.Data[0].EndTime != e.day0+86400 || page.HasMore {
			t.Fatalf("page = %s", page.RawJSON())
		}
		var out []row
		for _, r := range res {
			out = append(out, row{r.ProjectID, r.APIKeyID, r.Model, r.InputTokens, r.OutputTokens, r.NumModelRequests})
		}
		return out
	}
	// Results come sorted by project, key, model; key ids are random, so
	// compare in that order.
	check := func(name string, got []row, want ...row) {
		t.Helper()
		sort.Slice(want, func(i, j int) bool {
			a, b := want[i], want[j]
			return a.project+" "+a.key+" "+a.model < b.project+" "+b.key+" "+b.model
		})
		if len(got) != len(want) {
			t.Errorf("%s: %+v, want %+v", name, got, want)
			return
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: %+v, want %+v", name, got, want)
				return
			}
		}
	}
	check("ungrouped", get(func(*openai.AdminOrganizationUsageCompletionsParams) {}), row{"", "", "", 700, 7, 7})
	check("by key", get(func(p *openai.AdminOrganizationUsageCompletionsParams) { p.GroupBy = []string{"api_key_id"} }),
		row{key: e.k1, in: 300, out: 3, reqs: 3}, row{key: e.k2, in: 400, out: 4, reqs: 4})
	check("by project", get(func(p *openai.AdminOrganizationUsageCompletionsParams) { p.GroupBy = []string{"project_id"} }),
		row{project: ProjectActive, in: 300, out: 3, reqs: 3}, row{project: e.projB, in: 400, out: 4, reqs: 4})
	check("by model", get(func(p *openai.AdminOrganizationUsageCompletionsParams) { p.GroupBy = []string{"model"} }),
		row{model: e.secondModel, in: 200, out: 2, reqs: 2}, row{model: e.defaultModel, in: 500, out: 5, reqs: 5})
	check("by key and model", get(func(p *openai.AdminOrganizationUsageCompletionsParams) { p.GroupBy = []string{"model", "api_key_id"} }),
		row{key: e.k1, model: e.defaultModel, in: 100, out: 1, reqs: 1}, row{key: e.k1, model: e.secondModel, in: 200, out: 2, reqs: 2},
		row{key: e.k2, model: e.defaultModel, in: 400, out: 4, reqs: 4})
	check("api_key_ids", get(func(p *openai.AdminOrganizationUsageCompletionsParams) { p.APIKeyIDs = []string{e.k2} }), row{in: 400, out: 4, reqs: 4})
	check("api_key_ids both", get(func(p *openai.AdminOrganizationUsageCompletionsParams) { p.APIKeyIDs = []string{e.k2, e.k1} }), row{in: 700, out: 7, reqs: 7})
	check("project_ids", get(func(p *openai.AdminOrganizationUsageCompletionsParams) { p.ProjectIDs = []string{ProjectActive} }), row{in: 300, out: 3, reqs: 3})
	check("models", get(func(p *openai.AdminOrganizationUsageCompletionsParams) { p.Models = []string{e.secondModel} }), row{in: 200, out: 2, reqs: 2})
	check("user_ids", get(func(p *openai.AdminOrganizationUsageCompletionsParams) { p.UserIDs = []string{"user_x"} }))
	check("batch true", get(func(p *openai.AdminOrganizationUsageCompletionsParams) { p.Batch = openai.Bool(true) }))
	check("batch false", get(func(p *openai.AdminOrganizationUsageCompletionsParams) { p.Batch = openai.Bool(false) }), row{in: 700, out: 7, reqs: 7})
	check("filter and group", get(func(p *openai.AdminOrganizationUsageCompletionsParams) {
		p.APIKeyIDs, p.Models, p.GroupBy = []string{e.k1}, []string{e.defaultModel}, []string{"api_key_id"}
	}), row{key: e.k1, in: 100, out: 1, reqs: 1})

	// Every field present; what is not grouped by is null.
	_, res := e.completions(t, openai.AdminOrganizationUsageCompletionsParams{StartTime: e.day0, APIKeyIDs: []string{e.k1}, Models: []string{e.defaultModel}})
	var raw map[string]any
	_ = json.Unmarshal([]byte(res[0].RawJSON()), &raw)
	for _, k := range []string{"project_id", "user_id", "api_key_id", "model", "batch", "service_tier", "api_source"} {
		if v, ok := raw[k]; !ok || v != nil {
			t.Errorf("ungrouped %s = %v (present %v), want null", k, v, ok)
		}
	}
	if raw["input_cached_tokens"] != 10.0 || raw["input_uncached_tokens"] != 90.0 || raw["input_audio_tokens"] != 0.0 || raw["output_audio_tokens"] != 0.0 {
		t.Errorf("token fields = %v", raw)
	}
	_, res = e.completions(t, openai.AdminOrganizationUsageCompletionsParams{StartTime: e.day0, APIKeyIDs: []string{e.k1},
		GroupBy: []string{"user_id", "batch", "service_tier", "api_source"}})
	_ = json.Unmarshal([]byte(res[0].RawJSON()), &raw)
	if len(res) != 1 || raw["user_id"] != nil || raw["batch"] != false || raw["service_tier"] != fakeServiceTier || raw["api_source"] != fakeAPISource {
		t.Errorf("grouped by the dimensions the fake does not model: %s", res[0].RawJSON())
	}
}

func TestUsageBucketsAndPaging(t *testing.T) {
	e := newUsageEnv(t, Options{})
	now := e.clock.now().Unix()
	// One record per hour for the past 5 hours (at hh:30), and one 3 days ago.
	for h := int64(1); h <= 5; h++ {
		e.add(t, Usage{APIKeyID: e.k1, InputTokens: h, Requests: 1, At: time.Unix(now-now%3600-h*3600+1800, 0)})
	}
	e.add(t, Usage{APIKeyID: e.k1, InputTokens: 1000, Requests: 1, At: time.Unix(e.day0-3*86400+5, 0)})

	// 1h buckets, aligned to the hour, 2 per page: pages continue exactly.
	start := now - now%3600 - 5*3600 + 600 // inside the first of the five hours
	var all []int64
	var buckets int
	var cursor string
	for pages := 0; ; pages++ {
		p := openai.AdminOrganizationUsageCompletionsParams{StartTime: start, EndTime: openai.Int(now), BucketWidth: "1h", Limit: openai.Int(2)}
		if cursor != "" {
			p.Page = openai.String(cursor)
		}
		page, _ := e.completions(t, p)
		if len(page.Data) > 2 || pages > 5 {
			t.Fatalf("page %d = %s", pages, page.RawJSON())
		}
		for _, b := range page.Data {
			if b.StartTime != start-start%3600+int64(buckets)*3600 || b.EndTime != b.StartTime+3600 {
				t.Fatalf("bucket %d = %d..%d", buckets, b.StartTime, b.EndTime)
			}
			buckets++
			for _, r := range b.Results {
				all = append(all, r.InputTokens)
			}
		}
		if !page.HasMore {
			if page.JSON.NextPage.Raw() != "null" {
				t.Fatalf("last page next_page = %s", page.JSON.NextPage.Raw())
			}
			break
		}
		if page.NextPage == "" || len(page.Data) != 2 {
			t.Fatalf("has_more with next_page %q and %d buckets", page.NextPage, len(page.Data))
		}
		cursor = page.NextPage
	}
	// Buckets: the five past hours; the clock is on the hour, and end_time
	// (now) is exclusive.
	if buckets != 5 || len(all) != 5 || all[0] != 5 || all[4] != 1 {
		t.Fatalf("%d buckets, results %v", buckets, all)
	}

	// 1m buckets: default limit 60, one record per hour at hh:30 falls in one of them.
	page, res := e.completions(t, openai.AdminOrganizationUsageCompletionsParams{StartTime: now - 2*3600, BucketWidth: "1m"})
	if len(page.Data) != 60 || !page.HasMore || len(res) != 1 {
		t.Fatalf("1m default page: %d buckets, has_more %v, %d results", len(page.Data), page.HasMore, len(res))
	}
	// 1d: default limit 7 buckets; end_time defaults to now.
	page, res = e.completions(t, openai.AdminOrganizationUsageCompletionsParams{StartTime: e.day0 - 9*86400})
	if len(page.Data) != 7 || !page.HasMore || len(res) != 1 || res[0].InputTokens != 1000 {
		t.Fatalf("1d default page: %s", page.RawJSON())
	}
	page, res = e.completions(t, openai.AdminOrganizationUsageCompletionsParams{StartTime: e.day0 - 9*86400, Page: openai.String(page.NextPage)})
	if len(page.Data) != 3 || page.HasMore || len(res) != 1 || res[0].InputTokens != 15 || page.Data[2].StartTime != e.day0 {
		t.Fatalf("1d second page: %s", page.RawJSON())
	}
	// A start in the future without end_time: one empty bucket.
	page, res = e.completions(t, openai.AdminOrganizationUsageCompletionsParams{StartTime: now + 3600, BucketWidth: "1h"})
	if len(page.Data) != 1 || page.HasMore || len(res) != 0 || page.Data[0].StartTime != now+3600 {
		t.Fatalf("future start: %s", page.RawJSON())
	}
	// Max limits are accepted.
	for _, c := range []struct {
		w     openai.AdminOrganizationUsageCompletionsParamsBucketWidth
		limit int64
	}{{"1m", 1440}, {"1h", 168}, {"1d", 31}} {
		if _, err := e.org.Usage.Completions(context.Background(), openai.AdminOrganizationUsageCompletionsParams{StartTime: e.day0, BucketWidth: c.w, Limit: openai.Int(c.limit)}); err != nil {
			t.Errorf("limit %d for %s: %v", c.limit, c.w, err)
		}
	}
	// Costs page the same way (1d buckets, default 7, up to 180).
	cp, _ := e.costs(t, openai.AdminOrganizationUsageCostsParams{StartTime: e.day0 - 9*86400, Limit: openai.Int(4)})
	if len(cp.Data) != 4 || !cp.HasMore {
		t.Fatalf("costs page = %s", cp.RawJSON())
	}
	cp, res2 := e.costs(t, openai.AdminOrganizationUsageCostsParams{StartTime: e.day0 - 9*86400, Limit: openai.Int(180), Page: openai.String(cp.NextPage)})
	if len(cp.Data) != 6 || cp.HasMore || len(res2) != 2 {
		t.Fatalf("costs second page = %s", cp.RawJSON())
	}
}

func TestCostsReport(t *testing.T) {
	e := newUsageEnv(t, Options{})
	e.add(t, Usage{APIKeyID: e.k1, Model: e.defaultModel, InputTokens: 1_000_000, CachedInputTokens: 400_000, OutputTokens: 100_000, Requests: 1})
	e.add(t, Usage{APIKeyID: e.k2, Model: e.secondModel, InputTokens: 1_000_000, OutputTokens: 10, Requests: 1})
	p1, p4 := DefaultPrices[e.defaultModel], DefaultPrices[e.secondModel]
	c1 := 600_000*p1.Input + 400_000*p1.CachedInput + 100_000*p1.Output
	c2 := 1_000_000*p4.Input + 10*p4.Output
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

	_, res := e.costs(t, openai.AdminOrganizationUsageCostsParams{StartTime: e.day0})
	if len(res) != 1 || !near(res[0].Amount.Value, c1+c2) || res[0].Amount.Currency != "usd" || res[0].JSON.LineItem.Raw() != "null" ||
		res[0].JSON.Quantity.Raw() != "null" || res[0].JSON.APIKeyID.Raw() != "null" || res[0].JSON.UserID.Raw() != "null" {
		t.Fatalf("ungrouped costs = %+v", res)
	}
	_, res = e.costs(t, openai.AdminOrganizationUsageCostsParams{StartTime: e.day0, GroupBy: []string{"project_id", "api_key_id"}})
	if len(res) != 2 || res[0].ProjectID != ProjectActive || res[0].APIKeyID != e.k1 || !near(res[0].Amount.Value, c1) ||
		res[1].ProjectID != e.projB || !near(res[1].Amount.Value, c2) {
		t.Fatalf("by project and key = %+v", res)
	}
	_, res = e.costs(t, openai.AdminOrganizationUsageCostsParams{StartTime: e.day0, GroupBy: []string{"line_item"}})
	want := map[string]float64{
		e.defaultModel + ", input_tokens": 600_000, e.defaultModel + ", cached_input_tokens": 400_000, e.defaultModel + ", output_tokens": 100_000,
		e.secondModel + ", input_tokens": 1_000_000, e.secondModel + ", output_tokens": 10,
	}
	if len(res) != len(want) {
		t.Fatalf("by line item = %+v", res)
	}
	for _, r := range res {
		if q, ok := want[r.LineItem]; !ok || r.Quantity != q || r.QuantityUnit != "tokens" {
			t.Errorf("line item %q quantity %v %s", r.LineItem, r.Quantity, r.QuantityUnit)
		}
	}
	_, res = e.costs(t, openai.AdminOrganizationUsageCostsParams{StartTime: e.day0, LineItems: []string{e.secondModel + ", input_tokens"}})
	if len(res) != 1 || !near(res[0].Amount.Value, 1_000_000*p4.Input) {
		t.Fatalf("line_items filter = %+v", res)
	}
	for _, f := range []openai.AdminOrganizationUsageCostsParams{
		{StartTime: e.day0, APIKeyIDs: []string{e.k2}}, {StartTime: e.day0, ProjectIDs: []string{e.projB}},
	} {
		if _, res = e.costs(t, f); len(res) != 1 || !near(res[0].Amount.Value, c2) {
			t.Errorf("filter %+v = %+v", f, res)
		}
	}
	_, res = e.costs(t, openai.AdminOrganizationUsageCostsParams{StartTime: e.day0, GroupBy: []string{"user_id", "api_source"}})
	if len(res) != 1 || res[0].JSON.UserID.Raw() != "null" || res[0].APISource != fakeAPISource {
		t.Fatalf("by user and source = %+v", res)
	}
	// A price change reprices recorded usage.
	e.fake.SetPrice(e.secondModel, Price{Input: 1e-6, Output: 1e-6})
	if _, res = e.costs(t, openai.AdminOrganizationUsageCostsParams{StartTime: e.day0, APIKeyIDs: []string{e.k2}}); !near(res[0].Amount.Value, 1.00001) {
		t.Fatalf("after SetPrice = %+v", res)
	}
	if got := e.fake.Prices()[e.secondModel]; got.Input != 1e-6 {
		t.Fatalf("Prices = %+v", got)
	}
}

func TestReportingLag(t *testing.T) {
	e := newUsageEnv(t, Options{ReportingLag: 10 * time.Minute})
	if e.fake.ReportingLag() != 10*time.Minute {
		t.Fatalf("ReportingLag = %v", e.fake.ReportingLag())
	}
	e.respond(t, e.v1, e.defaultModel, "abcd")
	visible := func() (int, int) {
		_, u := e.completions(t, openai.AdminOrganizationUsageCompletionsParams{StartTime: e.day0, EndTime: openai.Int(e.day0 + 86400)})
		_, c := e.costs(t, openai.AdminOrganizationUsageCostsParams{StartTime: e.day0, EndTime: openai.Int(e.day0 + 86400)})
		return len(u), len(c)
	}
	if u, c := visible(); u != 0 || c != 0 {
		t.Fatalf("fresh usage visible at once: %d usage, %d cost results", u, c)
	}
	if e.fake.UsageTotals()[e.k1].Requests != 1 {
		t.Fatal("UsageTotals must ignore the lag")
	}
	e.clock.advance(10*time.Minute - time.Second)
	if u, c := visible(); u != 0 || c != 0 {
		t.Fatalf("visible a second early: %d, %d", u, c)
	}
	e.clock.advance(time.Second)
	if u, c := visible(); u != 1 || c != 1 {
		t.Fatalf("not visible after the lag: %d, %d", u, c)
	}
	e.respond(t, e.v2, e.defaultModel, "abcd")
	e.fake.SetReportingLag(0)
	if u, _ := visible(); u != 1 {
		t.Fatalf("ungrouped results = %d", u)
	}
	_, res := e.completions(t, openai.AdminOrganizationUsageCompletionsParams{StartTime: e.day0, EndTime: openai.Int(e.day0 + 86400)})
	if res[0].NumModelRequests != 2 {
		t.Fatalf("with lag 0, requests = %d", res[0].NumModelRequests)
	}
}

func TestUsageReportRefusals(t *testing.T) {
	s := New(Options{})
	key := s.AdminKey()
	const u, c = "/v1/organization/usage/completions?", "/v1/organization/costs?"
	for _, tc := range []struct {
		path, param string
		violation   bool // the contract (spec + SDK) refuses the request too
	}{
		{u + "bucket_width=1d", "start_time", true},
		{u + "start_time=abc", "start_time", true},
		{u + "start_time=-5", "start_time", false},
		{u + "start_time=100&end_time=100", "end_time", false},
		{u + "start_time=100&bucket_width=2d", "bucket_width", true},
		{c + "start_time=100&bucket_width=1h", "bucket_width", true},
		{u + "start_time=100&limit=0", "limit", false},
		{u + "start_time=100&limit=32", "limit", false},
		{u + "start_time=100&bucket_width=1h&limit=169", "limit", false},
		{u + "start_time=100&bucket_width=1m&limit=1441", "limit", false},
		{c + "start_time=100&limit=181", "limit", false},
		{u + "start_time=100&page=nonsense", "page", false},
		{u + "start_time=100&page=" + encodeCursor(50), "page", false},
		{u + "start_time=100&group_by[]=line_item", "group_by", true},
		{c + "start_time=100&group_by[]=model", "group_by", true},
		{u + "start_time=100&batch=maybe", "batch", true},
		// The spec's form style; openai-go sends api_key_ids[]=.
		{u + "start_time=100&api_key_ids=key_x", "api_key_ids", true},
		{c + "start_time=100&group_by=api_key_id", "group_by", true},
	} {
		code, _, m := rawCall(t, s, "GET", tc.path, key, "")
		e := errorOf(t, m)
		if code != 400 || e["param"] != tc.param {
			t.Errorf("%s = %d %v, want 400 naming %s", tc.path, code, e, tc.param)
		}
		if v := s.TakeViolations(); (len(v) > 0) != tc.violation {
			t.Errorf("%s: violations %q, want some: %v", tc.path, v, tc.violation)
		}
	}
	// The SDK's encoding is accepted: arrays as name[]=.
	if code, _, m := rawCall(t, s, "GET", u+"start_time=100&end_time=200&api_key_ids[]=key_x&api_key_ids[]=key_y&group_by[]=api_key_id&models[]=m&project_ids[]=p&user_ids[]=u", key, ""); code != 200 {
		t.Fatalf("bracketed arrays: %d %v", code, m)
	}
	if v := s.Violations(); len(v) > 0 {
		t.Fatalf("violations: %q", v)
	}

	// Only an admin key: no key, an issued service-account key and an
	// unknown one are refused 401.
	_, _, acct := rawCall(t, s, "POST", "/v1/organization/projects/"+ProjectActive+"/service_accounts", key, `{"name":"user"}`)
	saKey, _ := acct["api_key"].(map[string]any)["value"].(string)
	for _, k := range []string{"", saKey, "sk-admin-unknown"} {
		for _, p := range []string{u + "start_time=100", c + "start_time=100"} {
			if code, _, m := rawCall(t, s, "GET", p, k, ""); code != 401 {
				t.Errorf("%s with key %q = %d %v, want 401", p, scrub(k), code, m)
			}
		}
	}
	s.TakeViolations() // the request without a key breaks the contract's security rule
}
