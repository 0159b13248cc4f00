package backend

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

func saID(r *logical.Response) string { return r.Data["service_account_id"].(string) }

func assertCounts(t *testing.T, got map[string]interface{}, want map[string]int) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %d (report %v)", k, got[k], v, got)
		}
	}
}

// staleBy is past any record's lifetime plus grace for a max_ttl of 1h.
const staleBy = time.Hour + tidyGracePeriod + time.Minute

func TestTidy_DeletesOnlyStaleTrackedAccounts(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{"max_ttl": "1h"})
	issued := e.issueN("app", 3)
	e.ageRecord(saID(issued[0]), staleBy)
	e.ageRecord(saID(issued[1]), staleBy)
	// Past max lifetime but within grace: Vault may still be revoking it.
	e.ageRecord(saID(issued[2]), time.Hour+time.Minute)
	e.fake.ResetCalls()

	rep := e.tidy(nil)
	assertCounts(t, rep, map[string]int{"records": 3, "stale": 2, "deleted": 2, "already_gone": 0, "failed": 0, "projects_listed": 1})
	live := e.liveAccountIDs()
	if len(live) != 1 || !live[saID(issued[2])] {
		t.Fatalf("live after tidy: %v", live)
	}
	if e.recordCount() != 1 || e.record(saID(issued[2])) == nil {
		t.Fatal("records of deleted accounts survived, or the live one was dropped")
	}
	if n := e.fake.Calls()[fakeopenai.OpDeleteServiceAccount]; n != 2 {
		t.Fatalf("%d delete calls, want 2", n)
	}
	// The leases of swept accounts still revoke cleanly (404 = gone).
	if err := e.revoke(issued[0].Secret); err != nil {
		t.Fatal(err)
	}
}

func TestTidy_DryRunChangesNothing(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{"max_ttl": "1h"})
	issued := e.issueN("app", 2)
	e.ageRecord(saID(issued[0]), staleBy)
	e.fake.DeleteAccount(fakeopenai.ProjectActive, saID(issued[1]))
	e.ageRecord(saID(issued[1]), staleBy)
	e.fake.ResetCalls()

	rep := e.tidy(map[string]interface{}{"dry_run": true})
	assertCounts(t, rep, map[string]int{"stale": 2, "deleted": 1, "already_gone": 1})
	if rep["dry_run"] != true {
		t.Fatal("report does not say dry_run")
	}
	if len(e.fake.LiveAccounts()) != 1 || e.recordCount() != 2 {
		t.Fatal("dry run changed state")
	}
	if n := e.fake.Calls()[fakeopenai.OpDeleteServiceAccount]; n != 0 {
		t.Fatalf("dry run made %d delete calls", n)
	}
}

func TestTidy_KeyExpiredAtOpenAI(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{"max_ttl": "1h"})
	r := e.issue("app", nil)
	rec := e.record(saID(r))
	// OpenAI expired the key well before the record's lifetime ends (for
	// example a key created by an older version with a shorter expiry).
	rec.KeyExpiresAt = time.Now().Add(-clockSkew - time.Minute).Unix()
	if err := putAccountRecord(context.Background(), e.storage, rec); err != nil {
		t.Fatal(err)
	}
	rep := e.tidy(nil)
	assertCounts(t, rep, map[string]int{"stale": 0, "key_expired": 1, "deleted": 1})
	if len(e.fake.LiveAccounts()) != 0 {
		t.Fatal("account with an expired key survived")
	}
}

// The name is the second check: a recorded id that OpenAI lists under another
// name is not this mount's to delete.
func TestTidy_LeavesAccountWhoseNameDiffers(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{"max_ttl": "1h"})
	r := e.issue("app", nil)
	rec := e.record(saID(r))
	rec.Name = "someone-else"
	if err := putAccountRecord(context.Background(), e.storage, rec); err != nil {
		t.Fatal(err)
	}
	e.ageRecord(saID(r), staleBy)
	rep := e.tidy(nil)
	assertCounts(t, rep, map[string]int{"stale": 1, "deleted": 0, "not_ours": 1})
	if len(e.fake.LiveAccounts()) != 1 {
		t.Fatal("tidy deleted an account recorded under another name")
	}
	if e.recordCount() != 0 {
		t.Fatal("the mismatched record should be dropped so it is not reported forever")
	}
}

