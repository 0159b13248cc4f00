package backend

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
)

// Issue 11 item 8: a renewal capped by the lease's max TTL warns once. Vault's
// expiration manager recomputes the TTL from the plugin's response and adds
// the "capped" warning itself (vault/expiration.go, renew), so the plugin
// must not add its own.
func TestRenew_CappedWarningAppearsOnce(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{"ttl": "10m", "max_ttl": "1h"})
	resp := e.issue("app", nil)

	issued := time.Now().Add(-55 * time.Minute)
	r, err := e.renew(resp.Secret, issued, 20*time.Minute)
	if err != nil || r.IsError() {
		t.Fatalf("renew: %v %v", err, r)
	}
	// What Vault does with the plugin's answer.
	ttl, warnings, err := framework.CalculateTTL(e.b.System(), 20*time.Minute, r.Secret.TTL, 0, r.Secret.MaxTTL, 0, issued)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warnings {
		r.AddWarning(w)
	}
	if n := strings.Count(strings.Join(r.Warnings, "\n"), "capped"); n != 1 {
		t.Fatalf("%d capped warnings, want 1: %q", n, r.Warnings)
	}
	if ttl > 5*time.Minute+time.Second {
		t.Fatalf("ttl %s past the max", ttl)
	}
}
