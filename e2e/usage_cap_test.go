//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// usage/ and usage/<role> read at most 1,000 keys per request. With 1,005
// keys of one role alive in the window, on the real Vault: both paths answer
// a 400 naming start_time and the count, before any upstream call; narrowed
// to the first 1,000 keys (end_time before the last five were issued) they
// answer all 1,000 with exactly one completions and one costs query per 100
// keys (20 calls, within the stated 30), and the usage of a key in the first
// and in the last batch equals the fake's own count. After the keys are
// revoked, a window that starts after the revocation holds none of them.
func TestUsageCapRefusesMoreThanAThousandKeysBeforeAnyUpstreamCall(t *testing.T) {
	t.Parallel()
	const capKeys, extra = 1000, 5
	v, f := setupEngine(t, map[string]any{"ttl": "1h"})

	t0 := time.Now()
	keys := issueAll(t, v, capKeys)
	issueTime := time.Since(t0)
	// Ledger times are whole seconds and end_time is exclusive: an end_time
	// on the next second boundary holds exactly the keys issued so far.
	cut := waitNextSecond()
	keys = append(keys, issueAll(t, v, extra)...)

	// Model calls with a key of the first batch and one of the last, so the
	// narrowed answer must carry numbers from every batch.
	firstKey, lastKey := keys[0], keys[capKeys-1]
	for _, c := range []*Creds{firstKey, firstKey, lastKey} {
		if a := f.CreateResponse(t, c.APIKey); a.Status != http.StatusOK {
			t.Fatalf("POST /v1/responses with an issued key: %d %s", a.Status, a.Body)
		}
	}

	for _, path := range []string{"openai/usage/r", "openai/usage/"} {
		before := f.Calls()
		_, err := v.Client.Logical().Read(path)
		status, msg := responseError(err)
		t.Logf("%s with %d keys in the window: %d %q", path, capKeys+extra, status, msg)
		if status != http.StatusBadRequest {
			t.Fatalf("%s with %d keys: status %d (%v), want 400", path, capKeys+extra, status, err)
		}
		for _, want := range []string{"start_time", fmt.Sprintf("%d keys", capKeys+extra), "1000", "narrow"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: error %q does not say %q", path, msg, want)
			}
		}
		if n := usageCalls(before, f.Calls()); n != 0 {
			t.Errorf("%s refused but made %d upstream usage/costs calls, want 0", path, n)
		}
	}

	var narrowed []int
	for _, path := range []string{"openai/usage/r", "openai/usage/"} {
		before := f.Calls()
		sec, err := v.Client.Logical().ReadWithData(path, map[string][]string{"end_time": {cut.UTC().Format(time.RFC3339)}})
		if err != nil {
			t.Fatalf("%s narrowed to end_time %s: %v", path, cut.UTC().Format(time.RFC3339), err)
		}
		after := f.Calls()
		completions := after[fakeopenai.OpUsageCompletions] - before[fakeopenai.OpUsageCompletions]
		costs := after[fakeopenai.OpCosts] - before[fakeopenai.OpCosts]
		listed, _ := sec.Data["keys"].([]any)
		if len(listed) != capKeys {
			t.Fatalf("%s narrowed lists %d keys, want %d", path, len(listed), capKeys)
		}
		// The engine states its own count, and it must be the fake's.
		if stated, _ := sec.Data["upstream_calls"].(json.Number).Int64(); stated != int64(completions+costs) {
			t.Errorf("%s says upstream_calls=%d, the fake counted %d", path, stated, completions+costs)
		}
		if completions != capKeys/100 || costs != capKeys/100 {
			t.Errorf("%s for %d keys: %d completions and %d costs queries, want %d of each (one per 100 keys)",
				path, capKeys, completions, costs, capKeys/100)
		}
		if completions+costs > 30 {
			t.Errorf("%s made %d upstream calls, more than the stated 30", path, completions+costs)
		}
		narrowed = append(narrowed, completions+costs)
		fake := f.UsageTotals()
		for _, k := range listed {
			km, _ := k.(map[string]any)
			id, _ := km["api_key_id"].(string)
			if id != firstKey.APIKeyID && id != lastKey.APIKeyID {
				continue
			}
			got, _ := km["input_tokens"].(json.Number).Int64()
			reqs, _ := km["num_model_requests"].(json.Number).Int64()
			if want := fake[id]; got != want.InputTokens || reqs != want.Requests || want.Requests == 0 {
				t.Errorf("%s key %s: input_tokens %d, requests %d; the fake counted %d and %d", path, id, got, reqs, want.InputTokens, want.Requests)
			}
		}
	}

	t1 := time.Now()
	if _, err := v.Client.Logical().Write("sys/leases/revoke-prefix/openai/creds/r", map[string]any{"sync": true}); err != nil {
		t.Fatalf("revoking every lease of role r: %v", err)
	}
	waitFor(t, 2*time.Minute, "every account of the 1,005 keys gone at the fake", func() bool { return len(f.LiveAccounts()) == 0 })
	revokeTime := time.Since(t1)
	if left := leasesUnder(t, v, "openai/creds/r/"); len(left) != 0 {
		t.Fatalf("%d leases of role r left after revoke-prefix", len(left))
	}
	// Revoked keys still count in a window they were alive in; a window
	// that starts after their revocation holds none.
	start := waitNextSecond()
	time.Sleep(1100 * time.Millisecond) // end_time (now) after start_time
	before := f.Calls()
	sec, err := v.Client.Logical().ReadWithData("openai/usage/r", map[string][]string{"start_time": {start.UTC().Format(time.RFC3339)}})
	if err != nil {
		t.Fatalf("usage/r after the revocation: %v", err)
	}
	if listed, _ := sec.Data["keys"].([]any); len(listed) != 0 {
		t.Errorf("usage/r from %s lists %d keys revoked before it, want 0", start.UTC().Format(time.RFC3339), len(listed))
	}
	if n := usageCalls(before, f.Calls()); n != 0 {
		t.Errorf("usage/r with no key in the window made %d upstream calls, want 0", n)
	}
	figures(t, "usage-cap", "keys", capKeys+extra, "issue_1000", issueTime,
		"refused_calls", 0, "calls_at_cap_role", narrowed[0], "calls_at_cap_all", narrowed[1], "revoke_prefix", revokeTime)
}

// issueAll issues n keys of role r from 8 clients; any failure ends the test.
func issueAll(t *testing.T, v *Vault, n int) []*Creds {
	t.Helper()
	creds, errs, took := issueMany(v, n, 8, nil)
	if len(errs) > 0 {
		t.Fatalf("issuing %d keys: %d failed, the first: %v", n, len(errs), errs[0])
	}
	t.Logf("issued %d keys in %.1fs", n, took.Seconds())
	return creds
}

// waitNextSecond sleeps past the next whole second and returns it.
func waitNextSecond() time.Time {
	next := time.Now().Truncate(time.Second).Add(time.Second)
	time.Sleep(time.Until(next) + 50*time.Millisecond)
	return next
}

// usageCalls is the number of usage and costs queries between two call counts.
func usageCalls(before, after map[fakeopenai.Op]int) int {
	return after[fakeopenai.OpUsageCompletions] - before[fakeopenai.OpUsageCompletions] +
		after[fakeopenai.OpCosts] - before[fakeopenai.OpCosts]
}
