package backend

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// issueWith issues a key with the requester fields the ledger records.
func (e *testEnv) issueWith(role, displayName, entityID, requestID string, data map[string]interface{}) *logical.Response {
	e.t.Helper()
	resp, err := e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.UpdateOperation, Path: "creds/" + role, Storage: e.storage, Data: data,
		DisplayName: displayName, EntityID: entityID, ID: requestID, MountAccessor: "openai_test",
	})
	if err != nil || resp == nil || resp.IsError() || resp.Secret == nil {
		e.t.Fatalf("issue %s: %v %#v", role, err, resp)
	}
	return resp
}

// revokeLease revokes as Vault would now, for a lease issued at issued
// with ttl (Vault passes the issue time and the TTL, not the lease id of a
// lease never renewed).
func (e *testEnv) revokeLease(resp *logical.Response, issued time.Time, ttl time.Duration, leaseID string) {
	e.t.Helper()
	s := *resp.Secret
	s.IssueTime, s.TTL, s.LeaseID = issued, ttl, leaseID
	if err := e.revoke(&s); err != nil {
		e.t.Fatalf("revoke: %v", err)
	}
}

func (e *testEnv) ledgerRead(keyID string) map[string]interface{} {
	e.t.Helper()
	resp := e.mustOK(logical.ReadOperation, "keys/"+keyID, nil)
	if resp == nil {
		e.t.Fatalf("keys/%s: no entry", keyID)
	}
	return resp.Data
}

func keyID(r *logical.Response) string { return r.Data["api_key_id"].(string) }

func TestLedger_IssueRecordsWhoReceivedTheKeyAndNeverItsValue(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{"max_ttl": "2h"})
	resp := e.issueWith("app", "token-alice", "ent-1", "req-1", nil)
	key := resp.Data["api_key"].(string)

	r := e.record(saID(resp))
	want := accountRecord{APIKeyID: keyID(resp), DisplayName: "token-alice", EntityID: "ent-1", RequestID: "req-1",
		KeyHash: keySHA256(key), KeyHint: key[len(key)-4:]}
	if r.APIKeyID != want.APIKeyID || r.DisplayName != want.DisplayName || r.EntityID != want.EntityID ||
		r.RequestID != want.RequestID || r.KeyHash != want.KeyHash || r.KeyHint != want.KeyHint || r.LeaseID != "" || r.revoked() {
		t.Fatalf("record %+v, want ledger fields %+v", r, want)
	}
	d := e.ledgerRead(keyID(resp))
	for k, v := range map[string]interface{}{
		"api_key_id": keyID(resp), "service_account_id": saID(resp), "project_id": fakeopenai.ProjectActive, "role": "app",
		"display_name": "token-alice", "entity_id": "ent-1", "request_id": "req-1", "state": "live", "revoked_by": "",
		"key_hint": key[len(key)-4:], "key_sha256": keySHA256(key), "lease_id": "",
	} {
		if d[k] != v {
			t.Errorf("keys/<id> %s = %v, want %v", k, d[k], v)
		}
	}
	raw, _ := e.storage.Get(context.Background(), accountStoragePrefix+saID(resp))
	e.assertNoSecret("ledger entry", string(raw.Value)+fmt.Sprint(d), key)

	e.mustBadRequest(logical.ReadOperation, "keys/not.a.key", nil, "api_key_id")
	if resp, err := e.do(logical.ReadOperation, "keys/key_000000000000", nil); err != nil || resp != nil {
		t.Fatalf("unknown key id: %v %#v, want 404 (nil response)", err, resp)
	}
}

func TestLedger_ScopesAreRecorded(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("scoped", map[string]interface{}{"scopes": "api.model.read,api.responses.write"})
	resp := e.issue("scoped", map[string]interface{}{"scopes": "api.model.read"})
	if got := e.ledgerRead(keyID(resp))["scopes"]; fmt.Sprint(got) != "[api.model.read]" {
		t.Fatalf("scopes in the ledger: %v", got)
	}
}

func TestLedger_LeaseIDFilledOnRenewAndOnRevoke(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{"ttl": "1h", "max_ttl": "2h"})

	renewed := e.issue("app", nil)
	s := *renewed.Secret
	s.LeaseID = "openai/creds/app/lease-renewed"
	if _, err := e.renew(&s, time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := e.record(saID(renewed)).LeaseID; got != s.LeaseID {
		t.Fatalf("lease_id after renew %q, want %q", got, s.LeaseID)
	}

	revoked := e.issue("app", nil)
	e.revokeLease(revoked, time.Now(), time.Hour, "openai/creds/app/lease-revoked")
	d := e.ledgerRead(keyID(revoked))
	if d["lease_id"] != "openai/creds/app/lease-revoked" || d["state"] != "revoked" || d["revoked_by"] != revokedByRevoke {
		t.Fatalf("after revoke: %v", d)
	}
}

