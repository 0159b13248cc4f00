package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/helper/automatedrotationutil"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/rotation"
	grpccodes "google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// Defect 3: with Vault's rotation manager owning the schedule (Enterprise),
// a key with an expiry is still rotated by the engine at 1/5 of its lifetime.
func TestRotationExpiry_RotatesWhenVaultOwnsTheSchedule(t *testing.T) {
	e := newTestEnv(t)
	sys := &entSystemView{StaticSystemView: *e.staticSystem()}
	e.withSystem(sys)
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{
		"admin_api_key": e.fake.AdminKey(), "base_url": e.url, "rotation_schedule": "0 3 * * SAT", "admin_api_key_ttl": "10h",
	})
	e.mustOK(logical.UpdateOperation, "config/rotate-root", nil)
	first := e.storedConfig().AdminAPIKeyID

	e.ageKey(3 * time.Hour) // more than a fifth left: not yet
	e.tick()
	if e.storedConfig().AdminAPIKeyID != first {
		t.Fatal("rotated with more than a fifth of the lifetime left")
	}
	e.ageKey(time.Hour)
	e.tick()
	if e.storedConfig().AdminAPIKeyID == first {
		t.Fatal("key with a fifth of its lifetime left was not rotated while Vault owns the schedule")
	}
	e.assertOneWorkingAdminKey()
}

// Defect 3: disable_automated_rotation turns the schedule off, not the
// rotation that keeps the key from expiring in use.
func TestRotationExpiry_RotatesWithAutomatedRotationDisabled(t *testing.T) {
	e := newTestEnv(t)
	e.withSystem(&ceSystemView{StaticSystemView: *e.staticSystem()})
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{
		"admin_api_key": e.fake.AdminKey(), "base_url": e.url, "disable_automated_rotation": true, "admin_api_key_ttl": "10h",
	})
	e.mustOK(logical.UpdateOperation, "config/rotate-root", nil)
	first := e.storedConfig().AdminAPIKeyID
	e.ageKey(time.Hour)
	e.tick()
	if e.storedConfig().AdminAPIKeyID == first {
		t.Fatal("expiring key not rotated with disable_automated_rotation")
	}
	e.assertOneWorkingAdminKey()
}

// Defect 3: an initial key with its own expiry (no admin_api_key_ttl) is
// rotated early too, and config read shows its expiry and the rotation.
func TestRotationExpiry_SuppliedKeyWithOwnExpiry(t *testing.T) {
	e := newTestEnv(t)
	e.withSystem(&ceSystemView{StaticSystemView: *e.staticSystem()})
	id, value := e.expiringAdminKey(10 * time.Hour)
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{"admin_api_key": value, "base_url": e.url})

	read := e.mustOK(logical.ReadOperation, "config", nil)
	exp, _ := time.Parse(time.RFC3339, read.Data["admin_api_key_expires_at"].(string))
	next, _ := time.Parse(time.RFC3339, read.Data["next_rotation"].(string))
	if d := time.Until(exp); d < 9*time.Hour || d > 10*time.Hour+time.Minute {
		t.Fatalf("admin_api_key_expires_at %v, want ~10h from now", read.Data["admin_api_key_expires_at"])
	}
	if d := time.Until(next); d < 7*time.Hour+50*time.Minute || d > 8*time.Hour+5*time.Minute {
		t.Fatalf("next_rotation %v, want ~8h from now (a fifth of the lifetime before expiry)", read.Data["next_rotation"])
	}

	e.ageKey(time.Hour)
	e.tick()
	cfg := e.storedConfig()
	if cfg.AdminAPIKeyID == id {
		t.Fatal("supplied key with its own expiry not rotated at a fifth of its lifetime")
	}
	for _, k := range e.adminKeyIDs() {
		if k == id {
			t.Fatal("old key not deleted (delete_supplied_key_on_rotate defaults to true)")
		}
	}
	if _, err := newSDKClient(cfg.clientSettings()).GetAdminAPIKey(context.Background(), cfg.AdminAPIKeyID); err != nil {
		t.Fatalf("new key does not work: %v", err)
	}
}

