package backend

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

func TestCreds_IssueIsOneCallWithExpiry(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{"ttl": "10m", "max_ttl": "2h"})
	e.fake.ResetCalls()

	resp := e.issue("app", nil)

	calls := e.fake.Calls()
	total := 0
	for _, n := range calls {
		total += n
	}
	if total != 1 || calls[fakeopenai.OpCreateServiceAccount] != 1 {
		t.Fatalf("issue made upstream calls %v, want exactly one create", calls)
	}
	d := resp.Data
	if !strings.HasPrefix(d["api_key"].(string), "sk-") || d["api_key_id"] == "" || d["project_id"] != fakeopenai.ProjectActive {
		t.Fatalf("response data %v", redactData(d))
	}
	if !strings.HasPrefix(d["service_account_name"].(string), "vault-app-token-tester-") {
		t.Fatalf("service_account_name = %v", d["service_account_name"])
	}
	if resp.Secret.TTL != 10*time.Minute || resp.Secret.MaxTTL != 2*time.Hour || !resp.Secret.Renewable {
		t.Fatalf("lease ttl=%s max=%s renewable=%v", resp.Secret.TTL, resp.Secret.MaxTTL, resp.Secret.Renewable)
	}
	live := e.fake.LiveAccounts()
	if len(live) != 1 || live[0].ID != d["service_account_id"] || live[0].Name != d["service_account_name"] {
		t.Fatalf("fake holds %+v", live)
	}
	// OpenAI-side expiry follows the lease: its first end (10m) plus the
	// default expiry_grace (5m).
	if got := live[0].KeyExpiresAt - live[0].CreatedAt; got < 895 || got > 905 {
		t.Fatalf("key expires %ds after creation, want ~900", got)
	}
	if e.walCount() != 0 {
		t.Fatalf("%d WAL entries left after a clean issue", e.walCount())
	}
	// Nothing secret in internal data, which Vault stores unencrypted by us.
	if _, ok := resp.Secret.InternalData["api_key"]; ok {
		t.Fatal("api key stored in lease internal data")
	}
}

func TestCreds_DefaultsToMountMaxAndCapsRequestedTTL(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	// A key whose expiry does not follow its lease expires at the lease's max.
	e.writeRole("app", map[string]interface{}{"expiry_follows_lease": false})
	resp := e.issue("app", nil)
	if resp.Secret.TTL != testDefaultLeaseTTL || resp.Secret.MaxTTL != testMaxLeaseTTL {
		t.Fatalf("ttl=%s max=%s", resp.Secret.TTL, resp.Secret.MaxTTL)
	}
	if got := e.fake.LiveAccounts()[0]; got.KeyExpiresAt-got.CreatedAt < int64(testMaxLeaseTTL.Seconds())-5 {
		t.Fatalf("key expiry %d not the mount max", got.KeyExpiresAt-got.CreatedAt)
	}

	e.writeRole("short", map[string]interface{}{"max_ttl": "1h"})
	resp = e.issue("short", map[string]interface{}{"ttl": "5h"})
	if resp.Secret.TTL > time.Hour {
		t.Fatalf("requested ttl not capped: %s", resp.Secret.TTL)
	}
	if len(resp.Warnings) == 0 || !strings.Contains(strings.Join(resp.Warnings, " "), "capped") {
		t.Fatalf("no cap warning: %v", resp.Warnings)
	}
	resp = e.issue("short", map[string]interface{}{"ttl": "90s"})
	if resp.Secret.TTL != 90*time.Second {
		t.Fatalf("requested ttl ignored: %s", resp.Secret.TTL)
	}
}

