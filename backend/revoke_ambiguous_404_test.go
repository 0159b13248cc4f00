package backend

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// projectOnlyHere exists only at the test env's own fake, so a second fake
// (another organization, another base_url) answers 404 "No such project".
const projectOnlyHere = "proj_only_here"

// Defect 2: a 404 for the project (config now points at another organization
// or base_url) is not "already gone": revocation fails, the record stays, and
// the account, still alive at OpenAI, is not reported revoked.
func TestRevoke_ProjectNotVisibleIsNotGone(t *testing.T) {
	e := newTestEnv(t)
	e.fake.AddProject(projectOnlyHere, "Only here", "active")
	e.configure()
	e.writeRole("app", map[string]interface{}{"project_id": projectOnlyHere})
	resp := e.issue("app", nil)
	id := saID(resp)

	_, otherURL := e.otherOrg()
	e.pointConfigAt(otherURL)

	err := e.revoke(resp.Secret)
	if err == nil {
		t.Fatal("revocation reported success while the account lives in a project the admin key cannot see")
	}
	if !strings.Contains(err.Error(), "not visible to the admin key") || !strings.Contains(err.Error(), "organization_id") {
		t.Fatalf("error does not say the project is not visible: %v", err)
	}
	if !e.liveAccountIDs()[id] {
		t.Fatal("account gone at the original fake")
	}
	if e.record(id) == nil {
		t.Fatal("record dropped although the account may live")
	}

	// Back on the right organization, the same lease revokes.
	e.pointConfigAt(e.url)
	if err := e.revoke(resp.Secret); err != nil {
		t.Fatal(err)
	}
	if e.liveAccountIDs()[id] || e.record(id) != nil {
		t.Fatal("account or record survived the revocation")
	}
}

// A 404 for the account itself, in a project the key sees, is still "gone".
func TestRevoke_AccountMissingInVisibleProjectIsGone(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	resp := e.issue("app", nil)
	e.fake.DeleteAccount(fakeopenai.ProjectActive, saID(resp))
	if err := e.revoke(resp.Secret); err != nil {
		t.Fatalf("revoke of a hand-deleted account: %v", err)
	}
	if e.record(saID(resp)) != nil {
		t.Fatal("record kept")
	}
}

// Defect 4: an archived project's accounts are gone for revocation, as for
// tidy: no failure that Vault retries until the lease is irrevocable.
func TestRevoke_ArchivedProjectCountsAsGone(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	resp := e.issue("app", nil)
	e.fake.AddProject(fakeopenai.ProjectActive, "Vault Test", "archived")
	if err := e.revoke(resp.Secret); err != nil {
		t.Fatalf("revoke in an archived project: %v", err)
	}
	if e.record(saID(resp)) != nil {
		t.Fatal("record of an archived project's account kept")
	}
}

// Any other 400 on delete is not "gone".
func TestConfirmAccountGone_OtherBadRequestIsNotGone(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	client, err := e.b.getClient(context.Background(), e.storage)
	if err != nil {
		t.Fatal(err)
	}
	bad := &upstreamErr{op: "delete service account", status: 400, message: "something else"}
	gone, err := e.b.confirmAccountGone(context.Background(), client, fakeopenai.ProjectActive, "svc_acct_x", bad)
	if gone || err == nil {
		t.Fatalf("400 in an active project counted as gone (%v)", err)
	}
}

// deadlineClient records the deadline each service-account delete ran under.
type deadlineClient struct {
	adminClient
	mu        sync.Mutex
	deadlines []time.Duration
}

func (c *deadlineClient) DeleteServiceAccount(ctx context.Context, projectID, id string) error {
	d, ok := ctx.Deadline()
	c.mu.Lock()
	if ok {
		c.deadlines = append(c.deadlines, time.Until(d))
	} else {
		c.deadlines = append(c.deadlines, -1)
	}
	c.mu.Unlock()
	return c.adminClient.DeleteServiceAccount(ctx, projectID, id)
}

// Issue 11 item 6: a revocation's own retries stop within revokeBudget even
// when the caller's context has no deadline, so "lease revoke -force -prefix"
// and "secrets disable" finish promptly during an outage.
func TestRevoke_OwnRetriesAreBoundedByBudget(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	resp := e.issue("app", nil)

	dc := &deadlineClient{}
	e.b.newClient = func(s clientSettings) adminClient {
		dc.adminClient = newSDKClient(s)
		return dc
	}
	e.b.resetClient()
	if err := e.revoke(resp.Secret); err != nil {
		t.Fatal(err)
	}
	if len(dc.deadlines) != 1 || dc.deadlines[0] < 0 || dc.deadlines[0] > revokeBudget {
		t.Fatalf("delete ran with time left %v, want a deadline within %s", dc.deadlines, revokeBudget)
	}
	if revokeBudget > 20*time.Second {
		t.Fatalf("revokeBudget %s: Vault runs revocations one after another", revokeBudget)
	}
}

// Issue 11 item 6: during an outage, revocations that follow one which found
// OpenAI unreachable fail promptly instead of each spending the full budget,
// so "lease revoke -force -prefix" and "secrets disable" finish; leases and
// records stay, and revocation works again as soon as OpenAI answers.
func TestRevoke_OutageMakesLaterRevocationsFailFast(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	leases := e.issueN("app", 4)

	e.fake.SetFaults(fakeopenai.Faults{Down: true})
	start := time.Now()
	var took []time.Duration
	for _, l := range leases[:3] {
		t0 := time.Now()
		err := e.revoke(l.Secret)
		took = append(took, time.Since(t0))
		if err == nil || !strings.Contains(err.Error(), "OpenAI") {
			t.Fatalf("revoke during the outage: %v", err)
		}
	}
	if took[0] > revokeBudget+2*time.Second {
		t.Errorf("first revocation took %s, budget %s", took[0], revokeBudget)
	}
	for _, d := range took[1:] {
		if d > revokeBudgetDuringOutage+time.Second {
			t.Errorf("later revocations took %v, want each within %s", took, revokeBudgetDuringOutage)
		}
	}
	t.Logf("3 revocations during the outage: %v (total %s)", took, time.Since(start).Round(time.Millisecond))
	if e.recordCount() != 4 || len(e.fake.LiveAccounts()) != 4 {
		t.Fatal("a failed revocation dropped a record or an account")
	}

	e.fake.SetFaults(fakeopenai.Faults{})
	for _, l := range leases {
		if err := e.revoke(l.Secret); err != nil {
			t.Fatalf("revoke once OpenAI is back: %v", err)
		}
	}
	if e.recordCount() != 0 || len(e.fake.LiveAccounts()) != 0 {
		t.Fatal("records or accounts left")
	}
	if b := e.b.revokeCallBudget(time.Now()); b != revokeBudget {
		t.Fatalf("budget after recovery %s, want %s", b, revokeBudget)
	}
}