// Defect 3: when the engine cannot rotate an expiring key, the log says so
// once per key, not on every one-minute tick.
func TestRotationExpiry_CannotRotateWarnsOnce(t *testing.T) {
	e := newTestEnv(t)
	logs := e.withSystem(&ceSystemView{StaticSystemView: *e.staticSystem()})
	_, value := e.expiringAdminKey(10 * time.Hour)
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{"admin_api_key": value, "base_url": e.url})
	e.ageKey(time.Hour)
	e.fake.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{{
		Ops: []fakeopenai.Op{fakeopenai.OpCreateAdminKey}, Kind: fakeopenai.Fault403, Rate: 1,
	}}})
	for range 3 {
		e.tick()
	}
	if n := strings.Count(logs.String(), "expires soon and the engine cannot rotate it"); n != 1 {
		t.Fatalf("warned %d times over 3 ticks, want once:\n%s", n, logs.String())
	}
	e.assertNoSecret("logs", logs.String(), value)
}

// A config write with an expiring key says when the engine will rotate it,
// and that rotation deletes it unless delete_supplied_key_on_rotate=false.
func TestRotationExpiry_ConfigWriteAnnouncesTheRotation(t *testing.T) {
	e := newTestEnv(t)
	_, value := e.expiringAdminKey(10 * time.Hour)
	resp := e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{"admin_api_key": value, "base_url": e.url})
	if resp == nil || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "the engine rotates it at") ||
		!strings.Contains(resp.Warnings[0], "delete_supplied_key_on_rotate=false") {
		t.Fatalf("no rotation notice: %v", resp)
	}
	resp = e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{"delete_supplied_key_on_rotate": false})
	if resp == nil || len(resp.Warnings) != 1 || strings.Contains(resp.Warnings[0], "deletes it") {
		t.Fatalf("notice with the key kept: %v", resp)
	}
	e.assertNoSecret("notice", strings.Join(resp.Warnings, " "), value)
}

// ceSystemView answers rotation-manager calls as Vault Community Edition does.
type ceSystemView struct{ logical.StaticSystemView }

func (ceSystemView) RegisterRotationJob(context.Context, *rotation.RotationJobConfigureRequest) (string, error) {
	return "", automatedrotationutil.ErrRotationManagerUnsupported
}

func (ceSystemView) DeregisterRotationJob(context.Context, *rotation.RotationJobDeregisterRequest) error {
	return automatedrotationutil.ErrRotationManagerUnsupported
}

// entSystemView accepts rotation jobs, as Enterprise's rotation manager does.
type entSystemView struct {
	logical.StaticSystemView
	registered atomic.Int32
}

func (s *entSystemView) RegisterRotationJob(context.Context, *rotation.RotationJobConfigureRequest) (string, error) {
	s.registered.Add(1)
	return "rot-1", nil
}

