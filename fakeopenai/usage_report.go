// GET /organization/usage/completions and GET /organization/costs, served
// from the usage record (usage.go) as the spec and openai-go v3.96.0
// describe them: time buckets, filters, group_by, paging by bucket.

package fakeopenai

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// bucketWidths are the widths the reports take, with the completions
// report's default and maximum limit per width (the spec's "limit"
// description). Costs take only 1d, limit 1..180, default 7.
var bucketWidths = map[string]struct {
	d                  time.Duration
	defLimit, maxLimit int
}{
	"1m": {time.Minute, 60, 1440},
	"1h": {time.Hour, 24, 168},
	"1d": {24 * time.Hour, 7, 31},
}

const (
	costsDefaultLimit = 7
	costsMaxLimit     = 180
	// The values the fake reports for dimensions it does not model: all
	// usage is synchronous (batch false), at the default service tier, and
	// not from the Agents API (openai-go v3.96.0: "unlabeled for all other
	// activity").
	fakeServiceTier = "default"
	fakeAPISource   = "unlabeled"
)

// groupBy lists the dimensions each report groups by: the spec's, plus the
// SDK's additions (contract_handwritten.go sdkUsageParams).
var groupBy = map[Op][]string{
	OpUsageCompletions: {"project_id", "user_id", "api_key_id", "model", "batch", "service_tier", "api_source"},
	OpCosts:            {"project_id", "user_id", "line_item", "api_key_id", "api_source"},
}

// arrayParams are the array filters each report takes, as the SDK sends
// them (name[]=...).
var arrayParams = map[Op][]string{
	OpUsageCompletions: {"project_ids", "user_ids", "api_key_ids", "models", "group_by"},
	OpCosts:            {"project_ids", "api_key_ids", "line_items", "group_by"},
}

// reportQuery is a parsed report request.
type reportQuery struct {
	start, end int64 // Unix s; buckets cover [floor(start), end)
	width      int64 // seconds
	limit      int
	from       int64 // first bucket of this page
	arrays     map[string][]string
	batch      *bool
	group      map[string]bool
}

func badParam(w http.ResponseWriter, param, msg string) {
	writeError(w, http.StatusBadRequest, "invalid_request_error", ptr(param), nil, msg)
}

// parseReport reads and checks a report's query; on failure it has answered
// 400 naming the parameter.
func (s *Server) parseReport(w http.ResponseWriter, r *http.Request, op Op) (*reportQuery, bool) {
	q := r.URL.Query()
	rq := &reportQuery{arrays: map[string][]string{}, group: map[string]bool{}}
	for _, name := range arrayParams[op] {
		// openai-go sends arrays as name[]=a&name[]=b (see sdkUsageParams);
		// the fake refuses the bare name rather than ignore a filter.
		if _, bare := q[name]; bare {
			badParam(w, name, fmt.Sprintf("'%s' is an array parameter: send it as '%s[]'.", name, name))
			return nil, false
		}
		rq.arrays[name] = q[name+"[]"]
	}
	intParam := func(name string) (int64, bool, bool) {
		v := q.Get(name)
		if v == "" {
			return 0, false, true
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			badParam(w, name, fmt.Sprintf("'%s' must be a non-negative integer (Unix seconds).", name))
			return 0, false, false
		}
		return n, true, true
	}
	start, has, ok := intParam("start_time")
	if !ok {
		return nil, false
	}
	if !has {
		badParam(w, "start_time", "'start_time' is required.")
		return nil, false
	}
	end, has, ok := intParam("end_time")
	if !ok {
		return nil, false
	}
	if !has {
		// Until now; a start in the future (a skewed clock) gets one
		// empty bucket rather than an error about a parameter never sent.
		end = max(s.now().Unix(), start+1)
	}
	if end <= start {
		badParam(w, "end_time", "'end_time' must be after 'start_time'.")
		return nil, false
	}
	bw := q.Get("bucket_width")
	if bw == "" {
		bw = "1d"
	}
	spec, known := bucketWidths[bw]
	if !known || (op == OpCosts && bw != "1d") {
		allowed := "'1m', '1h' or '1d'"
		if op == OpCosts {
			allowed = "'1d'"
		}
		badParam(w, "bucket_width", fmt.Sprintf("'bucket_width' must be %s.", allowed))
		return nil, false
	}
	rq.width = int64(spec.d / time.Second)
	defLimit, maxLim := spec.defLimit, spec.maxLimit
	if op == OpCosts {
		defLimit, maxLim = costsDefaultLimit, costsMaxLimit
	}
	rq.limit = defLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLim {
			badParam(w, "limit", fmt.Sprintf("'limit' must be an integer between 1 and %d for bucket_width %s.", maxLim, bw))
			return nil, false
		}
		rq.limit = n
	}
	rq.start, rq.end = start, end
	rq.from = start - start%rq.width
	if v := q.Get("page"); v != "" {
		from, ok := decodeCursor(v)
		if !ok || from < rq.from || from >= end || from%rq.width != 0 {
			badParam(w, "page", fmt.Sprintf("No page found for cursor '%s'.", v))
			return nil, false
		}
		rq.from = from
	}
	if op == OpUsageCompletions {
		if v := q.Get("batch"); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil || (v != "true" && v != "false") {
				badParam(w, "batch", "'batch' must be true or false.")
				return nil, false
			}
			rq.batch = &b
		}
	}
	for _, g := range rq.arrays["group_by"] {
		if !slices.Contains(groupBy[op], g) {
			badParam(w, "group_by", fmt.Sprintf("Invalid group_by value '%s': supported are %s.", g, strings.Join(groupBy[op], ", ")))
			return nil, false
		}
		rq.group[g] = true
	}
	return rq, true
}

