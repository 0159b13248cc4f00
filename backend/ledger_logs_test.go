package backend

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// Every key event is one structured line with the key's ids; no line ever
// carries a key value, also when the value is sent to keys/lookup.
func TestLogs_KeyEventsAreStructuredAndNeverCarryAKey(t *testing.T) {
	logs := &syncBuffer{}
	e := newTestEnv(t, withLogs(logs))
	e.configure()
	e.writeRole("app", map[string]interface{}{"ttl": "1h", "max_ttl": "2h"})
	resp := e.issueWith("app", "token-alice", "ent-a", "req-a", nil)
	key := resp.Data["api_key"].(string)
	s := *resp.Secret
	s.LeaseID = "openai/creds/app/lease-a"
	if _, err := e.renew(&s, time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	e.mustOK(logical.UpdateOperation, "keys/lookup", map[string]interface{}{"api_key": key})
	e.revokeLease(resp, time.Now(), time.Hour, s.LeaseID)

	out := logs.String()
	e.assertNoSecret("log", out, key)
	if strings.Contains(out, key[len("sk-svcacct-"):]) {
		t.Fatal("log carries the key's random part")
	}
	for msg, fields := range map[string][]string{
		"issued key":  {"role=app", "project_id=", "service_account_id=" + saID(resp), "api_key_id=" + keyID(resp), "display_name=token-alice", "request_id=req-a"},
		"renewed key": {"role=app", "api_key_id=" + keyID(resp), "lease_id=openai/creds/app/lease-a"},
		"revoked key": {"role=app", "api_key_id=" + keyID(resp), "lease_id=openai/creds/app/lease-a", "cause=revoke", "display_name=token-alice"},
	} {
		line := ""
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, msg) {
				line = l
			}
		}
		if line == "" {
			t.Errorf("no %q line in the log", msg)
			continue
		}
		for _, f := range fields {
			if !strings.Contains(line, f) {
				t.Errorf("%q line lacks %s: %s", msg, f, line)
			}
		}
	}
}
