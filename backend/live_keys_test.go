package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// issueConcurrently runs n issues at once, spread over roles, and returns
// how many succeeded and the distinct refusal messages.
func (e *testEnv) issueConcurrently(n int, roles ...string) (ok int, refusals []string) {
	e.t.Helper()
	var wg sync.WaitGroup
	var okN atomic.Int64
	var mu sync.Mutex
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			resp, err := e.issueAs(roles[i%len(roles)], fmt.Sprintf("token-%d", i))
			if err == nil {
				okN.Add(1)
				return
			}
			if resp == nil || !resp.IsError() {
				e.t.Errorf("issue %d: want success or a 400, got internal error %v", i, err)
				return
			}
			mu.Lock()
			refusals = append(refusals, err.Error())
			mu.Unlock()
		}(i)
	}
	close(start)
	wg.Wait()
	return int(okN.Load()), refusals
}

// restart builds a new backend on the same storage, as after a Vault
// restart or a failover: nothing in memory survives.
func (e *testEnv) restart() {
	e.t.Helper()
	conf := logical.TestBackendConfig()
	conf.StorageView = e.storage
	conf.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Error, Output: testLogWriter{e.t}})
	conf.System = e.b.System()
	raw, err := Factory(context.Background(), conf)
	if err != nil {
		e.t.Fatal(err)
	}
	e.b = raw.(*backend)
}

func TestLiveKeys_RoleCapExactUnderConcurrency(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("capped", map[string]interface{}{"max_live_keys": 10})

	ok, refusals := e.issueConcurrently(64, "capped")
	if ok != 10 || len(refusals) != 54 {
		t.Fatalf("64 concurrent issues against max_live_keys 10: %d issued, %d refused; want 10 and 54", ok, len(refusals))
	}
	for _, msg := range refusals {
		for _, want := range []string{`role "capped"`, "max_live_keys 10", "10 of its keys are live"} {
			if !strings.Contains(msg, want) {
				t.Fatalf("refusal %q does not say %q", msg, want)
			}
		}
	}
	if n := len(e.fake.LiveAccounts()); n != 10 {
		t.Fatalf("%d live accounts at OpenAI, want exactly 10", n)
	}
	if n := e.recordCount(); n != 10 {
		t.Fatalf("%d account records, want 10", n)
	}
	// Another role is not held back by this one's cap.
	e.writeRole("other", map[string]interface{}{})
	e.issue("other", nil)
}

func TestLiveKeys_MountCapExactUnderConcurrency(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{"max_live_keys": 10})
	e.writeRole("a", map[string]interface{}{})
	e.writeRole("b", map[string]interface{}{"max_live_keys": 100})

	ok, refusals := e.issueConcurrently(64, "a", "b")
	if ok != 10 || len(refusals) != 54 {
		t.Fatalf("64 concurrent issues against mount max_live_keys 10: %d issued, %d refused; want 10 and 54", ok, len(refusals))
	}
	for _, msg := range refusals {
		for _, want := range []string{"mount max_live_keys 10", "10 keys are live"} {
			if !strings.Contains(msg, want) {
				t.Fatalf("refusal %q does not say %q", msg, want)
			}
		}
	}
	if n := len(e.fake.LiveAccounts()); n != 10 {
		t.Fatalf("%d live accounts at OpenAI, want exactly 10", n)
	}
}

func TestLiveKeys_RevokeFreesAPlace(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("r", map[string]interface{}{"max_live_keys": 2})
	issued := e.issueN("r", 2)
	e.mustBadRequest(logical.UpdateOperation, "creds/r", nil, "max_live_keys 2")
	// Vault's expiry of a lease is this same revoke.
	if err := e.revoke(issued[0].Secret); err != nil {
		t.Fatal(err)
	}
	e.issue("r", nil)
	e.mustBadRequest(logical.UpdateOperation, "creds/r", nil, "2 of its keys are live")
	// A revoke Vault retries after success uncounts nothing twice.
	if err := e.revoke(issued[0].Secret); err != nil {
		t.Fatal(err)
	}
	e.mustBadRequest(logical.UpdateOperation, "creds/r", nil, "2 of its keys are live")
}

