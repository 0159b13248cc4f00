package backend

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const (
	// defaultUsageWindow is the window of a usage/ read without start_time.
	defaultUsageWindow = 24 * time.Hour
	// maxUsageWindow bounds end_time - start_time: the ledger keeps
	// revoked keys for 31 days by default, and a completions page holds
	// 31 daily buckets, so a window needs at most 2 pages per batch.
	maxUsageWindow = 31 * 24 * time.Hour
	// maxUsageKeys bounds the keys one request reads: 10 batches, so at
	// most 10 x (2 + 1) = 30 upstream calls per request.
	maxUsageKeys = 1000
)

func pathUsage(b *backend) []*framework.Path {
	fields := map[string]*framework.FieldSchema{
		"start_time": {
			Query:        true, // also read from a GET's query string
			Type:         framework.TypeString,
			Description:  "Start of the window: RFC 3339 (2026-12-01T00:00:00Z) or Unix seconds. Default: end_time minus 24h.",
			DisplayAttrs: &framework.DisplayAttributes{Name: "Start time"},
		},
		"end_time": {
			Query:        true, // also read from a GET's query string
			Type:         framework.TypeString,
			Description:  "End of the window (exclusive): RFC 3339 or Unix seconds. Default and latest: now. At most 31 days after start_time.",
			DisplayAttrs: &framework.DisplayAttributes{Name: "End time"},
		},
	}
	read := func(cb framework.OperationFunc, responses map[int][]framework.Response) map[logical.Operation]framework.OperationHandler {
		return map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: cb,
				// The active node holds the ledger every request reads.
				ForwardPerformanceStandby: true,
				DisplayAttrs:              &framework.DisplayAttributes{OperationVerb: "read"},
				Responses:                 responses,
			},
		}
	}
	roleFields := map[string]*framework.FieldSchema{
		"name": {
			Type:        framework.TypeLowerCaseString,
			Description: "Name of the role whose keys' usage to read.",
			Required:    true,
		},
	}
	for k, v := range fields {
		roleFields[k] = v
	}
	return []*framework.Path{
		{
			Pattern: "usage/?$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "usage",
			},
			Fields:          fields,
			Operations:      read(b.pathUsageAll, usageResponses(true)),
			HelpSynopsis:    "Token usage and cost of every role's keys alive in a time window.",
			HelpDescription: pathUsageHelp,
		},
		{
			Pattern: "usage/" + framework.GenericNameRegex("name"),
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "role-usage",
			},
			Fields:          roleFields,
			Operations:      read(b.pathUsageRole, usageResponses(false)),
			HelpSynopsis:    "Token usage and cost, per key, of a role's keys alive in a time window.",
			HelpDescription: pathUsageHelp,
		},
	}
}

const pathUsageHelp = `
Reads OpenAI's usage and cost reports for the keys this mount issued and
joins them to the issuance ledger: per key, its api_key_id, service account,
the requesting token's display_name and entity_id, lease_id, when it was
issued and when and how it was revoked, input_tokens (cached ones included),
output_tokens, input_cached_tokens, num_model_requests and cost (value,
currency); then totals for the role (usage/<role>) or per role and overall
(usage/).

Keys count when they were alive at some time in [start_time, end_time):
issued before end_time and not revoked before start_time, revoked ones
included. start_time and end_time take RFC 3339 or Unix seconds; the default
window is the last 24 hours, the longest 31 days, and end_time is capped at
now. OpenAI reports usage in whole UTC days (bucket_width 1d), so the
numbers cover usage_start to usage_end: the days the window touches.

Upstream calls: keys go to OpenAI 100 ids per call; each batch is one
GET /organization/usage/completions (1 page, 2 for a window crossing 31 day
boundaries) and one GET /organization/costs (1 page). A request reads at
most 1000 keys (10 batches, at most 30 calls); more is a 400 asking for a
narrower window. No query follows more than 12 pages. Any failure, such as
throttling ("rate limited by OpenAI"), fails the whole request: a partial
answer is never returned.

OpenAI's numbers trail the calls they count by a delay OpenAI does not
document; recent usage may not show yet.
`

