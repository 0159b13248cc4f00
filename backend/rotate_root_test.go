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

func TestRotateRoot_Success(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	oldID := e.fake.AdminKeyID()

	resp := e.mustOK(logical.UpdateOperation, "config/rotate-root", nil)
	newID, _ := resp.Data["admin_api_key_id"].(string)
	if newID == "" || newID == oldID || resp.Data["last_rotated"] == "" {
		t.Fatalf("rotate response %v", resp.Data)
	}
	e.assertOneWorkingAdminKey()
	e.assertNoSecret("rotate response", strings.Join(resp.Warnings, " ")+resp.Data["admin_api_key_id"].(string))

	read := e.mustOK(logical.ReadOperation, "config", nil)
	if read.Data["admin_api_key_id"] != newID || read.Data["last_rotated"] != resp.Data["last_rotated"] {
		t.Fatalf("config after rotation %v", read.Data)
	}
	if _, ok := read.Data["admin_api_key"]; ok {
		t.Fatal("config read shows the key")
	}
	// The new key's name says which mount owns it.
	for _, k := range e.fake.LiveAdminKeys() {
		if !strings.HasPrefix(k.Name, "vault-") || !strings.Contains(k.Name, "rotated") {
			t.Fatalf("rotated key name %q", k.Name)
		}
	}
	// The cached client follows the new key.
	e.issue("app", nil)
	if e.walCount() != 0 {
		t.Fatalf("%d WAL entries left", e.walCount())
	}
}

func TestRotateRoot_CreateFails(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.fake.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{{Ops: []fakeopenai.Op{fakeopenai.OpCreateAdminKey}, Kind: fakeopenai.Fault500, Rate: 1}}})
	if _, err := e.rotate(); err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("rotation with failing create: %v", err)
	}
	e.fake.SetFaults(fakeopenai.Faults{})
	e.rollbackNow()
	e.assertOneWorkingAdminKey()
	if e.storedConfig().AdminAPIKeyID != e.fake.AdminKeyID() {
		t.Fatal("config changed although rotation failed")
	}
}

func TestRotateRoot_LostCreateResponse(t *testing.T) {
	e := newTestEnv(t)
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{"admin_api_key": e.fake.AdminKey(), "base_url": e.url, "max_retries": 0})
	e.fake.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{{Ops: []fakeopenai.Op{fakeopenai.OpCreateAdminKey}, Kind: fakeopenai.FaultLostResponse, Count: 1}}})
	if _, err := e.rotate(); err == nil {
		t.Fatal("rotation succeeded without a create response")
	}
	if n := len(e.adminKeyIDs()); n != 2 {
		t.Fatalf("fake holds %d admin keys, want the old one and the lost new one", n)
	}
	e.rollbackNow()
	e.assertOneWorkingAdminKey()
	if e.storedConfig().AdminAPIKeyID != e.fake.AdminKeyID() {
		t.Fatal("config changed although rotation failed")
	}
}

func TestRotateRoot_RetriedCreateLeavesNoTwin(t *testing.T) {
	e := newTestEnv(t)
	e.configure() // max_retries 2: the SDK retries after the lost response
	e.fake.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{{Ops: []fakeopenai.Op{fakeopenai.OpCreateAdminKey}, Kind: fakeopenai.FaultLostResponse, Count: 1}}})
	e.mustOK(logical.UpdateOperation, "config/rotate-root", nil)
	e.assertOneWorkingAdminKey()
}

// verifyFailingClient refuses to confirm any admin key, as a new key that
// never starts working would.
type verifyFailingClient struct{ adminClient }

func (verifyFailingClient) GetAdminAPIKey(context.Context, string) (*adminAPIKey, error) {
	return nil, &upstreamErr{op: "get admin API key", status: 401, message: "Incorrect API key provided"}
}

