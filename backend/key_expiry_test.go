package backend

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// Keys whose OpenAI-side expiry follows their lease (expiry_follows_lease,
// expiry_grace).

// keyOf returns the issued key as the fake holds it.
func (e *testEnv) keyOf(resp *logical.Response) fakeopenai.KeyInfo {
	e.t.Helper()
	k, ok := e.fake.Key(resp.Data["api_key_id"].(string))
	if !ok {
		e.t.Fatalf("key %v not at the fake", resp.Data["api_key_id"])
	}
	return k
}

// near fails unless got is within 5s of want.
func near(t *testing.T, what string, got, want int64) {
	t.Helper()
	if got < want-5 || got > want+5 {
		t.Fatalf("%s = %d, want about %d (off by %ds)", what, got, want, got-want)
	}
}

func TestExpiry_KeyTracksLeaseThroughRenewals(t *testing.T) {
	for _, scoped := range []bool{false, true} {
		t.Run(map[bool]string{false: "unscoped", true: "scoped"}[scoped], func(t *testing.T) {
			e := newTestEnv(t)
			e.configure()
			role := map[string]interface{}{"ttl": "10m", "max_ttl": "2h"}
			if scoped {
				role["scopes"] = "api.model.read"
			}
			e.writeRole("app", role)
			resp := e.issue("app", nil)
			issued := time.Now()
			near(t, "first key expiry", e.keyOf(resp).ExpiresAt, issued.Add(15*time.Minute).Unix())

			for i, inc := range []time.Duration{30 * time.Minute, 20 * time.Minute, 45 * time.Minute} {
				e.fake.ResetCalls()
				r, err := e.renew(resp.Secret, issued, inc)
				if err != nil || r.IsError() {
					t.Fatalf("renew %d: %v %v", i+1, err, r)
				}
				calls := e.fake.Calls()
				if e.totalCalls() != 1 || calls[fakeopenai.OpUpdateProjectKey] != 1 {
					t.Fatalf("renew %d made calls %v, want exactly one key update", i+1, calls)
				}
				want := time.Now().Add(r.Secret.TTL + defaultExpiryGrace).Unix()
				near(t, "key expiry after renew", e.keyOf(resp).ExpiresAt, want)
				if rec := e.record(saID(resp)); rec.KeyExpiresAt != e.keyOf(resp).ExpiresAt {
					t.Fatalf("renew %d: record says the key expires at %d, OpenAI at %d", i+1, rec.KeyExpiresAt, e.keyOf(resp).ExpiresAt)
				}
			}
		})
	}
}

// The key's expiry never passes the lease's maximum lifetime: near the end
// the grace is cut, and the key dies with the lease.
func TestExpiry_NeverPastMaxTTL(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{"ttl": "58m", "max_ttl": "1h"})
	resp := e.issue("app", nil)
	issued := time.Now()
	cap := issued.Add(time.Hour).Unix()
	near(t, "first key expiry (58m + 5m grace, capped at 1h)", e.keyOf(resp).ExpiresAt, cap)
	if _, err := e.renew(resp.Secret, issued, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := e.keyOf(resp).ExpiresAt; got > cap {
		t.Fatalf("renew moved the key's expiry %ds past the lease's max lifetime", got-cap)
	}
}

func TestExpiry_OffIsMaxTTLAndRenewMakesNoCall(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{"ttl": "10m", "max_ttl": "2h", "expiry_follows_lease": false})
	if v := e.mustOK(logical.ReadOperation, "roles/app", nil).Data["expiry_follows_lease"]; v != false {
		t.Fatalf("expiry_follows_lease read back %v", v)
	}
	resp := e.issue("app", nil)
	issued := time.Now()
	near(t, "key expiry", e.keyOf(resp).ExpiresAt, issued.Add(2*time.Hour).Unix())
	if _, ok := resp.Secret.InternalData["expiry_follows_lease"]; ok {
		t.Fatal("a lease of a role with expiry_follows_lease=false is marked to follow")
	}
	e.fake.ResetCalls()
	r, err := e.renew(resp.Secret, issued, 30*time.Minute)
	if err != nil || r.IsError() || r.Secret.TTL != 30*time.Minute {
		t.Fatalf("renew: %v %v", err, r)
	}
	if n := e.totalCalls(); n != 0 {
		t.Fatalf("renew with expiry_follows_lease=false made %d calls", n)
	}
}

// Leases issued before this version carry no flag: they renew as before,
// without a call, whatever the role now says.
func TestExpiry_LeasesFromOlderVersionsRenewWithoutACall(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{"ttl": "10m", "max_ttl": "2h"})
	resp := e.issue("app", nil)
	old := *resp.Secret
	old.InternalData = map[string]interface{}{}
	for _, k := range []string{"secret_type", "service_account_id", "project_id", "api_key_id", "role", "max_ttl"} {
		old.InternalData[k] = resp.Secret.InternalData[k]
	}
	noKeyID := old
	noKeyID.InternalData = map[string]interface{}{"secret_type": secretAPIKeyType, "expiry_follows_lease": true, "service_account_id": saID(resp), "project_id": fakeopenai.ProjectActive, "role": "app", "max_ttl": 7200}
	for _, s := range []*logical.Secret{&old, &noKeyID} {
		e.fake.ResetCalls()
		r, err := e.renew(s, time.Now(), 30*time.Minute)
		if err != nil || r.IsError() || r.Secret.TTL != 30*time.Minute {
			t.Fatalf("renew of an old lease: %v %v", err, r)
		}
		if n := e.totalCalls(); n != 0 {
			t.Fatalf("renewing a lease from an older version made %d calls", n)
		}
	}
}