func TestCreds_RenewWithinAndPastMax(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{"ttl": "10m", "max_ttl": "1h"})
	resp := e.issue("app", nil)

	// Fresh lease: renewing for 20m grants 20m.
	r, err := e.renew(resp.Secret, time.Now(), 20*time.Minute)
	if err != nil || r.IsError() {
		t.Fatalf("renew: %v %v", err, r)
	}
	if r.Secret.TTL != 20*time.Minute {
		t.Fatalf("renewed ttl %s", r.Secret.TTL)
	}
	// 55 minutes in: only ~5 minutes remain.
	r, err = e.renew(resp.Secret, time.Now().Add(-55*time.Minute), 20*time.Minute)
	if err != nil || r.IsError() {
		t.Fatalf("renew near max: %v %v", err, r)
	}
	if r.Secret.TTL > 5*time.Minute+time.Second || r.Secret.TTL < 4*time.Minute {
		t.Fatalf("near-max renew ttl %s", r.Secret.TTL)
	}
	// The "capped" warning comes from Vault's expiration manager, which
	// recomputes the TTL from this response (renew_warning_once_test.go).
	// Past max: refused.
	if r, err := e.renew(resp.Secret, time.Now().Add(-61*time.Minute), 10*time.Minute); err == nil && !r.IsError() {
		t.Fatalf("renew past max_ttl granted %s", r.Secret.TTL)
	}
	// A role tightened after issue applies to renewals.
	e.mustOK(logical.UpdateOperation, "roles/app", map[string]interface{}{"max_ttl": "15m", "ttl": "5m"})
	r, err = e.renew(resp.Secret, time.Now().Add(-10*time.Minute), time.Hour)
	if err != nil || r.IsError() || r.Secret.TTL > 5*time.Minute+time.Second {
		t.Fatalf("renew under tightened role: %v %v", err, r)
	}
}

func TestCreds_RevokeDeletesAccount(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	a := e.issue("app", nil)
	b := e.issue("app", nil)
	if len(e.fake.LiveAccounts()) != 2 {
		t.Fatalf("want 2 live accounts")
	}
	if err := e.revoke(a.Secret); err != nil {
		t.Fatal(err)
	}
	live := e.liveAccountIDs()
	if live[a.Data["service_account_id"].(string)] || !live[b.Data["service_account_id"].(string)] || len(live) != 1 {
		t.Fatalf("after revoke live = %v", live)
	}
}

func TestCreds_RevokeOfAlreadyDeletedAccountSucceeds(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	resp := e.issue("app", nil)
	if !e.fake.DeleteAccount(fakeopenai.ProjectActive, resp.Data["service_account_id"].(string)) {
		t.Fatal("fake did not delete")
	}
	e.fake.ResetCalls()
	if err := e.revoke(resp.Secret); err != nil {
		t.Fatalf("revoke of a gone account: %v", err)
	}
	if n := e.fake.Calls()[fakeopenai.OpDeleteServiceAccount]; n != 1 {
		t.Fatalf("404 must not be retried: %d delete calls", n)
	}
}

func TestCreds_RevokeAfterRoleDeletion(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	resp := e.issue("app", nil)
	e.mustOK(logical.DeleteOperation, "roles/app", nil)
	if err := e.revoke(resp.Secret); err != nil {
		t.Fatal(err)
	}
	if n := len(e.fake.LiveAccounts()); n != 0 {
		t.Fatalf("%d accounts left", n)
	}
}

func TestCreds_RevokeRetriesThrottlingAndFailsLoudlyOn5xx(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.setDeleteRetryFloor(1) // fail within max_retries (2), not the delete floor
	e.writeRole("app", map[string]interface{}{})
	resp := e.issue("app", nil)

	e.fake.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{{Ops: []fakeopenai.Op{fakeopenai.OpDeleteServiceAccount}, Kind: fakeopenai.Fault500, Count: 10}}})
	err := e.revoke(resp.Secret)
	if err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("revoke under persistent 5xx: %v", err)
	}
	if len(e.fake.LiveAccounts()) != 1 {
		t.Fatal("account vanished although revoke failed")
	}

	e.fake.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{{Ops: []fakeopenai.Op{fakeopenai.OpDeleteServiceAccount}, Kind: fakeopenai.Fault429, Count: 1, RetryAfter: 1}}})
	if err := e.revoke(resp.Secret); err != nil {
		t.Fatalf("revoke should ride out one 429: %v", err)
	}
	if len(e.fake.LiveAccounts()) != 0 {
		t.Fatal("account survived revoke")
	}
}