func TestRotateRoot_VerifyFails(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	seeded := e.fake.AdminKey()
	e.b.newClient = func(s clientSettings) adminClient {
		c := newSDKClient(s)
		if s.AdminAPIKey != seeded {
			return verifyFailingClient{c}
		}
		return c
	}
	if _, err := e.rotate(); err == nil || !strings.Contains(err.Error(), "did not authenticate") {
		t.Fatalf("rotation with a non-working new key: %v", err)
	}
	e.assertOneWorkingAdminKey()
	if e.walCount() != 0 {
		t.Fatal("WAL entry left although the new key was deleted")
	}
}

// failingConfigStorage fails writes of config, as a storage outage would.
type failingConfigStorage struct {
	logical.Storage
	fail atomic.Bool
}

func (s *failingConfigStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	if e.Key == configStoragePath && s.fail.Load() {
		return errors.New("storage unavailable")
	}
	return s.Storage.Put(ctx, e)
}

func TestRotateRoot_PersistFails(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	fs := &failingConfigStorage{Storage: e.storage}
	e.storage = fs
	fs.fail.Store(true)
	if _, err := e.rotate(); err == nil || !strings.Contains(err.Error(), "persist") {
		t.Fatalf("rotation with failing storage: %v", err)
	}
	fs.fail.Store(false)
	e.assertOneWorkingAdminKey()
	if e.storedConfig().AdminAPIKeyID != e.fake.AdminKeyID() {
		t.Fatal("config changed although persisting failed")
	}
}

func TestRotateRoot_OldKeyDeleteFailsThenPeriodicRetries(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	oldID := e.fake.AdminKeyID()
	e.fake.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{{Ops: []fakeopenai.Op{fakeopenai.OpDeleteAdminKey}, Kind: fakeopenai.Fault500, Rate: 1}}})
	resp := e.mustOK(logical.UpdateOperation, "config/rotate-root", nil)
	if len(resp.Warnings) == 0 {
		t.Fatal("no warning that the old key is still pending")
	}
	read := e.mustOK(logical.ReadOperation, "config", nil)
	if pending := read.Data["pending_admin_key_deletions"].([]string); len(pending) != 1 || pending[0] != oldID {
		t.Fatalf("pending deletions %v, want [%s]", pending, oldID)
	}
	if n := len(e.adminKeyIDs()); n != 2 {
		t.Fatalf("%d admin keys while the old one is pending", n)
	}

	e.fake.SetFaults(fakeopenai.Faults{})
	if err := e.b.periodicFunc(context.Background(), &logical.Request{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	e.assertOneWorkingAdminKey()
	read = e.mustOK(logical.ReadOperation, "config", nil)
	if pending := read.Data["pending_admin_key_deletions"].([]string); len(pending) != 0 {
		t.Fatalf("pending after retry: %v", pending)
	}
}

func TestRotateRoot_CurrentKeyInvalid(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	cfg := e.storedConfig()
	if err := newSDKClient(cfg.clientSettings()).DeleteAdminAPIKey(context.Background(), cfg.AdminAPIKeyID); err != nil {
		t.Fatal(err)
	}
	e.mustBadRequest(logical.UpdateOperation, "config/rotate-root", nil, "write a new working key to config")
	if n := len(e.adminKeyIDs()); n != 0 {
		t.Fatalf("%d admin keys appeared", n)
	}
}

func TestRotateRoot_WithoutConfig(t *testing.T) {
	e := newTestEnv(t)
	e.mustBadRequest(logical.UpdateOperation, "config/rotate-root", nil, "not configured")
}

func TestRotateRoot_ConcurrentRotationsSerialise(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := e.rotate()
			if err == nil && resp.IsError() {
				err = resp.Error()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent rotation: %v", err)
		}
	}
	e.assertOneWorkingAdminKey()
}

// gatedCreateClient holds the first create (or delete) it sees until
// released, so a test can rotate the admin key while that call is in flight
// with the old key: the exact window in which OpenAI answers 401.
type gatedCreateClient struct {
	adminClient
	g *callGate
}

type callGate struct {
	once     sync.Once
	entered  chan struct{}
	release  chan struct{}
	firstErr error
	gated    atomic.Bool
}