func TestTidy_UntrackedMarkedAccountsAreCountedNotDeleted(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	client, err := e.b.getClient(context.Background(), e.storage)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"vault-from-another-mount", "ci-bot"} {
		if _, err := client.CreateServiceAccount(context.Background(), fakeopenai.ProjectActive, name, 3600); err != nil {
			t.Fatal(err)
		}
	}
	e.issue("app", nil) // tracked, live: neither counted nor touched
	rep := e.tidy(nil)
	assertCounts(t, rep, map[string]int{"untracked_marked": 1, "deleted": 0, "projects_listed": 1})
	if len(e.fake.LiveAccounts()) != 3 {
		t.Fatal("tidy touched an untracked account")
	}
}

func TestTidy_PagesThroughLargeProjects(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{"max_ttl": "1h"})
	issued := e.issueN("app", 230)
	for _, r := range issued[:200] {
		e.ageRecord(saID(r), staleBy)
	}
	e.fake.ResetCalls()
	rep := e.tidy(nil)
	assertCounts(t, rep, map[string]int{"records": 230, "stale": 200, "deleted": 200})
	if n := len(e.fake.LiveAccounts()); n != 30 {
		t.Fatalf("%d live, want 30", n)
	}
	if n := e.fake.Calls()[fakeopenai.OpListServiceAccounts]; n != 3 {
		t.Fatalf("%d list calls for 230 accounts, want 3 pages", n)
	}
}

// Throttling that outlasts retries stops the run; nothing is lost, the rest
// waits for the next run.
func TestTidy_StopsWhenThrottled(t *testing.T) {
	e := newTestEnv(t)
	e.configureRetries(0)
	e.setDeleteRetryFloor(1)
	e.writeRole("app", map[string]interface{}{"max_ttl": "1h"})
	issued := e.issueN("app", 3)
	for _, r := range issued {
		e.ageRecord(saID(r), staleBy)
	}
	e.setFault(fakeopenai.OpDeleteServiceAccount, fakeopenai.Fault429, 0, 1, 1)
	resp := e.mustOK(logical.UpdateOperation, "tidy", nil)
	assertCounts(t, resp.Data, map[string]int{"deleted": 0, "failed": 3})
	if resp.Data["incomplete"] != true || resp.Data["reason"] != "rate limited by OpenAI" {
		t.Fatalf("report %v", resp.Data)
	}
	if len(resp.Warnings) == 0 {
		t.Fatal("no warning for an incomplete run")
	}
	if n := e.fake.Calls()[fakeopenai.OpDeleteServiceAccount]; n != 2 {
		t.Fatalf("%d delete calls; a throttled run should stop after the first delete's retries", n)
	}
	if e.recordCount() != 3 {
		t.Fatal("records dropped although the accounts were not deleted")
	}
	e.fake.SetFaults(fakeopenai.Faults{})
	assertCounts(t, e.tidy(nil), map[string]int{"deleted": 3})
	if len(e.fake.LiveAccounts()) != 0 {
		t.Fatal("accounts left after the second run")
	}
}

func TestTidy_ArchivedProjectDropsRecords(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{"max_ttl": "1h"})
	r := e.issue("app", nil)
	e.ageRecord(saID(r), staleBy)
	e.fake.AddProject(fakeopenai.ProjectActive, "Vault Test", "archived")
	rep := e.tidy(nil)
	assertCounts(t, rep, map[string]int{"already_gone": 1, "failed": 0})
	if e.recordCount() != 0 {
		t.Fatal("record of an archived project's account survived")
	}
}

