//go:build e2e

package e2e

import (
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
)

// twoUsersScenario is the issue-15 set-up: two userpass users (each with its
// own Vault identity entity) take keys from two roles, call the fake's model
// endpoint with them, and some keys are revoked.
type twoUsersScenario struct {
	v     *Vault
	f     *Fake
	users map[string]*user
	// keys by name: alice-alpha, alice-beta, bob-alpha, bob-beta
	keys  map[string]*Creds
	owner map[string]*user  // key name -> who took it
	role  map[string]string // key name -> role
	// revoked: bob-alpha (renewed first, so the ledger knows its lease id)
	// and alice-beta (never renewed).
	revoked map[string]bool
	calls   map[string]int // model calls made with each key
}

func newTwoUsersScenario(t *testing.T) *twoUsersScenario {
	t.Helper()
	v := startVault(t, VaultOptions{})
	f := newFake(t)
	registerPlugin(t, v)
	mountPlugin(t, v, "openai")
	writeConfig(t, v, "openai", f, nil)
	writeRole(t, v, "openai", "alpha", map[string]any{"ttl": "30m", "max_ttl": "2h"})
	writeRole(t, v, "openai", "beta", map[string]any{"ttl": "30m", "max_ttl": "2h"})
	s := &twoUsersScenario{
		v: v, f: f, users: enableUserpass(t, v, "openai", "alice", "bob"),
		keys: map[string]*Creds{}, owner: map[string]*user{}, role: map[string]string{},
		revoked: map[string]bool{"bob-alpha": true, "alice-beta": true},
		calls:   map[string]int{"alice-alpha": 2, "alice-beta": 1, "bob-alpha": 3, "bob-beta": 1},
	}
	if s.users["alice"].entityID == s.users["bob"].entityID {
		t.Fatalf("alice and bob share entity %s", s.users["alice"].entityID)
	}
	for _, who := range []string{"alice", "bob"} {
		for _, role := range []string{"alpha", "beta"} {
			name := who + "-" + role
			s.keys[name] = issueAs(t, v, s.users[who], "openai", role)
			s.owner[name], s.role[name] = s.users[who], role
		}
	}
	// Part of every input cached, so cached tokens and their price show too.
	f.SetCachedInputPercent(50)
	for name, n := range s.calls {
		for i := 0; i < n; i++ {
			if a := f.CreateResponse(t, s.keys[name].APIKey); a.Status != http.StatusOK {
				t.Fatalf("model call %d with %s's key: HTTP %d: %s", i+1, name, a.Status, a.Body)
			}
		}
	}
	// A renewal tells the engine the lease id (Vault assigns it after the issue answers).
	if _, err := v.Client.Sys().Renew(s.keys["bob-alpha"].LeaseID, 1800); err != nil {
		t.Fatalf("renewing bob-alpha: %v", err)
	}
	for name := range s.revoked {
		if err := v.Client.Sys().Revoke(s.keys[name].LeaseID); err != nil {
			t.Fatalf("revoking %s: %v", name, err)
		}
		if f.Has(s.keys[name].ServiceAccountID) {
			t.Fatalf("%s revoked but its account is live at the fake", name)
		}
	}
	return s
}

func (s *twoUsersScenario) idsWhere(keep func(name string) bool) []string {
	var ids []string
	for name, c := range s.keys {
		if keep(name) {
			ids = append(ids, c.APIKeyID)
		}
	}
	sort.Strings(ids)
	return ids
}

