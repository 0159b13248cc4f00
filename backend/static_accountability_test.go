package backend

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// Static roles' keys in the accountability features: the issuance ledger
// (keys/), the metrics, and the config guard.

func (e *testEnv) ledgerEntry(keyID string) map[string]interface{} {
	e.t.Helper()
	resp := e.mustOK(logical.ReadOperation, "keys/"+keyID, nil)
	if resp == nil || resp.Data == nil {
		e.t.Fatalf("no ledger entry for %s", keyID)
	}
	return resp.Data
}

// assertNoValue fails if any field of data carries the key value.
func assertNoValue(t *testing.T, data map[string]interface{}, value string) {
	t.Helper()
	for k, v := range data {
		if s, ok := v.(string); ok && strings.Contains(s, value) {
			t.Fatalf("ledger field %s carries the key value", k)
		}
	}
}

func TestStatic_LedgerRecordsEveryKeyAndHowItEnded(t *testing.T) {
	e := newStaticEnv(t)
	e.writeRole("dyn", map[string]interface{}{"ttl": "1h"})
	issued := e.mustOK(logical.ReadOperation, "creds/dyn", nil).Data["api_key_id"].(string)
	e.mustOK(logical.UpdateOperation, "static-roles/app", map[string]interface{}{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "2h", "overlap": "10m",
	})
	first := e.staticCreds("app")
	k1, v1 := first["api_key_id"].(string), first["api_key"].(string)

	entry := e.ledgerEntry(k1)
	if entry["static_role"] != "app" || entry["role"] != "" || entry["state"] != "live" || entry["revoked_by"] != "" ||
		entry["key_hint"] != v1[len(v1)-4:] || entry["key_sha256"] != keySHA256(v1) || entry["issued_at"] == "" ||
		entry["service_account_id"] != first["service_account_id"] {
		t.Fatalf("ledger entry of the first static key: %v", entry)
	}
	assertNoValue(t, entry, v1)

	e.mustOK(logical.UpdateOperation, "static-roles/app/rotate", nil)
	k2, v2 := e.staticCreds("app")["api_key_id"].(string), e.staticCreds("app")["api_key"].(string)
	if e.ledgerEntry(k1)["state"] != "live" {
		t.Fatal("the previous key is live during its overlap, but the ledger says otherwise")
	}
	// The overlap ends: the tick deletes the previous key.
	r := e.staticRole("app")
	r.Previous.EndsAt = time.Now().Add(-time.Second)
	e.putStatic("app", r)
	e.tick()
	if got := e.ledgerEntry(k1); got["state"] != "revoked" || got["revoked_by"] != endedByRotation || got["revoked_at"] == "" {
		t.Fatalf("the replaced key's entry after its overlap: %v", got)
	}

	// List: both static keys, with static_role; filters keep them apart
	// from issued keys.
	list := e.mustOK(logical.ListOperation, "keys/", map[string]interface{}{"static_role": "app"})
	keys := list.Data["keys"].([]string)
	if len(keys) != 2 || !slices.Contains(keys, k1) || !slices.Contains(keys, k2) {
		t.Fatalf("keys/ static_role=app: %v, want %s and %s", keys, k1, k2)
	}
	info := list.Data["key_info"].(map[string]interface{})[k2].(map[string]interface{})
	if info["static_role"] != "app" || info["state"] != "live" {
		t.Fatalf("key_info of the current static key: %v", info)
	}
	if all := e.mustOK(logical.ListOperation, "keys/", nil).Data["keys"].([]string); len(all) != 3 || !slices.Contains(all, issued) {
		t.Fatalf("keys/ unfiltered: %v, want the issued key and both static keys", all)
	}
	if dyn := e.mustOK(logical.ListOperation, "keys/", map[string]interface{}{"role": "dyn"}).Data["keys"].([]string); len(dyn) != 1 || dyn[0] != issued {
		t.Fatalf("keys/ role=dyn: %v", dyn)
	}
	if live := e.mustOK(logical.ListOperation, "keys/", map[string]interface{}{"static_role": "app", "state": "live"}).Data["keys"].([]string); len(live) != 1 || live[0] != k2 {
		t.Fatalf("keys/ static_role=app state=live: %v, want %s", live, k2)
	}

	// Lookup by the full value and by the redacted form.
	m := e.mustOK(logical.UpdateOperation, "keys/lookup", map[string]interface{}{"api_key": v2}).Data["matches"].([]interface{})
	if len(m) != 1 || m[0].(map[string]interface{})["api_key_id"] != k2 || m[0].(map[string]interface{})["static_role"] != "app" {
		t.Fatalf("lookup by the current static key's value: %v", m)
	}
	m = e.mustOK(logical.ReadOperation, "keys/lookup", map[string]interface{}{"redacted_value": "sk-svcacct-..." + v1[len(v1)-4:]}).Data["matches"].([]interface{})
	found := false
	for _, x := range m {
		found = found || x.(map[string]interface{})["api_key_id"] == k1
	}
	if !found {
		t.Fatalf("lookup by the replaced static key's redacted value: %v", m)
	}

	e.mustOK(logical.DeleteOperation, "static-roles/app", nil)
	if got := e.ledgerEntry(k2); got["state"] != "revoked" || got["revoked_by"] != endedByRoleDelete {
		t.Fatalf("the current key's entry after the role's delete: %v", got)
	}
	if got := e.ledgerEntry(k1); got["revoked_by"] != endedByRotation {
		t.Fatalf("the replaced key's cause changed with the role's delete: %v", got)
	}
}