func TestCreds_LostCreateResponseIsRolledBack(t *testing.T) {
	e := newTestEnv(t)
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{
		"admin_api_key": e.fake.AdminKey(), "base_url": e.url, "max_retries": 0,
	})
	e.writeRole("app", map[string]interface{}{})
	e.fake.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{{Ops: []fakeopenai.Op{fakeopenai.OpCreateServiceAccount}, Kind: fakeopenai.FaultLostResponse, Count: 1}}})

	resp, err := e.do(logical.UpdateOperation, "creds/app", nil)
	if err == nil && (resp == nil || !resp.IsError()) {
		t.Fatal("issue with a lost response succeeded")
	}
	if len(e.fake.LiveAccounts()) != 1 {
		t.Fatal("fake should hold the account whose response was lost")
	}
	if e.walCount() != 1 {
		t.Fatalf("want the WAL entry kept, have %d", e.walCount())
	}
	e.rollbackNow()
	if n := len(e.fake.LiveAccounts()); n != 0 {
		t.Fatalf("rollback left %d accounts", n)
	}
	if e.walCount() != 0 {
		t.Fatal("WAL entry survived a successful rollback")
	}
}

func TestCreds_RetriedCreateLeavesNoTwin(t *testing.T) {
	e := newTestEnv(t)
	e.configure() // max_retries 2
	e.writeRole("app", map[string]interface{}{})
	e.fake.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{{Ops: []fakeopenai.Op{fakeopenai.OpCreateServiceAccount}, Kind: fakeopenai.FaultLostResponse, Count: 1}}})

	resp := e.issue("app", nil) // the SDK retries after the lost response
	if n := len(e.fake.LiveAccounts()); n != 2 {
		t.Fatalf("want the lost twin and the issued account, have %d", n)
	}
	e.rollbackNow()
	live := e.fake.LiveAccounts()
	if len(live) != 1 || live[0].ID != resp.Data["service_account_id"] {
		t.Fatalf("after rollback live = %+v, want only the issued account", live)
	}
}

func TestCreds_RollbackSparesIssuedAccountsWithOtherNames(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	kept := e.issue("app", nil)
	// A WAL entry for a name never created: rollback finds nothing, deletes nothing.
	if err := e.b.rollbackServiceAccount(t.Context(), e.storage, &walServiceAccount{
		ProjectID: fakeopenai.ProjectActive, Name: "vault-never-created", CreatedAt: time.Now().Unix(), ExpiresAt: time.Now().Add(time.Hour).Unix(),
	}); err != nil {
		t.Fatal(err)
	}
	if !e.liveAccountIDs()[kept.Data["service_account_id"].(string)] {
		t.Fatal("rollback deleted an unrelated account")
	}
	// Entries for an archived project, or long past the key's expiry, settle.
	for _, w := range []*walServiceAccount{
		{ProjectID: fakeopenai.ProjectArchived, Name: "x", CreatedAt: time.Now().Unix(), ExpiresAt: time.Now().Add(time.Hour).Unix()},
		{ProjectID: fakeopenai.ProjectActive, Name: "x", CreatedAt: 1, ExpiresAt: 2},
	} {
		if err := e.b.rollbackServiceAccount(t.Context(), e.storage, w); err != nil {
			t.Fatalf("rollback %+v: %v", w, err)
		}
	}
	// A project the admin key cannot see (404) is not gone: the entry waits
	// for config to point at the right organization.
	w := &walServiceAccount{ProjectID: "proj_invisible", Name: "x", CreatedAt: time.Now().Unix(), ExpiresAt: time.Now().Add(time.Hour).Unix()}
	if err := e.b.rollbackServiceAccount(t.Context(), e.storage, w); err == nil || !strings.Contains(err.Error(), "not visible") {
		t.Fatalf("rollback of an entry in an invisible project settled: %v", err)
	}
}

