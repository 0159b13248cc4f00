package backend

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// countingStorage counts operations and can fail chosen ones.
type countingStorage struct {
	logical.Storage
	mu     sync.Mutex
	ops    map[string]int
	failOn func(op, key string) error
	// failAfter, when set, runs after a put or delete took effect: its
	// error is returned although the write happened (a lost reply).
	failAfter func(op, key string) error
}

func newCountingStorage(s logical.Storage) *countingStorage {
	return &countingStorage{Storage: s, ops: map[string]int{}}
}

func (c *countingStorage) hook(op, key string) error {
	c.mu.Lock()
	c.ops[op]++
	f := c.failOn
	c.mu.Unlock()
	if f != nil {
		return f(op, key)
	}
	return nil
}

func (c *countingStorage) count(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ops[op]
}

func (c *countingStorage) List(ctx context.Context, p string) ([]string, error) {
	if err := c.hook("list", p); err != nil {
		return nil, err
	}
	return c.Storage.List(ctx, p)
}

func (c *countingStorage) Get(ctx context.Context, k string) (*logical.StorageEntry, error) {
	if err := c.hook("get", k); err != nil {
		return nil, err
	}
	return c.Storage.Get(ctx, k)
}

func (c *countingStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	if err := c.hook("put", e.Key); err != nil {
		return err
	}
	if err := c.Storage.Put(ctx, e); err != nil {
		return err
	}
	return c.after("put", e.Key)
}

func (c *countingStorage) after(op, key string) error {
	c.mu.Lock()
	f := c.failAfter
	c.mu.Unlock()
	if f != nil {
		return f(op, key)
	}
	return nil
}

func (c *countingStorage) Delete(ctx context.Context, k string) error {
	if err := c.hook("delete", k); err != nil {
		return err
	}
	return c.Storage.Delete(ctx, k)
}

// Storage on the issue path: two writes (WAL entry, record) and no read once
// role and config are cached; the WAL entry's delete runs after the response.
func TestAccounts_IssueWritesTwiceOnItsPathAndDeletesItsEntryAfter(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{"max_ttl": "2h"})
	e.issue("app", nil) // warms the role and config caches
	e.walCount()
	cs := newCountingStorage(e.storage)
	release := make(chan struct{})
	var heldTooLong atomic.Bool
	cs.failOn = func(op, key string) error {
		if op == "delete" && strings.HasPrefix(key, "wal/") {
			select {
			case <-release:
			case <-time.After(20 * time.Second):
				heldTooLong.Store(true) // the issue waited for this delete
			}
		}
		return nil
	}
	e.storage = cs

	before := time.Now().Unix()
	resp := e.issue("app", nil)
	if p, g := cs.count("put"), cs.count("get"); p != 2 || g != 0 {
		t.Fatalf("issue made %d puts and %d gets on its path, want 2 and 0", p, g)
	}
	close(release)
	if n := e.walCount(); n != 0 || heldTooLong.Load() {
		t.Fatalf("after the response: %d WAL entries left, issue waited for the delete: %v", n, heldTooLong.Load())
	}
	if d := cs.count("delete"); d != 1 {
		t.Fatalf("%d deletes after the response, want 1 (the WAL entry)", d)
	}
	id := resp.Data["service_account_id"].(string)
	r := e.record(id)
	if r == nil {
		t.Fatal("no record after issue")
	}
	if r.ProjectID != fakeopenai.ProjectActive || r.Name != resp.Data["service_account_name"] || r.Role != "app" {
		t.Fatalf("record %+v", r)
	}
	if r.CreatedAt < before || r.ExpiresAt-r.CreatedAt != int64((2*time.Hour).Seconds()) {
		t.Fatalf("record times created=%d expires=%d", r.CreatedAt, r.ExpiresAt)
	}
	var atOpenAI *fakeopenai.Account
	for _, a := range e.fake.LiveAccounts() {
		if a.ID == id {
			atOpenAI = &a
		}
	}
	if atOpenAI == nil || r.KeyExpiresAt != atOpenAI.KeyExpiresAt || r.KeyExpiresAt == 0 {
		t.Fatalf("record key expiry %d, OpenAI's %+v", r.KeyExpiresAt, atOpenAI)
	}
	raw, _ := e.storage.Get(context.Background(), accountStoragePrefix+id)
	e.assertNoSecret("account record", string(raw.Value), resp.Data["api_key"].(string))
}

func TestAccounts_RevokeDeletesRecordOnlyOnceAccountIsGone(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.setDeleteRetryFloor(1)
	e.writeRole("app", map[string]interface{}{})
	resp := e.issue("app", nil)
	id := resp.Data["service_account_id"].(string)

	e.setFault(fakeopenai.OpDeleteServiceAccount, fakeopenai.Fault500, 0, 1, 0)
	if err := e.revoke(resp.Secret); err == nil {
		t.Fatal("revoke under persistent 500 succeeded")
	}
	if e.record(id) == nil {
		t.Fatal("record dropped although the account still exists")
	}
	e.fake.SetFaults(fakeopenai.Faults{})
	if err := e.revoke(resp.Secret); err != nil {
		t.Fatal(err)
	}
	if e.record(id) != nil {
		t.Fatal("record survived revoke")
	}
}