// A key made and never stored (the store failed) is in the ledger, ended
// by rollback; so is one a rollback deletes after a crash.
func TestStatic_LedgerUnstoredKeysEndedByRollback(t *testing.T) {
	e := newStaticEnv(t)
	e.mustOK(logical.UpdateOperation, "static-roles/app", map[string]interface{}{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "2h", "overlap": 0,
	})
	current := e.staticCreds("app")["api_key_id"].(string)
	on := true
	if err := e.rotateWithStorage("app", failingStaticPut{e.storage, &on}); err == nil {
		t.Fatal("rotate succeeded with storage failing")
	}
	list := e.mustOK(logical.ListOperation, "keys/", map[string]interface{}{"static_role": "app", "state": "revoked"}).Data["keys"]
	ended, _ := list.([]string)
	if len(ended) != 1 || ended[0] == current {
		t.Fatalf("revoked static keys after a failed store: %v (current %s)", list, current)
	}
	if got := e.ledgerEntry(ended[0]); got["revoked_by"] != revokedByRollback {
		t.Fatalf("the unstored key's entry: %v", got)
	}

	// The crash state: the key created and recorded, not stored, its WAL
	// entry left (delete refused too); rollback ends the entry.
	e.setFault(fakeopenai.OpDeleteProjectKey, fakeopenai.Fault403, 0, 1, 0)
	if err := e.rotateWithStorage("app", failingStaticPut{e.storage, &on}); err == nil {
		t.Fatal("rotate succeeded with storage failing")
	}
	e.fake.SetFaults(fakeopenai.Faults{})
	live := e.mustOK(logical.ListOperation, "keys/", map[string]interface{}{"static_role": "app", "state": "live"}).Data["keys"].([]string)
	if len(live) != 2 {
		t.Fatalf("live static entries before rollback: %v, want the current key and the unstored one", live)
	}
	e.rollbackNow()
	live = e.mustOK(logical.ListOperation, "keys/", map[string]interface{}{"static_role": "app", "state": "live"}).Data["keys"].([]string)
	if len(live) != 1 || live[0] != current {
		t.Fatalf("live static entries after rollback: %v, want only %s", live, current)
	}
	e.assertStaticInvariants("app")
}

func TestStatic_LedgerPrunedAfterRetention(t *testing.T) {
	e := newStaticEnv(t)
	e.mustOK(logical.UpdateOperation, "static-roles/app", map[string]interface{}{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "2h", "overlap": 0,
	})
	first := e.staticCreds("app")["api_key_id"].(string)
	e.mustOK(logical.UpdateOperation, "static-roles/app/rotate", nil) // overlap 0: first ends now
	ctx := context.Background()
	if n, err := e.b.pruneStaticLedger(ctx, e.storage, time.Now(), time.Hour); err != nil || n != 0 {
		t.Fatalf("pruned %d (%v) inside retention", n, err)
	}
	if n, err := e.b.pruneStaticLedger(ctx, e.storage, time.Now().Add(2*time.Hour), time.Hour); err != nil || n != 1 {
		t.Fatalf("pruned %d (%v) past retention, want the ended key", n, err)
	}
	if resp, err := e.do(logical.ReadOperation, "keys/"+first, nil); err != nil || resp != nil {
		t.Fatalf("the pruned entry is still read: %v %v", resp, err)
	}
	if stored, _ := getStaticKeyEntry(ctx, e.storage, first); stored != nil {
		t.Fatal("the pruned entry is still stored")
	}
	e.ledgerEntry(e.staticCreds("app")["api_key_id"].(string)) // the live one stays
}

