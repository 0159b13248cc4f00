package backend

import (
	"strings"
	"testing"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// A delete that OpenAI refuses (400 bad request, 401 admin key rejected, 403
// not permitted) did not delete anything: the account and its key live on.
// Revocation must fail so Vault keeps the lease and retries it, and the
// engine's record must stay. Treating any of these as "already gone" would
// report a live key revoked and forget it. (A 400 counts as gone only when
// the project itself says it is archived; here it is active.)
func TestRevoke_RefusedDeleteKeepsLease(t *testing.T) {
	for _, kind := range []fakeopenai.FaultKind{fakeopenai.Fault400, fakeopenai.Fault401, fakeopenai.Fault403} {
		t.Run(string(kind), func(t *testing.T) {
			e := newTestEnv(t)
			e.fake.FailOnViolations(t)
			e.configure()
			e.writeRole("app", map[string]interface{}{})
			resp := e.issue("app", nil)
			id := saID(resp)

			e.fake.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{
				{Ops: []fakeopenai.Op{fakeopenai.OpDeleteServiceAccount}, Kind: kind, Rate: 1},
			}})
			err := e.revoke(resp.Secret)
			if err == nil {
				t.Fatalf("revocation succeeded although OpenAI refused the delete with %s", kind)
			}
			if !strings.Contains(err.Error(), string(kind)) {
				t.Errorf("error does not carry the refusal's status %s: %v", kind, err)
			}
			if n := e.fake.FaultCounts()[kind]; n == 0 {
				t.Fatalf("no %s was injected: the test proves nothing", kind)
			}
			if !e.liveAccountIDs()[id] {
				t.Fatal("the account is gone at the fake: the refusal was not what revocation saw")
			}
			if e.record(id) == nil {
				t.Fatal("the engine's record of a live account was dropped")
			}

			// Once OpenAI accepts the delete, the same lease revokes cleanly.
			e.fake.SetFaults(fakeopenai.Faults{})
			if err := e.revoke(resp.Secret); err != nil {
				t.Fatalf("revocation after the refusals cleared: %v", err)
			}
			if e.liveAccountIDs()[id] || e.record(id) != nil {
				t.Fatal("account or record left after a successful revocation")
			}
		})
	}
}