// Roles stored before expiry_follows_lease existed follow their leases
// (the default).
func TestExpiry_RolesFromOlderVersionsFollowTheLease(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	entry, err := logical.StorageEntryJSON(roleStoragePrefix+"old", map[string]interface{}{
		"project_id": fakeopenai.ProjectActive, "name_template": defaultNameTemplate, "ttl": int64(10 * time.Minute), "max_ttl": int64(2 * time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.storage.Put(context.Background(), entry); err != nil {
		t.Fatal(err)
	}
	d := e.mustOK(logical.ReadOperation, "roles/old", nil).Data
	if d["expiry_follows_lease"] != true || len(d["scopes"].([]string)) != 0 {
		t.Fatalf("old role reads %v", d)
	}
	resp := e.issue("old", nil)
	near(t, "key expiry", e.keyOf(resp).ExpiresAt, time.Now().Add(15*time.Minute).Unix())
}

// OpenAI refuses to move the expiry (here: the key was deleted by hand):
// the renewal fails, saying why, and record and key keep their expiry.
func TestExpiry_RenewFailsWhenOpenAIRefuses(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{"ttl": "10m", "max_ttl": "2h"})
	resp := e.issue("app", nil)
	before := e.record(saID(resp)).KeyExpiresAt

	e.setFault(fakeopenai.OpUpdateProjectKey, fakeopenai.Fault400, 1, 0, 0)
	_, err := e.renew(resp.Secret, time.Now(), time.Hour)
	if err == nil || !strings.Contains(err.Error(), "the lease is not extended") || !strings.Contains(err.Error(), "HTTP 400") {
		t.Fatalf("renew error %v", err)
	}
	e.assertNoSecret("renew error", err.Error(), resp.Data["api_key"].(string))
	if got := e.keyOf(resp).ExpiresAt; got != before {
		t.Fatalf("key expiry moved to %d although the update was refused (was %d)", got, before)
	}
	if got := e.record(saID(resp)).KeyExpiresAt; got != before {
		t.Fatalf("record expiry moved to %d although the update was refused", got)
	}

	e.fake.SetFaults(fakeopenai.Faults{})
	e.fake.DeleteKey(fakeopenai.ProjectActive, resp.Data["api_key_id"].(string))
	if _, err := e.renew(resp.Secret, time.Now(), time.Hour); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("renewing a key deleted at OpenAI: %v", err)
	}
}

// The hazard: tidy deletes accounts whose recorded key expiry has passed. A
// renewed lease's key lives past its first expiry, so the record must say
// so, or tidy would delete a live lease's account.
func TestExpiry_TidyLeavesARenewedLeaseAlone(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{"ttl": "10m", "max_ttl": "4h"})
	resp := e.issue("app", nil)
	issued := time.Now()
	if _, err := e.renew(resp.Secret, issued, 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	// Past the first expiry (15m) plus tidy's clock-skew allowance (10m),
	// well inside the renewed lease.
	rep, err := e.b.tidy(context.Background(), e.storage, issued.Add(time.Hour), false, false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Deleted != 0 || rep.KeyExpired != 0 || !e.liveAccountIDs()[saID(resp)] {
		t.Fatalf("tidy judged a renewed lease's key expired: %+v", rep)
	}
	// Past the renewed key's expiry (2h + 5m) plus the allowance, tidy
	// does delete it: the record is what tidy trusts.
	rep, err = e.b.tidy(context.Background(), e.storage, issued.Add(2*time.Hour+16*time.Minute), false, false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Deleted != 1 || e.liveAccountIDs()[saID(resp)] {
		t.Fatalf("tidy past the renewed key's expiry: %+v", rep)
	}
}

func TestExpiry_GraceConfig(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	if got := e.mustOK(logical.ReadOperation, "config", nil).Data["expiry_grace"]; got != int64(300) {
		t.Fatalf("default expiry_grace reads %v", got)
	}
	for _, bad := range []interface{}{"59s", "0", "25h"} {
		e.mustBadRequest(logical.UpdateOperation, "config", map[string]interface{}{"expiry_grace": bad}, "expiry_grace must be between 1m0s and 24h0m0s")
	}
	// Vault's own field parsing refuses a negative duration, naming the field.
	e.mustBadRequest(logical.UpdateOperation, "config", map[string]interface{}{"expiry_grace": "-5m"}, `"expiry_grace"`)
	if got := e.storedConfig().ExpiryGrace; got != 0 {
		t.Fatalf("refused writes stored expiry_grace %s", got)
	}
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{"expiry_grace": "20m"})
	if got := e.mustOK(logical.ReadOperation, "config", nil).Data["expiry_grace"]; got != int64(1200) {
		t.Fatalf("expiry_grace reads %v", got)
	}
	e.writeRole("app", map[string]interface{}{"ttl": "10m", "max_ttl": "2h"})
	resp := e.issue("app", nil)
	issued := time.Now()
	near(t, "key expiry with a 20m grace", e.keyOf(resp).ExpiresAt, issued.Add(30*time.Minute).Unix())
	if _, err := e.renew(resp.Secret, issued, time.Hour); err != nil {
		t.Fatal(err)
	}
	near(t, "renewed key expiry with a 20m grace", e.keyOf(resp).ExpiresAt, time.Now().Add(80*time.Minute).Unix())
}
