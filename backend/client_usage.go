package backend

import (
	"context"
	"fmt"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/packages/param"
)

// The two reports behind usage/ and token budgets (ADMIN-API.md, "Usage and
// costs"): GET /organization/usage/completions and GET /organization/costs,
// both for a bounded batch of key ids, grouped by api_key_id, in daily
// buckets, and summed per key here. OpenAI pages them by time bucket
// (next_page); a query follows at most maxUsagePages pages and fails
// rather than answer with part of the range, so no caller can present a
// partial sum as the whole.

const (
	// usageKeyBatch is the most key ids one report call filters by. Each id
	// adds about 50 bytes to the query string (api_key_ids%5B%5D=key_...),
	// so a call stays near 5 KB, under the 8 KB many proxies accept.
	usageKeyBatch = 100

	// usageBucketsPerPage is the most daily buckets a completions page
	// holds (OpenAI's maximum limit for bucket_width=1d); costsBucketsPerPage
	// is the costs report's maximum.
	usageBucketsPerPage = 31
	costsBucketsPerPage = 180

	// maxUsagePages bounds the pages of one query. A key lives at most a
	// year (maxKeyLifetime), 367 daily buckets with a partial day at either
	// end: 12 completions pages of 31, which a budget check from the issue
	// of a year-old key needs. A usage/ request (at most maxUsageWindow)
	// needs 2 completions pages and 1 costs page per batch.
	maxUsagePages = 12
)

// usageQuery is one report query: [Start, End) in Unix seconds, for these
// key ids (at most usageKeyBatch).
type usageQuery struct {
	Start, End int64
	APIKeyIDs  []string
}

// keyUsage is what the completions report says of one key.
type keyUsage struct {
	InputTokens       int64
	OutputTokens      int64
	InputCachedTokens int64
	ModelRequests     int64
}

// keyCost is what the costs report says of one key.
type keyCost struct {
	Value    float64
	Currency string
}

// usageReport is a query's answer: sums per key id (keys without usage are
// absent), the span OpenAI's buckets covered (they are whole UTC days, so
// they may start before Start and end after End), and the pages it took.
type usageReport[T any] struct {
	PerKey    map[string]T
	SpanStart int64
	SpanEnd   int64
	Pages     int
}

// errTooManyPages: a query's answer did not end within maxUsagePages.
type errTooManyPages struct {
	op    string
	pages int
}

func (e *errTooManyPages) Error() string {
	return fmt.Sprintf("%s: OpenAI's answer did not end within %d pages; refusing to report part of it as the whole (narrow the time window)", e.op, e.pages)
}

func (r *usageReport[T]) span(start, end int64) {
	if r.SpanStart == 0 || start < r.SpanStart {
		r.SpanStart = start
	}
	if end > r.SpanEnd {
		r.SpanEnd = end
	}
}

func (c *sdkClient) CompletionsUsage(ctx context.Context, q usageQuery) (*usageReport[keyUsage], error) {
	const op = "read completions usage"
	rep := &usageReport[keyUsage]{PerKey: map[string]keyUsage{}}
	params := openai.AdminOrganizationUsageCompletionsParams{
		StartTime:   q.Start,
		EndTime:     param.NewOpt(q.End),
		APIKeyIDs:   q.APIKeyIDs,
		GroupBy:     []string{"api_key_id"},
		BucketWidth: openai.AdminOrganizationUsageCompletionsParamsBucketWidth1d,
		Limit:       param.NewOpt[int64](usageBucketsPerPage),
	}
	for {
		if rep.Pages == maxUsagePages {
			return nil, &errTooManyPages{op: op, pages: maxUsagePages}
		}
		page, err := c.usagePage(ctx, op, func(ctx context.Context, g *callGuard) (any, error) {
			return c.api.Admin.Organization.Usage.Completions(ctx, params, g.option())
		})
		if err != nil {
			return nil, err
		}
		res := page.(*openai.AdminOrganizationUsageCompletionsResponse)
		rep.Pages++
		for _, b := range res.Data {
			rep.span(b.StartTime, b.EndTime)
			for _, r := range b.Results {
				u := rep.PerKey[r.APIKeyID]
				u.InputTokens += r.InputTokens
				u.OutputTokens += r.OutputTokens
				u.InputCachedTokens += r.InputCachedTokens
				u.ModelRequests += r.NumModelRequests
				rep.PerKey[r.APIKeyID] = u
			}
		}
		if !res.HasMore || res.NextPage == "" {
			return rep, nil
		}
		params.Page = param.NewOpt(res.NextPage)
	}
}

func (c *sdkClient) Costs(ctx context.Context, q usageQuery) (*usageReport[keyCost], error) {
	const op = "read costs"
	rep := &usageReport[keyCost]{PerKey: map[string]keyCost{}}
	params := openai.AdminOrganizationUsageCostsParams{
		StartTime:   q.Start,
		EndTime:     param.NewOpt(q.End),
		APIKeyIDs:   q.APIKeyIDs,
		GroupBy:     []string{"api_key_id"},
		BucketWidth: openai.AdminOrganizationUsageCostsParamsBucketWidth1d,
		Limit:       param.NewOpt[int64](costsBucketsPerPage),
	}
	for {
		if rep.Pages == maxUsagePages {
			return nil, &errTooManyPages{op: op, pages: maxUsagePages}
		}
		page, err := c.usagePage(ctx, op, func(ctx context.Context, g *callGuard) (any, error) {
			return c.api.Admin.Organization.Usage.Costs(ctx, params, g.option())
		})
		if err != nil {
			return nil, err
		}
		res := page.(*openai.AdminOrganizationUsageCostsResponse)
		rep.Pages++
		for _, b := range res.Data {
			rep.span(b.StartTime, b.EndTime)
			for _, r := range b.Results {
				k := rep.PerKey[r.APIKeyID]
				if k.Currency == "" {
					k.Currency = r.Amount.Currency
				} else if r.Amount.Currency != "" && r.Amount.Currency != k.Currency {
					// One key billed in two currencies cannot be summed.
					return nil, fmt.Errorf("%s: OpenAI reported key %s's cost in both %q and %q", op, r.APIKeyID, k.Currency, r.Amount.Currency)
				}
				k.Value += r.Amount.Value
				rep.PerKey[r.APIKeyID] = k
			}
		}
		if !res.HasMore || res.NextPage == "" {
			return rep, nil
		}
		params.Page = param.NewOpt(res.NextPage)
	}
}

// usagePage fetches one page with its own retry budget, as each page of a
// list is a request of its own (client_retry.go).
func (c *sdkClient) usagePage(ctx context.Context, op string, call func(context.Context, *callGuard) (any, error)) (any, error) {
	g, ctx, done := c.guard(ctx)
	defer done()
	res, err := call(ctx, g)
	if err != nil {
		return nil, g.upstreamError(op, err)
	}
	return res, nil
}
