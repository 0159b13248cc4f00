package backend

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// Crash recovery: what rollback of each WAL kind deletes and what it never
// touches.

func firstKey(m map[string]bool) string {
	for k := range m {
		return k
	}
	return ""
}

// The issue's scenario: one issue retried after a 429 must not cost another
// lease its account. A 429 proves nothing was created, so no twin entry is
// written and rollback has nothing to do (not even a project listing).
func TestRollback_ThrottledIssueNeverDeletesAnotherLeasesAccount(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole(longRoleName, map[string]interface{}{"name_template": issueTemplate})
	first, err := e.issueAs(longRoleName, longDisplayName)
	if err != nil {
		t.Fatal(err)
	}
	e.setFault(fakeopenai.OpCreateServiceAccount, fakeopenai.Fault429, 1, 0, 1)
	second, err := e.issueAs(longRoleName, longDisplayName)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.fake.Calls()[fakeopenai.OpCreateServiceAccount]; got != 2 {
		t.Fatalf("%d create attempts, want a 429 and a success", got)
	}
	if n := e.walCount(); n != 0 {
		t.Fatalf("a create retried after a 429 left %d WAL entries; it cannot have created a twin", n)
	}
	e.fake.ResetCalls()
	e.rollbackNow()
	live := e.liveAccountIDs()
	for _, r := range []*logical.Response{first, second} {
		if !live[saID(r)] {
			t.Fatalf("rollback deleted %s (%s), the account of a live lease", saID(r), r.Data["service_account_name"])
		}
	}
	if n := e.fake.Calls()[fakeopenai.OpListServiceAccounts]; n != 0 {
		t.Fatalf("rollback listed the project %d times after a throttled issue", n)
	}
}

// A WAL entry naming a committed account (as a rollback racing its issue
// would see it) deletes nothing: the committed record claims it for a lease.
func TestRollback_NeverDeletesAnAccountACommittedRecordClaims(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	resp := e.issue("app", nil)
	name := resp.Data["service_account_name"].(string)
	token := name[strings.LastIndexByte(name, '-')+1:]
	now := time.Now()
	for _, entry := range []map[string]interface{}{
		{"project_id": fakeopenai.ProjectActive, "name": name, "token": token, "created_at": now.Unix(), "expires_at": now.Add(time.Hour).Unix()},
		{"project_id": fakeopenai.ProjectActive, "name": name, "created_at": now.Unix(), "expires_at": now.Add(time.Hour).Unix()},
	} {
		if _, err := framework.PutWAL(t.Context(), e.storage, walKindServiceAccount, entry); err != nil {
			t.Fatal(err)
		}
	}
	e.rollbackNow()
	if !e.liveAccountIDs()[saID(resp)] {
		t.Fatal("rollback deleted an account its committed record claims for a live lease")
	}
	if e.walCount() != 0 {
		t.Fatal("rollback left its entries")
	}
}

// Entries written before names carried a token delete by exact name only
// when the name is unique in the project: a shared name may be anyone's.
func TestRollback_LegacyEntryDeletesOnlyAUniquelyNamedAccount(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	// Two accounts made outside this mount's records share a name.
	client, err := e.b.getClient(t.Context(), e.storage)
	if err != nil {
		t.Fatal(err)
	}
	var shared, unique []string
	for _, name := range []string{"legacy-shared", "legacy-shared", "legacy-unique"} {
		sa, err := client.CreateServiceAccount(t.Context(), fakeopenai.ProjectActive, name, 3600)
		if err != nil {
			t.Fatal(err)
		}
		if name == "legacy-unique" {
			unique = append(unique, sa.ID)
		} else {
			shared = append(shared, sa.ID)
		}
	}
	now := time.Now()
	for _, name := range []string{"legacy-shared", "legacy-unique"} {
		if _, err := framework.PutWAL(t.Context(), e.storage, walKindServiceAccount, map[string]interface{}{
			"project_id": fakeopenai.ProjectActive, "name": name, "created_at": now.Unix(), "expires_at": now.Add(time.Hour).Unix(),
		}); err != nil {
			t.Fatal(err)
		}
	}
	e.rollbackNow()
	live := e.liveAccountIDs()
	for _, id := range shared {
		if !live[id] {
			t.Fatalf("a legacy entry deleted %s by a name two accounts share", id)
		}
	}
	if live[unique[0]] {
		t.Fatal("a legacy entry left the one account carrying its unique name")
	}
	if e.walCount() != 0 {
		t.Fatal("legacy entries were not settled")
	}
}