// Cursors name the first bucket of the next page: opaque to the client,
// "page_" and base64 as OpenAI's look.
func encodeCursor(from int64) string {
	return "page_" + base64.StdEncoding.EncodeToString([]byte("fakeopenai:"+strconv.FormatInt(from, 10)))
}

func decodeCursor(c string) (int64, bool) {
	b64, ok := strings.CutPrefix(c, "page_")
	if !ok {
		return 0, false
	}
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return 0, false
	}
	v, ok := strings.CutPrefix(string(b), "fakeopenai:")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// matches applies the filters to a record.
func (rq *reportQuery) matches(u Usage) bool {
	in := func(name, v string) bool {
		list := rq.arrays[name]
		return len(list) == 0 || slices.Contains(list, v)
	}
	if !in("project_ids", u.ProjectID) || !in("api_key_ids", u.APIKeyID) || !in("models", u.Model) {
		return false
	}
	// Service-account keys belong to no user, and nothing is batched.
	if len(rq.arrays["user_ids"]) > 0 || (rq.batch != nil && *rq.batch) {
		return false
	}
	return true
}

// groupKey is one result's identity within a bucket; fields not grouped
// by stay empty.
type groupKey struct {
	project, key, model, lineItem string
}

func (rq *reportQuery) keyOf(u Usage) groupKey {
	var g groupKey
	if rq.group["project_id"] {
		g.project = u.ProjectID
	}
	if rq.group["api_key_id"] {
		g.key = u.APIKeyID
	}
	if rq.group["model"] {
		g.model = u.Model
	}
	return g
}

func (g groupKey) less(o groupKey) bool {
	return g.project+"\x00"+g.key+"\x00"+g.model+"\x00"+g.lineItem <
		o.project+"\x00"+o.key+"\x00"+o.model+"\x00"+o.lineItem
}