func TestLiveKeys_SurvivesRestart(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("r", map[string]interface{}{"max_live_keys": 3})
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{"max_live_keys": 5})
	e.writeRole("s", map[string]interface{}{})
	issued := e.issueN("r", 3)
	e.issue("s", nil)

	e.restart()
	e.mustBadRequest(logical.UpdateOperation, "creds/r", nil, "3 of its keys are live")
	e.issue("s", nil)
	e.mustBadRequest(logical.UpdateOperation, "creds/s", nil, "mount max_live_keys 5")

	// A lease issued before the restart frees its place when revoked after.
	if err := e.revoke(issued[0].Secret); err != nil {
		t.Fatal(err)
	}
	e.issue("r", nil)
	if n := len(e.fake.LiveAccounts()); n != 5 {
		t.Fatalf("%d live accounts, want 5", n)
	}
}

func TestLiveKeys_FailedIssueReleases(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("r", map[string]interface{}{"max_live_keys": 1})
	e.setFault(fakeopenai.OpCreateServiceAccount, fakeopenai.Fault400, 1, 1, 0)
	if _, err := e.issueAs("r", "t"); err == nil {
		t.Fatal("issue against a refused create succeeded")
	}
	e.issue("r", nil)
}

// recordPutFails makes the first account-record write fail, as a storage
// error after the create would.
type recordPutFails struct {
	logical.Storage
	failed atomic.Bool
}

func (s *recordPutFails) Put(ctx context.Context, e *logical.StorageEntry) error {
	if strings.HasPrefix(e.Key, accountStoragePrefix) && s.failed.CompareAndSwap(false, true) {
		return errors.New("injected record write failure")
	}
	return s.Storage.Put(ctx, e)
}

// A failed issue hands its key to nobody, so it gives its place under the
// cap back; its account, left to rollback, is removed by it.
func TestLiveKeys_FailedIssueGivesItsPlaceBack(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("r", map[string]interface{}{"max_live_keys": 1})
	_, err := e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.UpdateOperation, Path: "creds/r", Storage: &recordPutFails{Storage: e.storage},
		DisplayName: "t", MountAccessor: "openai_test",
	})
	if err == nil {
		t.Fatal("issue whose record write failed succeeded")
	}
	if e.recordCount() != 0 || len(e.fake.LiveAccounts()) != 1 {
		t.Fatalf("want no record and one account awaiting rollback, got %d and %d", e.recordCount(), len(e.fake.LiveAccounts()))
	}
	kept := e.issue("r", nil).Data["service_account_id"].(string)
	e.mustBadRequest(logical.UpdateOperation, "creds/r", nil, "1 of its keys are live")
	e.rollbackNow()
	live := e.fake.LiveAccounts()
	if len(live) != 1 || live[0].ID != kept {
		t.Fatalf("after rollback: %+v, want only the issued account %s", live, kept)
	}
}

func TestLiveKeys_BadValuesRefusedNothingStored(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	for _, v := range []interface{}{-1, 100001, "many"} {
		e.mustBadRequest(logical.UpdateOperation, "roles/new", map[string]interface{}{"project_id": fakeopenai.ProjectActive, "max_live_keys": v}, "max_live_keys")
		if resp, _ := e.do(logical.ReadOperation, "roles/new", nil); resp != nil {
			t.Fatalf("role stored after max_live_keys %v: %v", v, resp.Data)
		}
	}
	e.writeRole("r", map[string]interface{}{"max_live_keys": 7})
	e.mustBadRequest(logical.UpdateOperation, "roles/r", map[string]interface{}{"max_live_keys": -5}, "max_live_keys")
	if got := e.mustOK(logical.ReadOperation, "roles/r", nil).Data["max_live_keys"]; got != 7 {
		t.Fatalf("role max_live_keys %v after a refused write, want 7", got)
	}
	e.writeRole("r", map[string]interface{}{"max_live_keys": 100000})
	if got := e.mustOK(logical.ReadOperation, "roles/r", nil).Data["max_live_keys"]; got != 100000 {
		t.Fatalf("role max_live_keys %v, want 100000", got)
	}

	if got := e.mustOK(logical.ReadOperation, "config", nil).Data["max_live_keys"]; got != 0 {
		t.Fatalf("default mount max_live_keys %v, want 0", got)
	}
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{"max_live_keys": 20})
	for _, v := range []interface{}{-1, 100001, "x"} {
		e.mustBadRequest(logical.UpdateOperation, "config", map[string]interface{}{"max_live_keys": v}, "max_live_keys")
	}
	if got := e.mustOK(logical.ReadOperation, "config", nil).Data["max_live_keys"]; got != 20 {
		t.Fatalf("mount max_live_keys %v after refused writes, want 20", got)
	}
}