// rollbackDuringCreate runs a rollback of the create in flight right after
// OpenAI answered it, as a rollback would that found the entry old enough.
type rollbackDuringCreate struct {
	adminClient
	e *testEnv
}

func (c rollbackDuringCreate) CreateServiceAccount(ctx context.Context, projectID, name string, exp int64) (*serviceAccountKey, error) {
	sa, err := c.adminClient.CreateServiceAccount(ctx, projectID, name, exp)
	if err == nil {
		c.e.rollbackNow()
	}
	return sa, err
}

// An issue whose entry was rolled back while it ran fails: it never hands out
// an account rollback deleted.
func TestRollback_IssueOutlivedByItsRollbackFails(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	e.b.newClient = func(s clientSettings) adminClient { return rollbackDuringCreate{newSDKClient(s), e} }
	e.b.resetClient()
	resp, err := e.do(logical.UpdateOperation, "creds/app", nil)
	if err == nil && (resp == nil || !resp.IsError()) {
		t.Fatalf("issue returned an account its rollback deleted: %v", resp.Data["service_account_id"])
	}
	if n := len(e.fake.LiveAccounts()); n != 0 {
		t.Fatalf("%d accounts left", n)
	}
	t.Logf("issue error: %v", err)
}

// Defect 5 of issue 9: a create's WAL entry stays whenever any attempt may
// have created the account, whatever the last answer; a 401 is the admin
// key's fault and says so.

func TestIssue_KeepsWALWhenAnEarlierAttemptMayHaveCreated(t *testing.T) {
	e := newTestEnv(t)
	e.configure() // max_retries 2
	e.writeRole("app", map[string]interface{}{})
	e.scriptedCreates(func(n int) string {
		if n == 1 {
			return "created-500"
		}
		return "401" // say a rotation deleted the old admin key meanwhile
	})
	resp, err := e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.UpdateOperation, Path: "creds/app", Storage: e.storage, MountPoint: "openai/",
	})
	if resp != nil && resp.IsError() {
		t.Fatalf("a rejected admin key came back as a 400 blaming the requester: %v", resp.Error())
	}
	if err == nil {
		t.Fatal("issue succeeded")
	}
	for _, want := range []string{"admin key", "HTTP 401", "admin_api_key", "openai/config"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not mention %q", err, want)
		}
	}
	e.assertNoSecret("error", err.Error())
	if len(e.fake.LiveAccounts()) != 1 {
		t.Fatal("the first attempt should have created an account")
	}
	if n := e.walCount(); n != 1 {
		t.Fatalf("%d WAL entries after a 500-then-401 create; the created account is covered by nothing", n)
	}
	e.rollbackNow()
	if n := len(e.fake.LiveAccounts()); n != 0 {
		t.Fatalf("rollback left %d accounts", n)
	}
}

// Refused attempts only (429, then 401): nothing was created, so the entry
// goes at once and no rollback (no project listing) follows.
func TestIssue_RefusedAttemptsLeaveNoWAL(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	e.scriptedCreates(func(n int) string {
		if n == 1 {
			return "429"
		}
		return "401"
	})
	if _, err := e.do(logical.UpdateOperation, "creds/app", nil); err == nil || !strings.Contains(err.Error(), "admin key") {
		t.Fatalf("want an admin-key error, got %v", err)
	}
	if n := e.walCount(); n != 0 {
		t.Fatalf("%d WAL entries for a create whose every attempt was refused", n)
	}
}