// serveReportLocked answers either report (admin key checked by the caller).
func (s *Server) serveReportLocked(w http.ResponseWriter, r *http.Request, op Op) {
	rq, ok := s.parseReport(w, r, op)
	if !ok {
		return
	}
	visibleBefore := s.now().Add(-s.lag)
	page := usagePageJSON{Object: "page", Data: []usageBucketJSON{}}
	// The page's buckets, then the visible, matching records in each.
	n := min(int64(rq.limit), (rq.end-rq.from+rq.width-1)/rq.width)
	pageEnd := rq.from + n*rq.width
	byBucket := make([][]Usage, n)
	for _, u := range s.usage {
		at := u.At.Unix()
		if at >= rq.from && at < pageEnd && !u.At.After(visibleBefore) && rq.matches(u) {
			i := (at - rq.from) / rq.width
			byBucket[i] = append(byBucket[i], u)
		}
	}
	from := rq.from
	for _, recs := range byBucket {
		to := from + rq.width
		b := usageBucketJSON{Object: "bucket", StartTime: from, EndTime: to}
		if op == OpCosts {
			b.Results = s.costResultsLocked(rq, recs)
		} else {
			b.Results = completionsResults(rq, recs)
		}
		page.Data = append(page.Data, b)
		from = to
	}
	if from < rq.end {
		page.HasMore, page.NextPage = true, ptr(encodeCursor(from))
	}
	writeJSON(w, page)
}

func completionsResults(rq *reportQuery, recs []Usage) []any {
	sums := map[groupKey]*Usage{}
	var keys []groupKey
	for _, u := range recs {
		g := rq.keyOf(u)
		if sums[g] == nil {
			sums[g] = &Usage{}
			keys = append(keys, g)
		}
		t := sums[g]
		t.InputTokens += u.InputTokens
		t.CachedInputTokens += u.CachedInputTokens
		t.OutputTokens += u.OutputTokens
		t.Requests += u.Requests
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].less(keys[j]) })
	out := make([]any, 0, len(keys))
	for _, g := range keys {
		t := sums[g]
		res := completionsResultJSON{
			Object: "organization.usage.completions.result", NumModelRequests: t.Requests,
			InputTokens: t.InputTokens, InputCachedTokens: t.CachedInputTokens,
			InputUncachedTokens: t.InputTokens - t.CachedInputTokens, OutputTokens: t.OutputTokens,
			// All of it is text.
			InputTextTokens: t.InputTokens - t.CachedInputTokens, InputCachedTextTokens: t.CachedInputTokens,
			OutputTextTokens: t.OutputTokens,
		}
		res.ProjectID, res.APIKeyID, res.Model = grouped(rq, "project_id", g.project), grouped(rq, "api_key_id", g.key), grouped(rq, "model", g.model)
		// Grouped by user_id, service-account usage has no user: null.
		if rq.group["batch"] {
			res.Batch = new(bool)
		}
		res.ServiceTier = grouped(rq, "service_tier", fakeServiceTier)
		res.APISource = grouped(rq, "api_source", fakeAPISource)
		out = append(out, res)
	}
	return out
}

// costResultsLocked sums the cost of recs per group (line items included
// when grouped by line_item).
func (s *Server) costResultsLocked(rq *reportQuery, recs []Usage) []any {
	type sum struct {
		value  float64
		tokens int64
	}
	// Tokens per (group, model) first, then priced, so a result's value is
	// the same however the calls were split.
	perModel := map[groupKey]map[string]*Usage{}
	for _, u := range recs {
		g := rq.keyOf(u)
		g.model = ""
		if perModel[g] == nil {
			perModel[g] = map[string]*Usage{}
		}
		m := perModel[g][u.Model]
		if m == nil {
			m = &Usage{Model: u.Model}
			perModel[g][u.Model] = m
		}
		m.InputTokens += u.InputTokens
		m.CachedInputTokens += u.CachedInputTokens
		m.OutputTokens += u.OutputTokens
	}
	sums := map[groupKey]*sum{}
	var keys []groupKey
	gks := make([]groupKey, 0, len(perModel))
	for g := range perModel {
		gks = append(gks, g)
	}
	sort.Slice(gks, func(i, j int) bool { return gks[i].less(gks[j]) })
	for _, g := range gks {
		models := make([]string, 0, len(perModel[g]))
		for m := range perModel[g] {
			models = append(models, m)
		}
		sort.Strings(models)
		for _, m := range models {
			for _, li := range s.lineItemsLocked(*perModel[g][m]) {
				if f := rq.arrays["line_items"]; len(f) > 0 && !slices.Contains(f, li.name) {
					continue
				}
				k := g
				if rq.group["line_item"] {
					k.lineItem = li.name
				}
				if sums[k] == nil {
					sums[k] = &sum{}
					keys = append(keys, k)
				}
				sums[k].value += li.cost
				sums[k].tokens += li.tokens
			}
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].less(keys[j]) })
	out := make([]any, 0, len(keys))
	for _, k := range keys {
		res := costsResultJSON{
			Object: "organization.costs.result", Amount: amountJSON{Value: sums[k].value, Currency: "usd"},
			LineItem: grouped(rq, "line_item", k.lineItem), ProjectID: grouped(rq, "project_id", k.project),
			APIKeyID: grouped(rq, "api_key_id", k.key), APISource: grouped(rq, "api_source", fakeAPISource),
		}
		if rq.group["line_item"] {
			q, unit := float64(sums[k].tokens), "tokens"
			res.Quantity, res.QuantityUnit = &q, &unit
		}
		out = append(out, res)
	}
	return out
}