func (b *backend) pathUsageRole(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	role := d.Get("name").(string)
	if resp := roleNameError(role); resp != nil {
		return resp, nil
	}
	return b.usage(ctx, req, d, role)
}

func (b *backend) pathUsageAll(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return b.usage(ctx, req, d, "")
}

func (b *backend) usage(ctx context.Context, req *logical.Request, d *framework.FieldData, role string) (*logical.Response, error) {
	start, end, resp := usageWindow(d, time.Now())
	if resp != nil {
		return resp, nil
	}
	recs, known, err := b.ledgerRecords(ctx, req.Storage, role, start, end)
	if err != nil {
		return nil, err
	}
	if role != "" && !known {
		entry, err := getRole(ctx, req.Storage, role)
		if err != nil {
			return nil, err
		}
		if entry == nil {
			return logical.ErrorResponse("name: unknown role %q (no such role and no key of it in the ledger)", role), nil
		}
	}
	var ids []string
	withoutID := 0
	for _, r := range recs {
		if r.APIKeyID == "" {
			withoutID++ // issued before the ledger kept key ids
			continue
		}
		ids = append(ids, r.APIKeyID)
	}
	if len(ids) > maxUsageKeys {
		return logical.ErrorResponse("start_time: %s", &errUsageTooManyKeys{len(ids)}), nil
	}
	sums := &usageSums{usage: map[string]keyUsage{}, cost: map[string]keyCost{}}
	if len(ids) > 0 {
		client, err := b.getClient(ctx, req.Storage)
		if errors.Is(err, errMissingConfig) {
			return logical.ErrorResponse(err.Error()), nil
		}
		if err != nil {
			return nil, err
		}
		sums, err = keyUsageOf(ctx, client, ids, start, end, true)
		if err != nil {
			return nil, fmt.Errorf("usage: %w", err)
		}
	}
	return usageResponse(role, start, end, recs, sums, withoutID)
}

// usageWindow parses start_time and end_time, or answers a 400 naming the
// field.
func usageWindow(d *framework.FieldData, now time.Time) (start, end time.Time, resp *logical.Response) {
	end = now
	if v := d.Get("end_time").(string); v != "" {
		t, err := parseUsageTime(v)
		if err != nil {
			return start, end, logical.ErrorResponse("end_time: %s", err)
		}
		if t.Before(now) {
			end = t
		}
	}
	start = end.Add(-defaultUsageWindow)
	if v := d.Get("start_time").(string); v != "" {
		t, err := parseUsageTime(v)
		if err != nil {
			return start, end, logical.ErrorResponse("start_time: %s", err)
		}
		start = t
	}
	switch {
	case !start.Before(end):
		return start, end, logical.ErrorResponse("start_time (%s) must be before end_time (%s; end_time is capped at now)",
			start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339))
	case end.Sub(start) > maxUsageWindow:
		return start, end, logical.ErrorResponse("start_time: the window from start_time to end_time may be at most %s (31 days), got %s",
			maxUsageWindow, end.Sub(start).Round(time.Second))
	}
	return start, end, nil
}

// parseUsageTime reads RFC 3339 or Unix seconds.
func parseUsageTime(v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		// Up to the year 5138: past that a number is milliseconds or a typo.
		if n <= 0 || n > 1e11 {
			return time.Time{}, fmt.Errorf("%q is out of range for Unix seconds", v)
		}
		return time.Unix(n, 0), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 (2026-12-01T00:00:00Z) nor Unix seconds", v)
	}
	return t, nil
}

// usageTotals sums keys.
type usageTotals struct {
	Keys              int
	InputTokens       int64
	OutputTokens      int64
	InputCachedTokens int64
	ModelRequests     int64
	Cost              float64
	Currency          string
}