// The ledger answers who held which key: keys/ lists every key with its
// state and filters by role and state; keys/<id> names the display name,
// entity and role of the token that took it; keys/lookup finds the entry
// from a leaked key value (sent in the request body) or from OpenAI's
// redacted form, and names the issuing request and, once Vault has passed
// it, the lease.
func TestLedgerNamesWhoHeldEachKey(t *testing.T) {
	t.Parallel()
	s := newTwoUsersScenario(t)
	v := s.v

	all, info := ledgerList(t, v, "openai", nil)
	if want := s.idsWhere(func(string) bool { return true }); !slices.Equal(all, want) {
		t.Fatalf("keys/ lists %v, want the 4 issued keys %v", all, want)
	}
	for name, c := range s.keys {
		wantState := "live"
		if s.revoked[name] {
			wantState = "revoked"
		}
		if got := info[c.APIKeyID]; got["role"] != s.role[name] || got["state"] != wantState || got["service_account_id"] != c.ServiceAccountID {
			t.Errorf("keys/ key_info for %s = %v, want role %s, state %s, service account %s", name, got, s.role[name], wantState, c.ServiceAccountID)
		}
	}
	for _, tc := range []struct {
		filters map[string]string
		keep    func(string) bool
	}{
		{map[string]string{"role": "alpha"}, func(n string) bool { return s.role[n] == "alpha" }},
		{map[string]string{"role": "beta"}, func(n string) bool { return s.role[n] == "beta" }},
		{map[string]string{"state": "revoked"}, func(n string) bool { return s.revoked[n] }},
		{map[string]string{"state": "live"}, func(n string) bool { return !s.revoked[n] }},
		{map[string]string{"role": "alpha", "state": "live"}, func(n string) bool { return s.role[n] == "alpha" && !s.revoked[n] }},
		{map[string]string{"role": "nosuchrole"}, func(string) bool { return false }},
	} {
		got, _ := ledgerList(t, v, "openai", tc.filters)
		if want := s.idsWhere(tc.keep); !slices.Equal(got, want) {
			t.Errorf("keys/ %v lists %v, want %v", tc.filters, got, want)
		}
	}
	// Paging: one id per page walks the same list.
	var paged []string
	after := ""
	for i := 0; i < 10; i++ {
		q := map[string][]string{"list": {"true"}, "limit": {"1"}}
		if after != "" {
			q["after"] = []string{after}
		}
		sec, err := v.Client.Logical().ReadWithData("openai/keys/", q)
		if err != nil || sec == nil {
			t.Fatalf("keys/ page after %q: %v", after, err)
		}
		ks, _ := sec.Data["keys"].([]any)
		for _, k := range ks {
			paged = append(paged, k.(string))
		}
		next, _ := sec.Data["next_after"].(string)
		if next == "" {
			break
		}
		after = next
	}
	if !slices.Equal(paged, all) {
		t.Errorf("keys/ paged by 1 gives %v, want %v", paged, all)
	}

	requestIDs := map[string]string{}
	for name, c := range s.keys {
		e := ledgerRead(t, v, "openai", c.APIKeyID)
		if e == nil {
			t.Fatalf("keys/%s (%s) not found", c.APIKeyID, name)
		}
		u := s.owner[name]
		for k, want := range map[string]string{
			"api_key_id": c.APIKeyID, "service_account_id": c.ServiceAccountID, "role": s.role[name],
			"display_name": u.displayName, "entity_id": u.entityID, "project_id": c.ProjectID,
			"key_hint": c.APIKey[len(c.APIKey)-4:],
		} {
			if got, _ := e[k].(string); got != want {
				t.Errorf("keys/<%s's key> %s = %q, want %q", name, k, got, want)
			}
		}
		wantState, wantBy := "live", ""
		if s.revoked[name] {
			wantState, wantBy = "revoked", "revoke"
		}
		if e["state"] != wantState || e["revoked_by"] != wantBy {
			t.Errorf("keys/<%s's key> state %v revoked_by %v, want %s %q", name, e["state"], e["revoked_by"], wantState, wantBy)
		}
		rid, _ := e["request_id"].(string)
		if rid == "" {
			t.Errorf("keys/<%s's key> has no request_id", name)
		}
		requestIDs[name] = rid
		b, _ := json.Marshal(e)
		if strings.Contains(string(b), c.APIKey) {
			t.Errorf("keys/<%s's key> contains the key value", name)
		}
	}
	seen := map[string]bool{}
	for _, rid := range requestIDs {
		if seen[rid] {
			t.Errorf("two keys share request_id %s; each issue is its own request", rid)
		}
		seen[rid] = true
	}
	if got := ledgerRead(t, v, "openai", "key_doesnotexist"); got != nil {
		t.Errorf("keys/key_doesnotexist = %v, want 404", got)
	}

	// A leaked key, in the request body: each names its holder and request.
	for name, c := range s.keys {
		m := lookupKey(t, v, "openai", map[string]any{"api_key": c.APIKey})
		if len(m) != 1 {
			t.Fatalf("keys/lookup api_key=<%s's key>: %d matches, want 1", name, len(m))
		}
		if m[0]["api_key_id"] != c.APIKeyID || m[0]["display_name"] != s.owner[name].displayName ||
			m[0]["entity_id"] != s.owner[name].entityID || m[0]["request_id"] != requestIDs[name] {
			t.Errorf("keys/lookup of %s's key = api_key_id %v display_name %v entity_id %v request_id %v, want %s %s %s %s",
				name, m[0]["api_key_id"], m[0]["display_name"], m[0]["entity_id"], m[0]["request_id"],
				c.APIKeyID, s.owner[name].displayName, s.owner[name].entityID, requestIDs[name])
		}
	}
	// The renewed-then-revoked lease is named; the never-renewed one cannot
	// be (Vault did not pass it), and its request id leads to it in the audit
	// log instead (TestIncidentPathFromLeakedKeyToAuditEntry).
	if m := lookupKey(t, v, "openai", map[string]any{"api_key": s.keys["bob-alpha"].APIKey}); len(m) != 1 || m[0]["lease_id"] != s.keys["bob-alpha"].LeaseID {
		t.Errorf("keys/lookup of bob-alpha's key (renewed, revoked) = %v, want one match with lease_id %s", m, s.keys["bob-alpha"].LeaseID)
	}
	if m := lookupKey(t, v, "openai", map[string]any{"api_key": "sk-svcacct-" + strings.Repeat("x", 40)}); len(m) != 0 {
		t.Errorf("keys/lookup of a key never issued: %d matches, want 0", len(m))
	}

	// OpenAI's redacted form: the key's hint finds it (possibly among others with the same last 4).
	for name, c := range s.keys {
		hint := c.APIKey[len(c.APIKey)-4:]
		m := lookupKey(t, v, "openai", map[string]any{"redacted_value": "sk-svcacct-..." + hint})
		found := false
		for _, e := range m {
			found = found || e["api_key_id"] == c.APIKeyID
			if e["key_hint"] != hint {
				t.Errorf("redacted_value ...%s matched an entry with hint %v", hint, e["key_hint"])
			}
		}
		if !found {
			t.Errorf("keys/lookup redacted_value=sk-svcacct-...%s does not find %s's key among %d matches", hint, name, len(m))
		}
	}
}

