//go:build e2e

package e2e

import (
	"errors"
	"net/http"
	"testing"

	"github.com/hashicorp/vault/api"
)

// The README's application policies, exactly as written there, on a real Vault:
// with `read` alone an app may choose its lease TTL with ?ttl= (Vault passes query
// parameters to reads), bounded by the role's max_ttl; with the README's
// denied_parameters variant it may not (Vault checks parameters on reads too), and
// it still gets a key at the role's ttl.
func TestPolicyTTLAsWrittenInREADME(t *testing.T) {
	t.Parallel()
	readOnly := readmeBlock(t, "policy-app")
	fixedTTL := readmeBlock(t, "policy-app-fixed-ttl")

	v, f := setupEngine(t, nil)
	// The README's policies name the role "app".
	writeRole(t, v, "openai", "app", map[string]any{"ttl": "30m", "max_ttl": "1h"})

	appClient := func(name, policy string) *api.Client {
		t.Helper()
		if err := v.Client.Sys().PutPolicy(name, policy); err != nil {
			t.Fatalf("policy %s as written in the README: %v", name, err)
		}
		tok, err := v.Client.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{name}, TTL: "1h"})
		if err != nil {
			t.Fatal(err)
		}
		v.AddSecret(tok.Auth.ClientToken)
		c, err := v.Client.Clone()
		if err != nil {
			t.Fatal(err)
		}
		c.SetToken(tok.Auth.ClientToken)
		return c
	}
	read := func(c *api.Client, ttl string) (*api.Secret, error) {
		var q map[string][]string
		if ttl != "" {
			q = map[string][]string{"ttl": {ttl}}
		}
		s, err := c.Logical().ReadWithData("openai/creds/app", q)
		if s != nil {
			v.AddSecret(s.Data["api_key"].(string))
		}
		return s, err
	}
	is403 := func(err error) bool {
		var re *api.ResponseError
		return errors.As(err, &re) && re.StatusCode == http.StatusForbidden
	}

	app := appClient("openai-app", readOnly)
	for _, c := range []struct {
		ttl  string
		want int
	}{
		{"", 1800},    // the role's ttl
		{"50m", 3000}, // read carries ttl: a longer lease than the role's ttl
		{"2h", 3600},  // but never beyond the role's max_ttl
	} {
		s, err := read(app, c.ttl)
		if err != nil {
			t.Fatalf("read-only policy, ttl=%q: %v", c.ttl, err)
		}
		if s.LeaseDuration != c.want {
			t.Errorf("read-only policy, ttl=%q: lease %ds, want %ds", c.ttl, s.LeaseDuration, c.want)
		}
	}
	if _, err := app.Logical().Write("openai/creds/app", map[string]any{"ttl": "50m"}); !is403(err) {
		t.Errorf("read-only policy: an update of creds/app was not refused with 403: %v", err)
	}

	fixed := appClient("openai-app-fixed-ttl", fixedTTL)
	s, err := read(fixed, "")
	if err != nil {
		t.Fatalf("denied_parameters policy: a plain read failed: %v", err)
	}
	if s.LeaseDuration != 1800 {
		t.Errorf("denied_parameters policy: plain read got a %ds lease, want the role's 1800s", s.LeaseDuration)
	}
	for _, ttl := range []string{"50m", "1s"} {
		if _, err := read(fixed, ttl); !is403(err) {
			t.Errorf("denied_parameters policy: read with ttl=%s not refused with 403: %v", ttl, err)
		}
	}
	// 4 keys issued above, none by the refused requests.
	if n := len(f.LiveAccounts()); n != 4 {
		t.Errorf("%d live accounts at the fake, want 4 (refused requests must create none)", n)
	}
}
