// What keys spend: every successful POST /v1/responses is recorded per key
// (tokens, one model request, model, project, time), and the two reports
// OpenAI answers about it are served from that record:
// GET /organization/usage/completions and GET /organization/costs (admin
// key only; usage_report.go). A reporting lag (Options.ReportingLag,
// SetReportingLag) hides usage from both reports until it has aged, as
// OpenAI's reports trail the calls they count.

package fakeopenai

import (
	"errors"
	"maps"
	"sort"
	"time"
)

// Usage is model usage recorded for one key: one POST /v1/responses, or
// whatever a test adds with AddUsage.
type Usage struct {
	At        time.Time `json:"at"`
	APIKeyID  string    `json:"api_key_id"`
	ProjectID string    `json:"project_id"`
	Model     string    `json:"model"`
	// InputTokens counts all input tokens, cached ones included, as
	// OpenAI's usage report counts input_tokens.
	InputTokens       int64 `json:"input_tokens"`
	CachedInputTokens int64 `json:"input_cached_tokens"`
	OutputTokens      int64 `json:"output_tokens"`
	Requests          int64 `json:"num_model_requests"`
}

// Price is what a model costs, in USD per token.
type Price struct {
	Input       float64 `json:"input"`        // uncached input token
	CachedInput float64 `json:"cached_input"` // cached input token
	Output      float64 `json:"output"`       // output token
}

// DefaultPrices is the fake's price table (USD per token): OpenAI's list
// prices per million tokens for the two models the fake lists, divided by a
// million. A model not in the table costs what DefaultPrice says.
var DefaultPrices = map[string]Price{
	"gpt-4o-mini": {Input: 0.15e-6, CachedInput: 0.075e-6, Output: 0.60e-6},
	"gpt-4.1":     {Input: 2.00e-6, CachedInput: 0.50e-6, Output: 8.00e-6},
}

// DefaultPrice prices a model missing from the table.
var DefaultPrice = DefaultPrices["gpt-4o-mini"]

// ResponseOutputTokens is the output of every POST /v1/responses: the fake's
// reply is fixed, and so is its token count.
const ResponseOutputTokens = 10

// TextTokens is how many tokens the fake counts for text: one per four bytes,
// rounded up, at least one. A string input counts its text; an array input
// counts its JSON (compacted) as text. The count is the fake's, not a real
// tokenizer's, chosen so tests can predict it.
func TextTokens(text string) int64 {
	return max(1, (int64(len(text))+3)/4)
}

// recordResponseLocked records the usage of one served POST /v1/responses.
func (s *Server) recordResponseLocked(k *saKey, model string, inputTokens int64, at time.Time) Usage {
	u := Usage{
		At: at, APIKeyID: k.id, ProjectID: k.project.id, Model: model,
		InputTokens: inputTokens, CachedInputTokens: inputTokens * int64(s.cachedPercent) / 100,
		OutputTokens: ResponseOutputTokens, Requests: 1,
	}
	s.usage = append(s.usage, u)
	return u
}

// AddUsage records usage for a key directly, for tests that need large
// numbers without thousands of calls. APIKeyID is required; ProjectID
// defaults to the key's project (required if the fake does not know the
// key, e.g. it was deleted), Model to "gpt-4o-mini", At to now.
func (s *Server) AddUsage(u Usage) error {
	if u.APIKeyID == "" {
		return errors.New("fakeopenai: AddUsage needs an APIKeyID")
	}
	if u.InputTokens < 0 || u.CachedInputTokens < 0 || u.OutputTokens < 0 || u.Requests < 0 || u.CachedInputTokens > u.InputTokens {
		return errors.New("fakeopenai: AddUsage needs non-negative counts and cached input within input")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.ProjectID == "" {
		for _, p := range s.projOrder {
			if k, ok := p.keys[u.APIKeyID]; ok {
				u.ProjectID = k.project.id
				break
			}
		}
		if u.ProjectID == "" {
			return errors.New("fakeopenai: AddUsage: unknown key " + u.APIKeyID + " and no ProjectID")
		}
	}
	if u.Model == "" {
		u.Model = "gpt-4o-mini"
	}
	if u.At.IsZero() {
		u.At = s.now()
	}
	s.usage = append(s.usage, u)
	return nil
}

// UsageRecords returns every usage record, oldest first, whether the
// reports show it yet or not.
func (s *Server) UsageRecords() []Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Usage(nil), s.usage...)
}

// UsageTotal is a key's usage summed as the fake counts it, with its cost.
type UsageTotal struct {
	APIKeyID          string  `json:"api_key_id"`
	ProjectID         string  `json:"project_id"`
	InputTokens       int64   `json:"input_tokens"`
	CachedInputTokens int64   `json:"input_cached_tokens"`
	OutputTokens      int64   `json:"output_tokens"`
	Requests          int64   `json:"num_model_requests"`
	CostUSD           float64 `json:"cost_usd"`
}