func TestTidy_NeedsConfig(t *testing.T) {
	e := newTestEnv(t)
	e.mustBadRequest(logical.UpdateOperation, "tidy", nil, "not configured")
}

func TestTidy_PeriodicHonoursIntervalAndReplicationState(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{"max_ttl": "1h"})
	periodic := func() {
		t.Helper()
		if err := e.b.periodicFunc(context.Background(), &logical.Request{Storage: e.storage}); err != nil {
			t.Fatal(err)
		}
	}
	stale := func() string {
		r := e.issue("app", nil)
		e.ageRecord(saID(r), staleBy)
		return saID(r)
	}

	// A performance standby never tidies.
	id := stale()
	e.setReplicationState(consts.ReplicationPerformanceStandby)
	periodic()
	if !e.liveAccountIDs()[id] {
		t.Fatal("a performance standby swept")
	}
	// A performance secondary's active node tidies its own local records.
	e.setReplicationState(consts.ReplicationPerformanceSecondary)
	periodic()
	if e.liveAccountIDs()[id] {
		t.Fatal("the first due run did not tidy")
	}
	e.setReplicationState(0)

	// Not due again for an hour.
	id = stale()
	periodic()
	if !e.liveAccountIDs()[id] {
		t.Fatal("swept before tidy_interval passed")
	}
	// Due once the interval has passed.
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{"tidy_interval": "1s"})
	time.Sleep(1100 * time.Millisecond)
	periodic()
	if e.liveAccountIDs()[id] {
		t.Fatal("not swept after tidy_interval passed")
	}
	// 0 disables the schedule.
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{"tidy_interval": 0})
	id = stale()
	time.Sleep(1100 * time.Millisecond)
	periodic()
	if !e.liveAccountIDs()[id] {
		t.Fatal("swept with tidy_interval 0")
	}
}

// Defect 2: a project that answers 404 to the admin key (config now points at
// another organization or base_url) is not gone: its records stay, so the
// accounts can still be revoked or tidied once config is right.
func TestTidy_ProjectNotVisibleKeepsRecords(t *testing.T) {
	e := newTestEnv(t)
	e.fake.AddProject(projectOnlyHere, "Only here", "active")
	e.configure()
	e.writeRole("app", map[string]interface{}{"project_id": projectOnlyHere, "max_ttl": "1h"})
	r := e.issue("app", nil)
	e.ageRecord(saID(r), staleBy)
	_, otherURL := e.otherOrg()
	e.pointConfigAt(otherURL)

	resp, err := e.do(logical.UpdateOperation, "tidy", nil)
	if err != nil || resp == nil || resp.IsError() {
		t.Fatalf("tidy: %v %v", resp, err)
	}
	assertCounts(t, resp.Data, map[string]int{"already_gone": 0, "failed": 1})
	if e.record(saID(r)) == nil {
		t.Fatal("record dropped for a project the admin key cannot see")
	}
	if !e.liveAccountIDs()[saID(r)] {
		t.Fatal("account deleted")
	}

	// Back on the right organization, the stale account is tidied.
	e.pointConfigAt(e.url)
	assertCounts(t, e.tidy(nil), map[string]int{"deleted": 1, "failed": 0})
	if e.liveAccountIDs()[saID(r)] || e.record(saID(r)) != nil {
		t.Fatal("stale account or record survived")
	}
}

// Issue 11 item 8: the tidy log carries its duration as integer milliseconds;
// a time.Duration crossed the plugin's log channel as duration="2e+06".
func TestTidy_LogDurationIsIntegerMilliseconds(t *testing.T) {
	rep := &tidyReport{Took: 2 * time.Millisecond}
	args := rep.logArgs()
	found := false
	for i := 0; i+1 < len(args); i += 2 {
		if _, isDur := args[i+1].(time.Duration); isDur {
			t.Errorf("log field %v is a time.Duration", args[i])
		}
		if args[i] == "duration_ms" {
			found = args[i+1] == int64(2)
		}
	}
	if !found {
		t.Fatalf("no duration_ms=2 in %v", args)
	}
}