// usage/<role> reports, per key of the role (the revoked ones too), exactly
// the tokens and model requests the fake recorded for it, and its cost; the
// role totals are the sums, and usage/ totals the two roles.
func TestUsagePerRoleMatchesTheFake(t *testing.T) {
	t.Parallel()
	s := newTwoUsersScenario(t)
	v, f := s.v, s.f
	fake := f.UsageTotals()
	if len(fake) != 4 {
		t.Fatalf("the fake recorded usage for %d keys, want 4", len(fake))
	}
	const costTol = 1e-9

	byID := map[string]string{}
	for name, c := range s.keys {
		byID[c.APIKeyID] = name
	}
	var grand struct {
		in, out, cached, reqs int64
		cost                  float64
	}
	roleTotals := map[string]map[string]any{}
	for _, role := range []string{"alpha", "beta"} {
		sec, err := v.Client.Logical().Read("openai/usage/" + role)
		if err != nil || sec == nil {
			t.Fatalf("usage/%s: %v", role, err)
		}
		keys, _ := sec.Data["keys"].([]any)
		if len(keys) != 2 {
			t.Fatalf("usage/%s lists %d keys, want 2 (one live, one revoked)", role, len(keys))
		}
		var sum struct {
			in, out, cached, reqs int64
			cost                  float64
		}
		sawRevoked := false
		for _, k := range keys {
			km := k.(map[string]any)
			id, _ := km["api_key_id"].(string)
			name, ok := byID[id]
			if !ok || s.role[name] != role {
				t.Fatalf("usage/%s lists key %s, which is not one of the role's", role, id)
			}
			sawRevoked = sawRevoked || s.revoked[name]
			want := fake[id]
			got := map[string]int64{
				"input_tokens": jsonInt(t, km, "input_tokens"), "output_tokens": jsonInt(t, km, "output_tokens"),
				"input_cached_tokens": jsonInt(t, km, "input_cached_tokens"), "num_model_requests": jsonInt(t, km, "num_model_requests"),
			}
			for k, w := range map[string]int64{"input_tokens": want.InputTokens, "output_tokens": want.OutputTokens,
				"input_cached_tokens": want.CachedInputTokens, "num_model_requests": want.Requests} {
				if got[k] != w {
					t.Errorf("usage/%s %s (%s): %s %d, the fake counted %d", role, name, id, k, got[k], w)
				}
			}
			if want.Requests != int64(s.calls[name]) {
				t.Errorf("the fake counted %d requests for %s, the test made %d", want.Requests, name, s.calls[name])
			}
			cost := km["cost"].(map[string]any)
			if c := jsonFloat(t, cost, "value"); math.Abs(c-want.CostUSD) > costTol || c <= 0 {
				t.Errorf("usage/%s %s cost %v, the fake's %v", role, name, c, want.CostUSD)
			}
			if cost["currency"] != "usd" {
				t.Errorf("usage/%s %s cost currency %v, want usd", role, name, cost["currency"])
			}
			if km["display_name"] != s.owner[name].displayName || km["entity_id"] != s.owner[name].entityID {
				t.Errorf("usage/%s %s names %v/%v, want %s/%s", role, name, km["display_name"], km["entity_id"], s.owner[name].displayName, s.owner[name].entityID)
			}
			sum.in += got["input_tokens"]
			sum.out += got["output_tokens"]
			sum.cached += got["input_cached_tokens"]
			sum.reqs += got["num_model_requests"]
			sum.cost += jsonFloat(t, cost, "value")
		}
		if !sawRevoked {
			t.Errorf("usage/%s omits the role's revoked key", role)
		}
		tot := sec.Data["totals"].(map[string]any)
		roleTotals[role] = tot
		if jsonInt(t, tot, "keys") != 2 || jsonInt(t, tot, "input_tokens") != sum.in || jsonInt(t, tot, "output_tokens") != sum.out ||
			jsonInt(t, tot, "input_cached_tokens") != sum.cached || jsonInt(t, tot, "num_model_requests") != sum.reqs ||
			math.Abs(jsonFloat(t, tot["cost"].(map[string]any), "value")-sum.cost) > costTol {
			t.Errorf("usage/%s totals %v, want the sum of its keys %+v", role, tot, sum)
		}
		t.Logf("usage/%s: %d upstream calls, totals %v", role, jsonInt(t, sec.Data, "upstream_calls"), tot)
		grand.in, grand.out, grand.cached, grand.reqs, grand.cost = grand.in+sum.in, grand.out+sum.out, grand.cached+sum.cached, grand.reqs+sum.reqs, grand.cost+sum.cost
	}

	sec, err := v.Client.Logical().Read("openai/usage/")
	if err != nil || sec == nil {
		t.Fatalf("usage/: %v", err)
	}
	tot := sec.Data["totals"].(map[string]any)
	if jsonInt(t, tot, "keys") != 4 || jsonInt(t, tot, "input_tokens") != grand.in || jsonInt(t, tot, "output_tokens") != grand.out ||
		jsonInt(t, tot, "input_cached_tokens") != grand.cached || jsonInt(t, tot, "num_model_requests") != grand.reqs ||
		math.Abs(jsonFloat(t, tot["cost"].(map[string]any), "value")-grand.cost) > costTol {
		t.Errorf("usage/ totals %v, want the sum of usage/alpha and usage/beta %+v", tot, grand)
	}
	var fakeReqs int64
	for _, u := range fake {
		fakeReqs += u.Requests
	}
	if grand.cached == 0 {
		t.Errorf("usage/ counts no cached input tokens; the fake cached half of every input")
	}
	if grand.reqs != fakeReqs || grand.reqs != 7 {
		t.Errorf("usage/ counts %d model requests, the fake %d, the test made 7", grand.reqs, fakeReqs)
	}
	roles, _ := sec.Data["roles"].(map[string]any)
	for _, role := range []string{"alpha", "beta"} {
		r, _ := roles[role].(map[string]any)
		if r == nil || jsonInt(t, r, "input_tokens") != jsonInt(t, roleTotals[role], "input_tokens") ||
			jsonInt(t, r, "num_model_requests") != jsonInt(t, roleTotals[role], "num_model_requests") {
			t.Errorf("usage/ roles.%s = %v, want usage/%s's totals %v", role, r, role, roleTotals[role])
		}
	}
}