// UsageTotals sums every record per key, reporting lag ignored: what the
// reports will show once the lag has passed, to compare with what a client
// makes of them.
func (s *Server) UsageTotals() map[string]UsageTotal {
	return s.UsageTotalsBetween(time.Time{}, time.Time{})
}

// UsageTotalsBetween is UsageTotals for records at or after start and
// before end (a zero bound is open).
func (s *Server) UsageTotalsBetween(start, end time.Time) map[string]UsageTotal {
	s.mu.Lock()
	defer s.mu.Unlock()
	type modelKey struct{ key, model string }
	perModel := map[modelKey]*Usage{}
	out := map[string]UsageTotal{}
	for _, u := range s.usage {
		if (!start.IsZero() && u.At.Before(start)) || (!end.IsZero() && !u.At.Before(end)) {
			continue
		}
		t := out[u.APIKeyID]
		t.APIKeyID, t.ProjectID = u.APIKeyID, u.ProjectID
		t.InputTokens += u.InputTokens
		t.CachedInputTokens += u.CachedInputTokens
		t.OutputTokens += u.OutputTokens
		t.Requests += u.Requests
		out[u.APIKeyID] = t
		mk := modelKey{u.APIKeyID, u.Model}
		if perModel[mk] == nil {
			perModel[mk] = &Usage{Model: u.Model}
		}
		perModel[mk].InputTokens += u.InputTokens
		perModel[mk].CachedInputTokens += u.CachedInputTokens
		perModel[mk].OutputTokens += u.OutputTokens
	}
	mks := make([]modelKey, 0, len(perModel))
	for mk := range perModel {
		mks = append(mks, mk)
	}
	sort.Slice(mks, func(i, j int) bool {
		return mks[i].key < mks[j].key || (mks[i].key == mks[j].key && mks[i].model < mks[j].model)
	})
	for _, mk := range mks {
		t := out[mk.key]
		for _, li := range s.lineItemsLocked(*perModel[mk]) {
			t.CostUSD += li.cost
		}
		out[mk.key] = t
	}
	return out
}

// lineItem is one billed quantity of a model.
type lineItem struct {
	name   string // "<model>, <kind>"
	tokens int64
	cost   float64
}

// lineItemsLocked splits a model's tokens into billed line items, named
// "<model>, input_tokens" (uncached input), "<model>, cached_input_tokens"
// and "<model>, output_tokens", the form of openai-go v3.96.0's example
// ("gpt-6-astra, input_tokens"). Empty ones are left out.
func (s *Server) lineItemsLocked(u Usage) []lineItem {
	p, ok := s.prices[u.Model]
	if !ok {
		p = DefaultPrice
	}
	var out []lineItem
	for _, li := range []struct {
		kind   string
		tokens int64
		price  float64
	}{
		{"input_tokens", u.InputTokens - u.CachedInputTokens, p.Input},
		{"cached_input_tokens", u.CachedInputTokens, p.CachedInput},
		{"output_tokens", u.OutputTokens, p.Output},
	} {
		if li.tokens > 0 {
			out = append(out, lineItem{name: u.Model + ", " + li.kind, tokens: li.tokens, cost: float64(li.tokens) * li.price})
		}
	}
	return out
}

// SetReportingLag sets how long usage stays out of both reports after it
// happened (Options.ReportingLag).
func (s *Server) SetReportingLag(d time.Duration) {
	s.mu.Lock()
	s.lag = max(d, 0)
	s.mu.Unlock()
}

// ReportingLag returns the lag in force.
func (s *Server) ReportingLag() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lag
}

// SetCachedInputPercent makes that percentage (0..100, rounded down) of the
// input tokens of each later POST /v1/responses count as cached. Default 0.
func (s *Server) SetCachedInputPercent(p int) {
	s.mu.Lock()
	s.cachedPercent = min(max(p, 0), 100)
	s.mu.Unlock()
}

// SetPrice sets a model's price (USD per token) for costs computed from now
// on, recorded usage included.
func (s *Server) SetPrice(model string, p Price) {
	s.mu.Lock()
	s.prices[model] = p
	s.mu.Unlock()
}

// Prices returns the price table in force.
func (s *Server) Prices() map[string]Price {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.prices)
}

// UsageTotalsList is UsageTotals sorted by key id (GET /_fake/usage).
func (s *Server) UsageTotalsList() []UsageTotal {
	totals := s.UsageTotals()
	out := make([]UsageTotal, 0, len(totals))
	for _, t := range totals {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].APIKeyID < out[j].APIKeyID })
	return out
}