func (t *usageTotals) add(u keyUsage, c keyCost) error {
	t.Keys++
	t.InputTokens += u.InputTokens
	t.OutputTokens += u.OutputTokens
	t.InputCachedTokens += u.InputCachedTokens
	t.ModelRequests += u.ModelRequests
	if c.Currency != "" {
		if t.Currency != "" && t.Currency != c.Currency {
			return fmt.Errorf("OpenAI reported costs in both %q and %q; they cannot be summed", t.Currency, c.Currency)
		}
		t.Currency = c.Currency
	}
	t.Cost += c.Value
	return nil
}

func (t *usageTotals) toMap() map[string]interface{} {
	return map[string]interface{}{
		"keys":                t.Keys,
		"input_tokens":        t.InputTokens,
		"output_tokens":       t.OutputTokens,
		"input_cached_tokens": t.InputCachedTokens,
		"num_model_requests":  t.ModelRequests,
		"cost":                costMap(t.Cost, t.Currency),
	}
}

func costMap(v float64, currency string) map[string]interface{} {
	return map[string]interface{}{"value": v, "currency": currency}
}

func unixRFC3339(sec int64) string {
	if sec == 0 {
		return ""
	}
	return formatTime(time.Unix(sec, 0))
}

func usageResponse(role string, start, end time.Time, recs []*accountRecord, sums *usageSums, withoutID int) (*logical.Response, error) {
	keys := make([]map[string]interface{}, 0, len(recs))
	var total usageTotals
	perRole := map[string]*usageTotals{}
	for _, r := range recs {
		if r.APIKeyID == "" {
			continue
		}
		u, c := sums.usage[r.APIKeyID], sums.cost[r.APIKeyID]
		if err := total.add(u, c); err != nil {
			return nil, fmt.Errorf("usage: %w", err)
		}
		if perRole[r.Role] == nil {
			perRole[r.Role] = &usageTotals{}
		}
		_ = perRole[r.Role].add(u, c)
		keys = append(keys, map[string]interface{}{
			"api_key_id":          r.APIKeyID,
			"service_account_id":  r.ServiceAccountID,
			"project_id":          r.ProjectID,
			"role":                r.Role,
			"display_name":        r.DisplayName,
			"entity_id":           r.EntityID,
			"lease_id":            r.LeaseID,
			"issued":              unixRFC3339(r.CreatedAt),
			"revoked":             unixRFC3339(r.RevokedAt),
			"revoked_by":          r.RevokedBy,
			"input_tokens":        u.InputTokens,
			"output_tokens":       u.OutputTokens,
			"input_cached_tokens": u.InputCachedTokens,
			"num_model_requests":  u.ModelRequests,
			"cost":                nil, // set below, once the currency is known
		})
	}
	for i, r := range keysWithID(recs) {
		keys[i]["cost"] = costMap(sums.cost[r.APIKeyID].Value, total.Currency)
	}
	data := map[string]interface{}{
		"start_time":     start.UTC().Format(time.RFC3339),
		"end_time":       end.UTC().Format(time.RFC3339),
		"usage_start":    unixRFC3339(sums.spanStart),
		"usage_end":      unixRFC3339(sums.spanEnd),
		"keys":           keys,
		"totals":         total.toMap(),
		"upstream_calls": sums.calls,
	}
	if role != "" {
		data["role"] = role
	} else {
		roles := map[string]interface{}{}
		for name, t := range perRole {
			if t.Currency == "" {
				t.Currency = total.Currency
			}
			roles[name] = t.toMap()
		}
		data["roles"] = roles
	}
	resp := &logical.Response{Data: data}
	if withoutID > 0 {
		resp.AddWarning(fmt.Sprintf("%d keys alive in the window were issued before the ledger recorded key ids; their usage is not included", withoutID))
	}
	return resp, nil
}

func keysWithID(recs []*accountRecord) []*accountRecord {
	out := make([]*accountRecord, 0, len(recs))
	for _, r := range recs {
		if r.APIKeyID != "" {
			out = append(out, r)
		}
	}
	return out
}