func TestRotation_ScheduledByEngineOnCommunity(t *testing.T) {
	e := newTestEnv(t)
	sys := &ceSystemView{StaticSystemView: *e.staticSystem()}
	e.b.Backend.Setup(context.Background(), &logical.BackendConfig{System: sys, Logger: e.b.Logger(), StorageView: e.storage})
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{
		"admin_api_key": e.fake.AdminKey(), "base_url": e.url, "rotation_period": "1h",
	})
	read := e.mustOK(logical.ReadOperation, "config", nil)
	if read.Data["rotation_managed_by"] != "engine" || read.Data["rotation_period"] != int64(3600) || read.Data["next_rotation"] == "" {
		t.Fatalf("config after rotation_period on CE: %v", read.Data)
	}

	// Not due yet: the periodic function leaves the key alone.
	if err := e.b.periodicFunc(context.Background(), &logical.Request{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	if e.storedConfig().AdminAPIKeyID != e.fake.AdminKeyID() {
		t.Fatal("rotated before due")
	}
	// Age the key past its period: the next tick rotates.
	cfg := e.storedConfig()
	cfg.KeySetAt = time.Now().Add(-2 * time.Hour)
	if err := putConfig(context.Background(), e.storage, cfg); err != nil {
		t.Fatal(err)
	}
	if err := e.b.periodicFunc(context.Background(), &logical.Request{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	if e.storedConfig().AdminAPIKeyID == e.fake.AdminKeyID() || e.storedConfig().LastRotated.IsZero() {
		t.Fatal("due rotation did not happen")
	}
	e.assertOneWorkingAdminKey()
}

func TestRotation_RegisteredWithVaultOnEnterprise(t *testing.T) {
	e := newTestEnv(t)
	sys := &entSystemView{StaticSystemView: *e.staticSystem()}
	e.b.Backend.Setup(context.Background(), &logical.BackendConfig{System: sys, Logger: e.b.Logger(), StorageView: e.storage})
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{
		"admin_api_key": e.fake.AdminKey(), "base_url": e.url, "rotation_schedule": "0 * * * SAT",
	})
	read := e.mustOK(logical.ReadOperation, "config", nil)
	if sys.registered.Load() != 1 || read.Data["rotation_managed_by"] != "vault" || read.Data["next_rotation"] != "" {
		t.Fatalf("enterprise registration: %d calls, config %v", sys.registered.Load(), read.Data)
	}
	// Vault's rotation manager calls RotateCredential.
	if err := e.b.RotateCredential(context.Background(), &logical.Request{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	e.assertOneWorkingAdminKey()
	if e.storedConfig().AdminAPIKeyID == e.fake.AdminKeyID() {
		t.Fatal("RotateCredential did not rotate")
	}
}

func TestRotation_KeyTTL(t *testing.T) {
	e := newTestEnv(t)
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{
		"admin_api_key": e.fake.AdminKey(), "base_url": e.url, "admin_api_key_ttl": "10h",
	})
	e.mustOK(logical.UpdateOperation, "config/rotate-root", nil)
	keys := e.fake.LiveAdminKeys()
	if len(keys) != 1 {
		t.Fatalf("%d keys", len(keys))
	}
	if life := keys[0].ExpiresAt - keys[0].CreatedAt; life < 36000-5 || life > 36000+5 {
		t.Fatalf("rotated key lives %ds, want 36000", life)
	}
	// Rotation is planned when a fifth of the lifetime remains: 8h from now.
	next := e.storedConfig().nextRotation()
	if d := time.Until(next); d < 7*time.Hour+55*time.Minute || d > 8*time.Hour+5*time.Minute {
		t.Fatalf("next rotation in %s, want ~8h", d)
	}
}

func TestRotation_BadInput(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	for _, c := range []struct {
		data map[string]interface{}
		want string
	}{
		{map[string]interface{}{"rotation_period": "10s"}, "rotation_period"},
		{map[string]interface{}{"rotation_period": -60}, "rotation_period"},
		{map[string]interface{}{"rotation_schedule": "not cron"}, "rotation_schedule"},
		{map[string]interface{}{"rotation_schedule": "0 * * * *", "rotation_period": "1h"}, "rotation_schedule"},
		{map[string]interface{}{"admin_api_key_ttl": "5m"}, "admin_api_key_ttl"},
		{map[string]interface{}{"admin_api_key_ttl": "100000h"}, "admin_api_key_ttl"},
	} {
		e.mustBadRequest(logical.UpdateOperation, "config", c.data, c.want)
	}
	if cfg := e.storedConfig(); cfg.Rotation.RotationPeriod != 0 || cfg.AdminAPIKeyTTL != 0 {
		t.Fatalf("refused writes changed config: %+v", cfg.Rotation)
	}
}

func TestIsRotationManagerUnsupported(t *testing.T) {
	for err, want := range map[error]bool{
		automatedrotationutil.ErrRotationManagerUnsupported:                                         true,
		fmt.Errorf("rpc error: %s", automatedrotationutil.ErrRotationManagerUnsupported):            true,
		grpcstatus.Error(grpccodes.Unimplemented, "unknown method RegisterRotationJobWithResponse"): true,
		errors.New("permission denied"):                                                             false,
		nil:                                                                                         false,
	} {
		if got := isRotationManagerUnsupported(err); got != want {
			t.Errorf("isRotationManagerUnsupported(%v) = %v", err, got)
		}
	}
}