// grouped is v when the report groups by dim, else nil (null on the wire).
func grouped(rq *reportQuery, dim, v string) *string {
	if !rq.group[dim] {
		return nil
	}
	return &v
}

type usagePageJSON struct {
	Object   string            `json:"object"`
	Data     []usageBucketJSON `json:"data"`
	HasMore  bool              `json:"has_more"`
	NextPage *string           `json:"next_page"`
}

type usageBucketJSON struct {
	Object    string `json:"object"`
	StartTime int64  `json:"start_time"`
	EndTime   int64  `json:"end_time"`
	Results   []any  `json:"results"`
}

// completionsResultJSON is the spec's UsageCompletionsResult (every
// field), plus api_source from openai-go v3.96.0.
type completionsResultJSON struct {
	Object                 string  `json:"object"`
	InputTokens            int64   `json:"input_tokens"`
	InputCachedTokens      int64   `json:"input_cached_tokens"`
	InputCacheWriteTokens  int64   `json:"input_cache_write_tokens"`
	InputUncachedTokens    int64   `json:"input_uncached_tokens"`
	OutputTokens           int64   `json:"output_tokens"`
	InputTextTokens        int64   `json:"input_text_tokens"`
	OutputTextTokens       int64   `json:"output_text_tokens"`
	InputCachedTextTokens  int64   `json:"input_cached_text_tokens"`
	InputAudioTokens       int64   `json:"input_audio_tokens"`
	InputCachedAudioTokens int64   `json:"input_cached_audio_tokens"`
	OutputAudioTokens      int64   `json:"output_audio_tokens"`
	InputImageTokens       int64   `json:"input_image_tokens"`
	InputCachedImageTokens int64   `json:"input_cached_image_tokens"`
	OutputImageTokens      int64   `json:"output_image_tokens"`
	NumModelRequests       int64   `json:"num_model_requests"`
	ProjectID              *string `json:"project_id"`
	UserID                 *string `json:"user_id"`
	APIKeyID               *string `json:"api_key_id"`
	Model                  *string `json:"model"`
	Batch                  *bool   `json:"batch"`
	ServiceTier            *string `json:"service_tier"`
	APISource              *string `json:"api_source"`
}

// costsResultJSON is the spec's CostsResult, plus user_id and api_source
// from openai-go v3.96.0.
type costsResultJSON struct {
	Object       string     `json:"object"`
	Amount       amountJSON `json:"amount"`
	LineItem     *string    `json:"line_item"`
	ProjectID    *string    `json:"project_id"`
	APIKeyID     *string    `json:"api_key_id"`
	Quantity     *float64   `json:"quantity"`
	QuantityUnit *string    `json:"quantity_unit"`
	UserID       *string    `json:"user_id"`
	APISource    *string    `json:"api_source"`
}

type amountJSON struct {
	Value    float64 `json:"value"`
	Currency string  `json:"currency"`
}