func newCallGate() *callGate {
	return &callGate{entered: make(chan struct{}), release: make(chan struct{})}
}

// hold runs call, holding it first if it is the first call through the gate.
func (g *callGate) hold(call func() error) error {
	first := false
	g.once.Do(func() { first = true })
	if !first {
		return call()
	}
	close(g.entered)
	<-g.release
	err := call()
	g.firstErr = err
	g.gated.Store(true)
	return err
}

func (c gatedCreateClient) CreateServiceAccount(ctx context.Context, projectID, name string, exp int64) (*serviceAccountKey, error) {
	var sa *serviceAccountKey
	err := c.g.hold(func() (err error) {
		sa, err = c.adminClient.CreateServiceAccount(ctx, projectID, name, exp)
		return err
	})
	return sa, err
}

type gatedDeleteClient struct {
	adminClient
	g *callGate
}

func (c gatedDeleteClient) DeleteServiceAccount(ctx context.Context, projectID, id string) error {
	return c.g.hold(func() error { return c.adminClient.DeleteServiceAccount(ctx, projectID, id) })
}

// An issue or a revocation in flight when the admin key is rotated sends its
// call with the old key, which rotation has just deleted: OpenAI answers 401.
// The engine retries once with the new key instead of failing. The call is
// held at the gate until the rotation is done, so the 401 happens every run.
func TestRotateRoot_DuringIssuanceNoIssueFails(t *testing.T) {
	for _, op := range []string{"issue", "revoke"} {
		t.Run(op, func(t *testing.T) {
			e := newTestEnv(t)
			e.fake.FailOnViolations(t)
			e.configure()
			e.writeRole("app", map[string]interface{}{})
			var lease *logical.Response
			if op == "revoke" {
				lease = e.issue("app", nil)
			}
			g := newCallGate()
			e.b.newClient = func(s clientSettings) adminClient {
				if op == "issue" {
					return gatedCreateClient{newSDKClient(s), g}
				}
				return gatedDeleteClient{newSDKClient(s), g}
			}
			e.b.resetClient()
			e.fake.ResetCalls()

			done := make(chan error, 1)
			go func() {
				if op == "issue" {
					resp, err := e.do(logical.UpdateOperation, "creds/app", nil)
					if err == nil && resp != nil && resp.IsError() {
						err = resp.Error()
					}
					lease = resp
					done <- err
					return
				}
				done <- e.revoke(lease.Secret)
			}()
			select {
			case <-g.entered:
			case err := <-done:
				t.Fatalf("%s finished without reaching OpenAI: %v", op, err)
			case <-time.After(10 * time.Second):
				t.Fatalf("%s never reached OpenAI", op)
			}
			if _, err := e.rotate(); err != nil {
				t.Fatalf("rotate: %v", err)
			}
			close(g.release)
			if err := <-done; err != nil {
				t.Fatalf("%s across a rotation failed: %v", op, err)
			}
			if !g.gated.Load() || !isAuthError(g.firstErr) {
				t.Fatalf("the held call ended with %v, want a 401 for the rotated-away key: the window was missed", g.firstErr)
			}
			e.assertOneWorkingAdminKey()
			live := e.liveAccountIDs()
			switch op {
			case "issue":
				if len(live) != 1 || !live[saID(lease)] {
					t.Fatalf("fake holds %v, want just the issued account", live)
				}
				if n := e.fake.Calls()[fakeopenai.OpCreateServiceAccount]; n != 2 {
					t.Fatalf("%d creates at the fake, want 2 (the 401, then the retry)", n)
				}
			case "revoke":
				if len(live) != 0 {
					t.Fatalf("fake still holds %v after the revocation", live)
				}
				if n := e.fake.Calls()[fakeopenai.OpDeleteServiceAccount]; n != 2 {
					t.Fatalf("%d deletes at the fake, want 2 (the 401, then the retry)", n)
				}
			}
		})
	}
}