func TestLedger_EachCauseOfRevocationIsRecorded(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{"ttl": "1h", "max_ttl": "1h"})
	issued := e.issueN("app", 4)

	// revoke: long before the lease's end; expiry: at its end.
	e.revokeLease(issued[0], time.Now(), time.Hour, "")
	e.revokeLease(issued[1], time.Now().Add(-time.Hour), time.Hour, "")

	// rollback: a record left pending by an earlier build, its WAL entry
	// still there, so no lease owns the account.
	r := e.record(saID(issued[2]))
	name := r.Name
	walID, err := framework.PutWAL(context.Background(), e.storage, walKindServiceAccount, &walServiceAccount{
		ProjectID: r.ProjectID, Name: name, Token: name[strings.LastIndex(name, "-")+1:],
		CreatedAt: r.CreatedAt - 1, ExpiresAt: r.ExpiresAt,
	})
	if err != nil {
		t.Fatal(err)
	}
	r.WALID = walID
	if err := e.b.putRecord(context.Background(), e.storage, r); err != nil {
		t.Fatal(err)
	}
	e.rollbackNow()

	// tidy: a lease Vault lost.
	e.ageRecord(saID(issued[3]), staleBy)
	assertCounts(t, e.tidy(nil), map[string]int{"records": 1, "deleted": 1})

	want := []string{revokedByRevoke, revokedByExpiry, revokedByRollback, revokedByTidy}
	for i, resp := range issued {
		d := e.ledgerRead(keyID(resp))
		if d["state"] != "revoked" || d["revoked_by"] != want[i] || d["revoked_at"] == "" {
			t.Errorf("key %d: state %v revoked_by %v revoked_at %v, want revoked by %s", i, d["state"], d["revoked_by"], d["revoked_at"], want[i])
		}
	}
	if len(e.fake.LiveAccounts()) != 0 || e.recordCount() != 0 {
		t.Fatalf("%d accounts, %d live records left", len(e.fake.LiveAccounts()), e.recordCount())
	}
	// Ledger only: a second sweep neither counts nor touches them.
	e.fake.ResetCalls()
	assertCounts(t, e.tidy(nil), map[string]int{"records": 0, "deleted": 0, "already_gone": 0})
	if n := e.fake.Calls()[fakeopenai.OpDeleteServiceAccount]; n != 0 {
		t.Fatalf("%d deletes of revoked entries' accounts", n)
	}
	// A later revoke of an already revoked entry keeps its first cause.
	e.revokeLease(issued[3], time.Now(), time.Hour, "lease-late")
	if d := e.ledgerRead(keyID(issued[3])); d["revoked_by"] != revokedByTidy || d["lease_id"] != "lease-late" {
		t.Fatalf("late revoke changed the entry: %v", d)
	}
}

func TestLedger_RevokedKeysFreeTheirCapAndConfig(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("capped", map[string]interface{}{"max_live_keys": 1})
	first := e.issue("capped", nil)
	e.mustBadRequest(logical.UpdateOperation, "creds/capped", nil, "max_live_keys")
	e.revokeLease(first, time.Now(), time.Hour, "")
	second := e.issue("capped", nil) // the revoked entry no longer counts
	e.mustBadRequest(logical.DeleteOperation, "config", nil, "1 key(s) issued by this mount are still live")
	e.revokeLease(second, time.Now(), time.Hour, "")
	e.walCount()
	e.mustOK(logical.DeleteOperation, "config", nil) // revoked entries hold nothing up
}

