package backend

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// Defect 1 of issue 9: names are unique by construction, and rollback finds
// exactly the accounts its own create made.

// An 84-character display name (a Kubernetes service-account token) and a
// 32-character role name: before the fix, shortening cut the template's
// random part away and every issue rendered the same name.
const (
	longDisplayName = "kubernetes-payments-production-namespace-payments-api-worker-sa-0123456789abcdefghij"
	longRoleName    = "payments-api-worker-role-abcdefg"
	issueTemplate   = `{{ .DisplayName }}-{{ random 8 }}-{{ .RoleName }}`
)

// tokenSuffix is the engine's unique part: "-" and 12 base62 characters.
var tokenSuffix = regexp.MustCompile(`-[0-9A-Za-z]{12}$`)

func (e *testEnv) issueAs(role, displayName string) (*logical.Response, error) {
	e.t.Helper()
	resp, err := e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.UpdateOperation, Path: "creds/" + role, Storage: e.storage,
		DisplayName: displayName, MountAccessor: "openai_test",
	})
	if err == nil && resp != nil && resp.IsError() {
		err = resp.Error()
	}
	return resp, err
}

func TestNames_UniqueWhateverTheTemplateAndDisplayName(t *testing.T) {
	if len(longDisplayName) != 84 || len(longRoleName) != 32 {
		t.Fatalf("fixture lengths %d, %d", len(longDisplayName), len(longRoleName))
	}
	e := newTestEnv(t)
	e.configure()
	for _, tmpl := range []string{issueTemplate, `svc-{{ random 1 }}`, `{{ .RoleName }}`, `fixed-name`} {
		e.writeRole(longRoleName, map[string]interface{}{"name_template": tmpl})
		seen := map[string]bool{}
		const n = 20
		for i := 0; i < n; i++ {
			resp, err := e.issueAs(longRoleName, longDisplayName)
			if err != nil {
				t.Fatalf("template %q: issue: %v", tmpl, err)
			}
			name := resp.Data["service_account_name"].(string)
			assertAcceptableName(t, name)
			if !tokenSuffix.MatchString(name) {
				t.Fatalf("template %q: name %q does not end in the engine's token", tmpl, name)
			}
			seen[name] = true
		}
		if len(seen) != n {
			t.Fatalf("template %q: %d issues gave %d distinct names", tmpl, n, len(seen))
		}
		t.Logf("template %q: %d distinct names, e.g. %s", tmpl, len(seen), firstKey(seen))
	}
}

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