func TestStatic_Metrics(t *testing.T) {
	e := newStaticEnv(t)
	e.mustOK(logical.UpdateOperation, "static-roles/app", map[string]interface{}{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "2h", "overlap": "10m",
	})
	fams := e.scrape()
	if ok := metricValue(fams, "openai_static_rotations_total", map[string]string{"static_role": "app", "result": "ok"}); ok != 1 {
		t.Fatalf("rotations ok after the first key: %v", ok)
	}
	if n := metricValue(fams, "openai_static_live_keys", map[string]string{"static_role": "app"}); n != 1 {
		t.Fatalf("live static keys after the first key: %v", n)
	}
	e.mustOK(logical.UpdateOperation, "static-roles/app/rotate", nil)
	e.setFault(fakeopenai.OpCreateServiceAccountKey, fakeopenai.Fault400, 1, 0, 0)
	// The previous key is deleted first (a rotation inside the overlap),
	// then the create is refused.
	if _, err := e.do(logical.UpdateOperation, "static-roles/app/rotate", nil); err == nil {
		t.Fatal("rotate succeeded with the create refused")
	}
	fams = e.scrape()
	if ok, failed := metricValue(fams, "openai_static_rotations_total", map[string]string{"static_role": "app", "result": "ok"}),
		metricValue(fams, "openai_static_rotations_total", map[string]string{"static_role": "app", "result": "failed"}); ok != 2 || failed != 1 {
		t.Fatalf("rotations ok %v failed %v, want 2 and 1", ok, failed)
	}
	if n := metricValue(fams, "openai_static_live_keys", map[string]string{"static_role": "app"}); n != 1 {
		t.Fatalf("live static keys after the refused rotation: %v, want the current one", n)
	}
	if n := metricValue(fams, "openai_live_keys", nil); n != 0 {
		t.Fatalf("static keys counted in openai_live_keys (the dynamic roles' gauge): %v", n)
	}
	e.mustOK(logical.DeleteOperation, "static-roles/app", nil)
	if n := metricValue(e.scrape(), "openai_static_live_keys", map[string]string{"static_role": "app"}); n != 0 {
		t.Fatal("a deleted static role still has live keys in the gauge")
	}
}

func TestStatic_ConfigGuard(t *testing.T) {
	e := newStaticEnv(t)
	e.mustOK(logical.UpdateOperation, "static-roles/app", map[string]interface{}{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "2h",
	})
	e.mustBadRequest(logical.DeleteOperation, "config", nil, "1 static role(s) (app)")
	e.mustBadRequest(logical.UpdateOperation, "config", map[string]interface{}{"base_url": "http://127.0.0.1:9/v1"}, "refusing to change base_url: 1 static role(s)")
	e.mustBadRequest(logical.UpdateOperation, "config", map[string]interface{}{"organization_id": "org-other"}, "refusing to change organization_id: 1 static role(s)")
	if cfg, _ := getConfig(context.Background(), e.storage); cfg == nil {
		t.Fatal("config gone after a refused delete")
	}
	// force=true proceeds; the role's keys then wait for config.
	e.mustOK(logical.DeleteOperation, "config", map[string]interface{}{"force": true})
	e.configure()
	e.mustOK(logical.DeleteOperation, "static-roles/app", nil)
	e.mustOK(logical.DeleteOperation, "config", nil)
}

// Tidy: a static role's account (the engine's own, named vault-static-...)
// is tracked while the role exists; one whose role is gone (storage lost,
// or a rollback that gave up) is reported as untracked and never deleted,
// since its name alone cannot say which mount it belongs to.
func TestStatic_TidyKnowsStaticAccounts(t *testing.T) {
	e := newStaticEnv(t)
	e.mustOK(logical.UpdateOperation, "static-roles/app", map[string]interface{}{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "2h",
	})
	e.writeRole("dyn", map[string]interface{}{"ttl": "1h"}) // lists the project without the static role too
	account := e.staticRole("app").ServiceAccountID
	rep := e.tidy(nil)
	if rep["untracked_marked"] != 0 || rep["deleted"] != 0 || rep["projects_listed"] != 1 {
		t.Fatalf("tidy with a static role: %v", rep)
	}
	if !e.liveAccountIDs()[account] {
		t.Fatal("tidy deleted the static role's account")
	}
	// The role's storage lost, the account left behind.
	if err := e.storage.Delete(context.Background(), staticRoleStoragePrefix+"app"); err != nil {
		t.Fatal(err)
	}
	rep = e.tidy(nil)
	if rep["untracked_marked"] != 1 || rep["deleted"] != 0 {
		t.Fatalf("tidy with an orphaned static account: %v", rep)
	}
	if !e.liveAccountIDs()[account] {
		t.Fatal("tidy deleted an untracked account")
	}
}