func TestLedger_LookupByFullKeyAndByRedactedValue(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	alice := e.issueWith("app", "token-alice", "ent-a", "req-a", nil)
	e.issueWith("app", "token-bob", "ent-b", "req-b", nil)
	key := alice.Data["api_key"].(string)

	resp := e.mustOK(logical.UpdateOperation, "keys/lookup", map[string]interface{}{"api_key": key})
	m := resp.Data["matches"].([]interface{})
	if len(m) != 1 || m[0].(map[string]interface{})["display_name"] != "token-alice" || resp.Data["matched_by"] != "api_key_sha256" {
		t.Fatalf("lookup by key: %v", resp.Data)
	}
	e.assertNoSecret("lookup response", fmt.Sprint(resp.Data), key)

	resp = e.mustOK(logical.UpdateOperation, "keys/lookup", map[string]interface{}{"api_key": key + "x"})
	if len(resp.Data["matches"].([]interface{})) != 0 {
		t.Fatalf("another key matched: %v", resp.Data)
	}

	for _, redacted := range []string{"sk-svcacct-..." + key[len(key)-4:], "sk-..." + key[len(key)-4:], "sk-svcac..." + key[len(key)-3:]} {
		resp = e.mustOK(logical.UpdateOperation, "keys/lookup", map[string]interface{}{"redacted_value": redacted})
		found := false
		for _, x := range resp.Data["matches"].([]interface{}) {
			if x.(map[string]interface{})["api_key_id"] == keyID(alice) {
				found = true
			}
		}
		if !found || resp.Data["matched_by"] != "key_hint" {
			t.Fatalf("lookup by %q: %v", redacted, resp.Data)
		}
	}
	resp = e.mustOK(logical.UpdateOperation, "keys/lookup", map[string]interface{}{"redacted_value": "sk-proj-..." + key[len(key)-4:]})
	if len(resp.Data["matches"].([]interface{})) != 0 {
		t.Fatalf("a project key's redacted value matched: %v", resp.Data)
	}

	e.mustBadRequest(logical.UpdateOperation, "keys/lookup", nil, "api_key")
	e.mustBadRequest(logical.UpdateOperation, "keys/lookup", map[string]interface{}{"api_key": key, "redacted_value": "sk-...abcd"}, "redacted_value")
	e.mustBadRequest(logical.UpdateOperation, "keys/lookup", map[string]interface{}{"redacted_value": "abcd"}, "redacted_value")
	e.mustBadRequest(logical.UpdateOperation, "keys/lookup", map[string]interface{}{"redacted_value": "sk-...ab"}, "redacted_value")
	e.mustBadRequest(logical.UpdateOperation, "keys/lookup", map[string]interface{}{"api_key": strings.Repeat("k", 2000)}, "api_key")
}

func TestLedger_ListPagesAndFilters(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("a", map[string]interface{}{})
	e.writeRole("b", map[string]interface{}{})
	as := e.issueN("a", 5)
	e.issueN("b", 3)
	e.revokeLease(as[0], time.Now(), time.Hour, "")
	e.revokeLease(as[1], time.Now(), time.Hour, "")

	list := func(data map[string]interface{}) (keys []string, next string) {
		t.Helper()
		resp := e.mustOK(logical.ListOperation, "keys/", data)
		if k, ok := resp.Data["keys"].([]string); ok {
			keys = k
		}
		next, _ = resp.Data["next_after"].(string)
		return keys, next
	}
	var all []string
	after := ""
	for pages := 0; ; pages++ {
		keys, next := list(map[string]interface{}{"limit": 3, "after": after})
		all = append(all, keys...)
		if next == "" {
			if pages != 2 {
				t.Fatalf("%d pages of 3 for 8 keys", pages+1)
			}
			break
		}
		after = next
	}
	if len(all) != 8 {
		t.Fatalf("paged through %d keys, want 8: %v", len(all), all)
	}
	for i := 1; i < len(all); i++ {
		if all[i-1] >= all[i] {
			t.Fatalf("not sorted or repeated: %v", all)
		}
	}
	for _, c := range []struct {
		data map[string]interface{}
		want int
	}{
		{map[string]interface{}{"role": "b"}, 3},
		{map[string]interface{}{"state": "revoked"}, 2},
		{map[string]interface{}{"state": "live", "role": "a"}, 3},
		{map[string]interface{}{"role": "nobody"}, 0},
	} {
		if keys, _ := list(c.data); len(keys) != c.want {
			t.Errorf("list %v: %d keys, want %d", c.data, len(keys), c.want)
		}
	}
	e.mustBadRequest(logical.ListOperation, "keys/", map[string]interface{}{"limit": 0}, "limit")
	e.mustBadRequest(logical.ListOperation, "keys/", map[string]interface{}{"limit": 1001}, "limit")
	e.mustBadRequest(logical.ListOperation, "keys/", map[string]interface{}{"state": "dead"}, "state")
	e.mustBadRequest(logical.ListOperation, "keys/", map[string]interface{}{"after": strings.Repeat("k", 300)}, "after")
}

