package backend

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

const oneYear = 31536000 // seconds: the longest expires_in_seconds OpenAI accepts

// A mount whose max lease TTL is above a year (Vault allows it; its default
// system max is 32 days, but operators raise it) must still give keys an
// expiry OpenAI accepts, and leases no longer than their keys.
func TestIssue_MountMaxAboveAYearIsCappedAtOneYear(t *testing.T) {
	fake := fakeopenai.New(fakeopenai.Options{})
	fake.FailOnViolations(t)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	conf := logical.TestBackendConfig()
	conf.StorageView = &logical.InmemStorage{}
	twoYears := 2 * oneYear * time.Second
	conf.System = &logical.StaticSystemView{DefaultLeaseTTLVal: time.Hour, MaxLeaseTTLVal: twoYears}
	raw, err := Factory(context.Background(), conf)
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, b: raw.(*backend), storage: conf.StorageView, fake: fake, url: srv.URL + "/v1"}
	e.configure()
	// No max_ttl: the mount's applies, and is the key's expiry.
	e.writeRole("app", map[string]interface{}{"expiry_follows_lease": false})

	resp := e.issue("app", nil)
	var acct *fakeopenai.Account
	for _, a := range fake.LiveAccounts() {
		if a.ID == saID(resp) {
			acct = &a
		}
	}
	if acct == nil {
		t.Fatal("issued account not at the fake")
	}
	if acct.KeyExpiresAt == 0 {
		t.Fatal("key issued without an expiry")
	}
	if got := acct.KeyExpiresAt - acct.CreatedAt; got > oneYear || got < oneYear-60 {
		t.Fatalf("key expires %ds after creation, want one year (%ds): the mount's two-year max must be capped", got, oneYear)
	}
	if resp.Secret.MaxTTL > oneYear*time.Second {
		t.Fatalf("lease max TTL %s outlives the key's year", resp.Secret.MaxTTL)
	}
	// Renewing as far as Vault would ask never passes the key's expiry.
	r, err := e.renew(resp.Secret, time.Now(), twoYears)
	if err != nil || (r != nil && r.IsError()) {
		t.Fatalf("renew: %v %v", r, err)
	}
	if r != nil && r.Secret != nil && r.Secret.TTL > oneYear*time.Second {
		t.Fatalf("renewed TTL %s outlives the key's year", r.Secret.TTL)
	}
}