func TestCreds_PersistentUpstreamFailureSaysSoAndLeavesNoOrphan(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	for _, kind := range []fakeopenai.FaultKind{fakeopenai.Fault500, fakeopenai.Fault429} {
		e.fake.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{{Ops: []fakeopenai.Op{fakeopenai.OpCreateServiceAccount}, Kind: kind, Rate: 1, RetryAfter: 1}}})
		_, err := e.do(logical.UpdateOperation, "creds/app", nil)
		if err == nil {
			t.Fatalf("%s: issue succeeded", kind)
		}
		want := map[fakeopenai.FaultKind]string{fakeopenai.Fault500: "HTTP 500", fakeopenai.Fault429: "rate limited by OpenAI"}[kind]
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: error %q does not say %q", kind, err, want)
		}
		// Throttling is the requester's "retry later" (429), not a 500.
		var coded logical.HTTPCodedError
		if got := errors.As(err, &coded); got != (kind == fakeopenai.Fault429) || (got && coded.Code() != http.StatusTooManyRequests) {
			t.Fatalf("%s: error %T %q: want a 429 coded error only for throttling", kind, err, err)
		}
		e.assertNoSecret("error", err.Error())
	}
	e.fake.SetFaults(fakeopenai.Faults{})
	e.rollbackNow()
	if n := len(e.fake.LiveAccounts()); n != 0 {
		t.Fatalf("%d orphans", n)
	}
}

func TestCreds_ThrottlingWithinRetriesIsInvisible(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	e.fake.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{{Ops: []fakeopenai.Op{fakeopenai.OpCreateServiceAccount}, Kind: fakeopenai.Fault429, Count: 1, RetryAfter: 1}}})
	start := time.Now()
	e.issue("app", nil)
	if time.Since(start) < 900*time.Millisecond {
		t.Fatal("Retry-After was not honoured")
	}
	if n := len(e.fake.LiveAccounts()); n != 1 {
		t.Fatalf("%d accounts", n)
	}
}

func TestCreds_BadInput(t *testing.T) {
	e := newTestEnv(t)
	e.mustBadRequest(logical.ReadOperation, "creds/nope", nil, `unknown role "nope"`)
	e.configure()
	e.mustBadRequest(logical.ReadOperation, "creds/nope", nil, `unknown role "nope"`)
	e.writeRole("app", map[string]interface{}{})
	e.mustBadRequest(logical.UpdateOperation, "creds/app", map[string]interface{}{"ttl": -5}, "ttl")
	e.mustBadRequest(logical.UpdateOperation, "creds/app", map[string]interface{}{"ttl": "soon"}, "ttl")

	// A project archived after the role was written: OpenAI's 400 reaches the user as a 400.
	e.fake.AddProject(fakeopenai.ProjectActive, "Vault Test", "archived")
	e.mustBadRequest(logical.ReadOperation, "creds/app", nil, "400")
	if e.walCount() != 0 {
		t.Fatal("a refused create left a WAL entry")
	}
}

func TestCreds_RevokeRejectsMalformedInternalData(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	for _, internal := range []map[string]interface{}{
		{},
		{"service_account_id": "svc_acct_1"},
		{"service_account_id": "../../admin_api_keys/key_1", "project_id": "proj_1"},
		{"service_account_id": 42, "project_id": true},
	} {
		internal["secret_type"] = secretAPIKeyType
		err := e.revoke(&logical.Secret{InternalData: internal})
		if err == nil {
			t.Errorf("revoke accepted internal data %v", internal)
		}
	}
	if n := e.fake.Calls()[fakeopenai.OpDeleteServiceAccount]; n != 0 {
		t.Fatalf("malformed leases reached OpenAI %d times", n)
	}
}

func TestCreds_ConcurrentIssueAndRevoke(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	const n = 40
	secrets := make(chan *logical.Secret, n)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			resp, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.ReadOperation, Path: "creds/app", Storage: e.storage, DisplayName: fmt.Sprint("t", i)})
			if err != nil || resp.IsError() {
				errs <- fmt.Errorf("issue: %v %v", err, resp)
				return
			}
			secrets <- resp.Secret
			errs <- nil
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	close(secrets)
	if got := len(e.fake.LiveAccounts()); got != n {
		t.Fatalf("%d live, want %d", got, n)
	}
	for s := range secrets {
		if err := e.revoke(s); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(e.fake.LiveAccounts()); got != 0 {
		t.Fatalf("%d live after revoking all", got)
	}
}

func redactData(d map[string]interface{}) map[string]interface{} {
	out := map[string]interface{}{}
	for k, v := range d {
		if k == "api_key" {
			v = "<redacted>"
		}
		out[k] = v
	}
	return out
}
