package backend

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// What usage/ and token budgets ask OpenAI: the usage (and for usage/ the
// cost) of a set of keys over a time range, in batches of usageKeyBatch
// ids, each batch one completions query and, when wanted, one costs query
// (each at most maxUsagePages pages; client_usage.go).

// usageSums is what the reports said of a set of keys.
type usageSums struct {
	usage map[string]keyUsage
	cost  map[string]keyCost
	// spanStart, spanEnd: what OpenAI's daily buckets covered.
	spanStart, spanEnd int64
	// calls counts the upstream requests (pages) made.
	calls int
}

// keyUsageOf reads the usage, and with withCost the cost, of keyIDs over
// [start, end). Every batch must answer in full: the first failure ends the
// whole read, so a caller never sums part of the keys as all of them.
func keyUsageOf(ctx context.Context, client adminClient, keyIDs []string, start, end time.Time, withCost bool) (*usageSums, error) {
	out := &usageSums{usage: map[string]keyUsage{}, cost: map[string]keyCost{}}
	ids := slices.Clone(keyIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	for batch := range slices.Chunk(ids, usageKeyBatch) {
		// OpenAI takes whole seconds; the end is rounded up so that it stays
		// after the start and includes end's own second.
		q := usageQuery{Start: start.Unix(), End: end.Add(time.Second - 1).Unix(), APIKeyIDs: batch}
		u, err := client.CompletionsUsage(ctx, q)
		if err != nil {
			return nil, err
		}
		out.calls += u.Pages
		out.span(u.SpanStart, u.SpanEnd)
		for _, id := range batch {
			if v, ok := u.PerKey[id]; ok {
				out.usage[id] = v
			}
		}
		if !withCost {
			continue
		}
		c, err := client.Costs(ctx, q)
		if err != nil {
			return nil, err
		}
		out.calls += c.Pages
		out.span(c.SpanStart, c.SpanEnd)
		for _, id := range batch {
			if v, ok := c.PerKey[id]; ok {
				out.cost[id] = v
			}
		}
	}
	return out, nil
}

func (s *usageSums) span(start, end int64) {
	if start != 0 && (s.spanStart == 0 || start < s.spanStart) {
		s.spanStart = start
	}
	if end > s.spanEnd {
		s.spanEnd = end
	}
}

// ledgerRecords returns the records of role ("" for every role) whose key
// was alive at some time in [start, end): issued before end, and not
// revoked before start. Revoked keys count: they spent while they lived.
// known reports whether the ledger holds any record of the role at all.
// The ledger's in-memory index (ledger.go) picks the candidates, so only
// their records are read.
func (b *backend) ledgerRecords(ctx context.Context, s logical.Storage, role string, start, end time.Time) (recs []*accountRecord, known bool, err error) {
	if err := b.ledger.ensure(ctx, s); err != nil {
		return nil, false, err
	}
	var ids []string
	b.ledger.mu.RLock()
	for id, e := range b.ledger.bySA {
		if role != "" && e.role != role {
			continue
		}
		known = true
		if e.revokedAt == 0 || e.revokedAt >= start.Unix() {
			ids = append(ids, id)
		}
	}
	b.ledger.mu.RUnlock()
	for _, id := range ids {
		r, err := getAccountRecord(ctx, s, id)
		if err != nil {
			return nil, false, err
		}
		// Record times are whole seconds: a key issued in end's own second,
		// before end, counts.
		if r == nil || !time.Unix(r.CreatedAt, 0).Before(end) || (r.revoked() && r.RevokedAt < start.Unix()) {
			continue
		}
		if committed, err := r.committed(ctx, s); err != nil {
			return nil, false, err
		} else if !committed {
			continue // an issue that failed: its key reached nobody
		}
		recs = append(recs, r)
	}
	slices.SortFunc(recs, func(a, b *accountRecord) int {
		if a.CreatedAt != b.CreatedAt {
			return int(a.CreatedAt - b.CreatedAt)
		}
		return compareStrings(a.ServiceAccountID, b.ServiceAccountID)
	})
	return recs, known, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// errUsageTooManyKeys: more keys than one usage/ request reads.
type errUsageTooManyKeys struct{ n int }

func (e *errUsageTooManyKeys) Error() string {
	return fmt.Sprintf("%d keys were alive in the window, more than the %d one request reads (%d calls of %d ids): narrow start_time and end_time",
		e.n, maxUsageKeys, maxUsageKeys/usageKeyBatch, usageKeyBatch)
}