func TestAccounts_RevokeOfHandDeletedAccountDropsRecord(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	resp := e.issue("app", nil)
	id := resp.Data["service_account_id"].(string)
	e.fake.DeleteAccount(fakeopenai.ProjectActive, id)
	if err := e.revoke(resp.Secret); err != nil {
		t.Fatal(err)
	}
	if e.recordCount() != 0 {
		t.Fatal("record survived")
	}
}

// A lease written by a version without records still revokes.
func TestAccounts_LeaseWithoutRecordRevokes(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	resp := e.issue("app", nil)
	id := resp.Data["service_account_id"].(string)
	if err := e.storage.Delete(context.Background(), accountStoragePrefix+id); err != nil {
		t.Fatal(err)
	}
	// The internal data as the first release wrote it: no role, no max_ttl.
	old := &logical.Secret{InternalData: map[string]interface{}{
		"secret_type": secretAPIKeyType, "service_account_id": id, "project_id": fakeopenai.ProjectActive,
	}}
	if err := e.revoke(old); err != nil {
		t.Fatal(err)
	}
	if len(e.fake.LiveAccounts()) != 0 {
		t.Fatal("account survived")
	}
}

// If the record cannot be written the issue fails, and the WAL entry still
// guards the account, so rollback removes it.
func TestAccounts_RecordWriteFailureIsRolledBack(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	cs := newCountingStorage(e.storage)
	cs.failOn = func(op, key string) error {
		if op == "put" && strings.HasPrefix(key, accountStoragePrefix) {
			return errors.New("storage unavailable")
		}
		return nil
	}
	e.storage = cs
	_, err := e.do(logical.UpdateOperation, "creds/app", nil)
	if err == nil || !strings.Contains(err.Error(), "record issued account") {
		t.Fatalf("want a record error, got %v", err)
	}
	if len(e.fake.LiveAccounts()) != 1 || e.walCount() != 1 {
		t.Fatal("want the account guarded by its WAL entry")
	}
	cs.failOn = nil
	e.rollbackNow()
	if len(e.fake.LiveAccounts()) != 0 || e.walCount() != 0 {
		t.Fatal("rollback left the account or the WAL entry")
	}
}

// The WAL entry of a committed issue is deleted after the response; if that
// delete fails the key is still issued, and rollback later drops the entry
// without touching the account its committed record claims.
func TestAccounts_WALDeleteFailureKeepsTheIssuedKey(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	cs := newCountingStorage(e.storage)
	cs.failOn = func(op, key string) error {
		if op == "delete" && strings.HasPrefix(key, "wal/") {
			return errors.New("storage unavailable")
		}
		return nil
	}
	e.storage = cs
	resp, err := e.do(logical.UpdateOperation, "creds/app", nil)
	if err != nil || resp == nil || resp.Secret == nil {
		t.Fatalf("issue failed although its record was written: %v", err)
	}
	if e.walCount() != 1 || e.recordCount() != 1 {
		t.Fatalf("want the entry left behind and the record written, have %d entries, %d records", e.walCount(), e.recordCount())
	}
	cs.failOn = nil
	e.rollbackNow()
	if len(e.fake.LiveAccounts()) != 1 || e.recordCount() != 1 || e.walCount() != 0 {
		t.Fatalf("rollback: want the leased account and its record kept and the entry gone, have %d accounts, %d records, %d entries",
			len(e.fake.LiveAccounts()), e.recordCount(), e.walCount())
	}
}

// A record write whose reply is lost (stored, but reported failed) fails the
// issue; the record must not stay behind, or it would claim the account for
// a lease that never existed and keep rollback off it.
func TestAccounts_RecordWriteLostReplyIsRolledBack(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	cs := newCountingStorage(e.storage)
	cs.failAfter = func(op, key string) error {
		if op == "put" && strings.HasPrefix(key, accountStoragePrefix) {
			return errors.New("reply lost")
		}
		return nil
	}
	e.storage = cs
	if _, err := e.do(logical.UpdateOperation, "creds/app", nil); err == nil {
		t.Fatal("issue succeeded although its record write reported failure")
	}
	if e.recordCount() != 0 || e.walCount() != 1 {
		t.Fatalf("want no record and the entry kept, have %d records, %d entries", e.recordCount(), e.walCount())
	}
	cs.failAfter = nil
	e.rollbackNow()
	if len(e.fake.LiveAccounts()) != 0 || e.walCount() != 0 {
		t.Fatalf("rollback left %d accounts and %d entries", len(e.fake.LiveAccounts()), e.walCount())
	}
}