func TestLedger_RetentionPrunesRevokedEntriesInBoundedBatches(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	if got := e.mustOK(logical.ReadOperation, "config", nil).Data["ledger_retention"]; got != int64(31*24*3600) {
		t.Fatalf("default ledger_retention %v", got)
	}
	e.mustBadRequest(logical.UpdateOperation, "config", map[string]interface{}{"ledger_retention": "30m"}, "ledger_retention")
	e.mustBadRequest(logical.UpdateOperation, "config", map[string]interface{}{"ledger_retention": "50000h"}, "ledger_retention")
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{"ledger_retention": "24h", "tidy_interval": 0})

	e.writeRole("app", map[string]interface{}{})
	live := e.issue("app", nil)
	recent := e.issue("app", nil)
	e.revokeLease(recent, time.Now(), time.Hour, "")
	// Old revoked entries, more than two batches of them.
	old := time.Now().Add(-25 * time.Hour).Unix()
	const n = 2*ledgerPruneBatch + 7
	for i := range n {
		r := &accountRecord{ServiceAccountID: fmt.Sprintf("svc_acct_old%05d", i), ProjectID: fakeopenai.ProjectActive, Role: "app",
			APIKeyID: fmt.Sprintf("key_old%05d", i), RevokedAt: old - int64(i), RevokedBy: revokedByExpiry}
		if err := e.b.putRecord(context.Background(), e.storage, r); err != nil {
			t.Fatal(err)
		}
	}
	total := func() int {
		ids, _ := listAccountIDs(context.Background(), e.storage)
		return len(ids)
	}
	for tick, want := range []int{n + 2 - ledgerPruneBatch, n + 2 - 2*ledgerPruneBatch, 2, 2} {
		e.tick()
		if got := total(); got != want {
			t.Fatalf("after tick %d: %d entries, want %d", tick+1, got, want)
		}
	}
	if e.record(saID(live)) == nil || e.ledgerRecord(saID(recent)) == nil {
		t.Fatal("pruned a live entry or one within retention")
	}
	if keys := e.mustOK(logical.ListOperation, "keys/", nil).Data["keys"].([]string); len(keys) != 2 {
		t.Fatalf("index still lists pruned entries: %d keys", len(keys))
	}
}

func TestLedger_IndexSurvivesARestart(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{"max_live_keys": 2})
	kept := e.issueWith("app", "token-alice", "", "req-a", nil)
	gone := e.issue("app", nil)
	e.revokeLease(gone, time.Now(), time.Hour, "")

	e.restart()
	resp := e.mustOK(logical.UpdateOperation, "keys/lookup", map[string]interface{}{"api_key": kept.Data["api_key"]})
	if m := resp.Data["matches"].([]interface{}); len(m) != 1 || m[0].(map[string]interface{})["display_name"] != "token-alice" {
		t.Fatalf("lookup after restart: %v", resp.Data)
	}
	if d := e.ledgerRead(keyID(gone)); d["state"] != "revoked" {
		t.Fatalf("revoked entry after restart: %v", d)
	}
	if keys := e.mustOK(logical.ListOperation, "keys/", map[string]interface{}{"state": "live"}).Data["keys"].([]string); len(keys) != 1 || keys[0] != keyID(kept) {
		t.Fatalf("live keys after restart: %v", keys)
	}
	// The cap counts the one live key, not the revoked entry.
	e.issue("app", nil)
	e.mustBadRequest(logical.UpdateOperation, "creds/app", nil, "max_live_keys")
}

func TestLedger_RevokeWritesOnce(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	resp := e.issue("app", nil)
	e.walCount()
	cs := newCountingStorage(e.storage)
	e.storage = cs
	e.revokeLease(resp, time.Now(), time.Hour, "")
	if p, d := cs.count("put"), cs.count("delete"); p != 1 || d != 0 {
		t.Fatalf("revoke made %d puts and %d deletes, want 1 and 0", p, d)
	}
}

// Vault passes a revocation the lease's issue time and TTL, not its last
// renewal: a renewal seen by this process moves the end the cause is
// judged by, so revoking a renewed lease after its first TTL is a revoke.
func TestLedger_RevokeAfterARenewalIsNotAnExpiry(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{"ttl": "1h", "max_ttl": "3h"})
	resp := e.issue("app", nil)
	issued := time.Now().Add(-70 * time.Minute)
	s := *resp.Secret
	if _, err := e.renew(&s, issued, time.Hour); err != nil {
		t.Fatal(err)
	}
	e.revokeLease(resp, issued, time.Hour, "")
	if d := e.ledgerRead(keyID(resp)); d["revoked_by"] != revokedByRevoke {
		t.Fatalf("revoked_by %v, want revoke", d["revoked_by"])
	}

	now := time.Now()
	for _, c := range []struct {
		issued time.Time
		ttl    time.Duration
		want   string
	}{
		{now, time.Hour, revokedByRevoke},
		{now.Add(-time.Hour), time.Hour, revokedByExpiry},
		{now.Add(-time.Hour + time.Second), time.Hour, revokedByExpiry}, // within the tolerance
		{now.Add(-time.Hour + 10*time.Second), time.Hour, revokedByRevoke},
		{time.Time{}, time.Hour, revokedByRevoke},
	} {
		sec := &logical.Secret{LeaseOptions: logical.LeaseOptions{TTL: c.ttl, IssueTime: c.issued}}
		if got := revokeCause(sec, time.Time{}, now); got != c.want {
			t.Errorf("issued %v ttl %v: %s, want %s", now.Sub(c.issued), c.ttl, got, c.want)
		}
	}
}
