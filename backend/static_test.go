package backend

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// Static roles through HandleRequest against the fake: every step and
// failure point of a rotation, the overlap, bad input and delete.

// newStaticEnv is a configured engine on Community Edition (the rotation
// manager refuses, so the engine's periodic function drives schedules).
func newStaticEnv(t *testing.T) *testEnv {
	t.Helper()
	e := newTestEnv(t, withSystemView(&ceSystemView{StaticSystemView: logical.StaticSystemView{
		DefaultLeaseTTLVal: testDefaultLeaseTTL, MaxLeaseTTLVal: testMaxLeaseTTL,
	}}))
	e.configure()
	e.setDeleteRetryFloor(0)
	return e
}

func (e *testEnv) staticRole(name string) *staticRole {
	e.t.Helper()
	r, err := getStaticRole(context.Background(), e.storage, name)
	if err != nil || r == nil {
		e.t.Fatalf("static role %s: %v %v", name, r, err)
	}
	return r
}

func (e *testEnv) putStatic(name string, r *staticRole) {
	e.t.Helper()
	if err := putStaticRole(context.Background(), e.storage, name, r); err != nil {
		e.t.Fatal(err)
	}
}

func (e *testEnv) staticCreds(name string) map[string]interface{} {
	e.t.Helper()
	return e.mustOK(logical.ReadOperation, "static-creds/"+name, nil).Data
}

// keyStatus is what the fake's GET /v1/models answers the key.
func (e *testEnv) keyStatus(key string) int {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.url+"/models", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// assertStaticInvariants: the role's stored keys are exactly the engine's
// live keys on the account (plus any of others), at most two, the current
// one working.
func (e *testEnv) assertStaticInvariants(name string, others ...string) {
	e.t.Helper()
	r := e.staticRole(name)
	ids := e.fake.AccountKeyIDs(r.ProjectID, r.ServiceAccountID)
	want := map[string]bool{}
	for _, id := range others {
		want[id] = true
	}
	if r.Current != nil {
		want[r.Current.ID] = true
	}
	// A previous key may already be gone at OpenAI when storage failed
	// right after its delete: the engine deletes it again (404 is done).
	if r.Previous != nil && slices.Contains(ids, r.Previous.ID) {
		want[r.Previous.ID] = true
	}
	if len(ids) != len(want) {
		e.t.Fatalf("account holds keys %v, want %v", ids, want)
	}
	for _, id := range ids {
		if !want[id] {
			e.t.Fatalf("account holds key %s the role does not know (keys %v)", id, ids)
		}
	}
	if len(ids)-len(others) > 2 {
		e.t.Fatalf("%d engine keys live on the account", len(ids)-len(others))
	}
	if r.Current != nil && e.keyStatus(r.Current.Value) != http.StatusOK {
		e.t.Fatal("current key refused at the fake")
	}
}

func TestStatic_OwnAccountFirstKeyAndRead(t *testing.T) {
	e := newStaticEnv(t)
	e.mustOK(logical.UpdateOperation, "static-roles/app", map[string]interface{}{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "2h",
	})
	role := e.mustOK(logical.ReadOperation, "static-roles/app", nil).Data
	for k, v := range role {
		if s, ok := v.(string); ok && strings.HasPrefix(s, "sk-") {
			t.Fatalf("role read shows a key in %s", k)
		}
	}
	if role["overlap"] != int64(3600) || role["rotation_period"] != int64(7200) || role["account_created_by_engine"] != true {
		t.Fatalf("role read: %v", role)
	}
	c := e.staticCreds("app")
	key := c["api_key"].(string)
	if e.keyStatus(key) != http.StatusOK {
		t.Fatal("static key refused")
	}
	ttl := c["ttl"].(int64)
	if ttl < 7190 || ttl > 7200 || c["rotation_period"] != int64(7200) || c["project_id"] != fakeopenai.ProjectActive {
		t.Fatalf("creds: %v", c)
	}
	if _, err := time.Parse(time.RFC3339, c["last_vault_rotation"].(string)); err != nil {
		t.Fatalf("last_vault_rotation: %v", err)
	}
	info, ok := e.fake.Key(c["api_key_id"].(string))
	if !ok {
		t.Fatal("key not at the fake")
	}
	// Expiry: period + overlap + grace.
	want := time.Now().Add(2*time.Hour + time.Hour + staticKeyGrace).Unix()
	if d := info.ExpiresAt - want; d < -10 || d > 10 {
		t.Fatalf("key expires at %d, want about %d", info.ExpiresAt, want)
	}
	if !strings.HasPrefix(e.staticRole("app").ServiceAccountName, "vault-static-app-") {
		t.Fatalf("account name %q", e.staticRole("app").ServiceAccountName)
	}
	if e.walCount() != 0 {
		t.Fatal("WAL entries left")
	}
	list := e.mustOK(logical.ListOperation, "static-roles/", nil).Data["keys"].([]string)
	if len(list) != 1 || list[0] != "app" {
		t.Fatalf("list: %v", list)
	}
	e.assertStaticInvariants("app")
}

func TestStatic_OverlapThenPreviousRefused(t *testing.T) {
	e := newStaticEnv(t)
	e.mustOK(logical.UpdateOperation, "static-roles/app", map[string]interface{}{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "2h", "overlap": "10m",
	})
	first := e.staticCreds("app")
	e.mustOK(logical.UpdateOperation, "static-roles/app/rotate", nil)
	second := e.staticCreds("app")
	if second["api_key_id"] == first["api_key_id"] || second["previous_api_key_id"] != first["api_key_id"] {
		t.Fatalf("after rotate: %v", second)
	}
	// During the overlap both keys work.
	if e.keyStatus(first["api_key"].(string)) != http.StatusOK || e.keyStatus(second["api_key"].(string)) != http.StatusOK {
		t.Fatal("a key is refused during the overlap")
	}
	e.tick() // overlap not over: nothing happens
	if e.keyStatus(first["api_key"].(string)) != http.StatusOK {
		t.Fatal("previous key deleted before its overlap ended")
	}
	e.assertStaticInvariants("app")
	r := e.staticRole("app")
	r.Previous.EndsAt = time.Now().Add(-time.Second)
	e.putStatic("app", r)
	e.tick()
	if e.keyStatus(first["api_key"].(string)) != http.StatusUnauthorized {
		t.Fatal("previous key still works after its overlap")
	}
	if c := e.staticCreds("app"); c["previous_api_key_id"] != "" || c["api_key"] != second["api_key"] {
		t.Fatalf("creds after overlap: %v", c)
	}
	e.assertStaticInvariants("app")
}

func TestStatic_ScheduledRotationByPeriodic(t *testing.T) {
	e := newStaticEnv(t)
	e.mustOK(logical.UpdateOperation, "static-roles/app", map[string]interface{}{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "1m", "overlap": "30s",
	})
	first := e.staticCreds("app")
	e.tick()
	if e.staticCreds("app")["api_key_id"] != first["api_key_id"] {
		t.Fatal("rotated before due")
	}
	for i := range 5 {
		r := e.staticRole("app")
		r.LastRotated = r.LastRotated.Add(-time.Minute)
		if r.Previous != nil {
			r.Previous.EndsAt = r.Previous.EndsAt.Add(-time.Minute)
		}
		e.putStatic("app", r)
		e.tick()
		c := e.staticCreds("app")
		if c["api_key_id"] == first["api_key_id"] {
			t.Fatalf("tick %d: not rotated", i)
		}
		e.assertStaticInvariants("app")
		first = c
	}
}

func TestStatic_ExistingAccountOperatorKeysUntouched(t *testing.T) {
	e := newStaticEnv(t)
	c := newSDKClient(clientSettings{BaseURL: e.url, AdminAPIKey: e.fake.AdminKey(), RequestTimeout: 10 * time.Second, RetryBudget: time.Second})
	sa, err := c.CreateServiceAccount(context.Background(), fakeopenai.ProjectActive, "operators-own", 0)
	if err != nil {
		t.Fatal(err)
	}
	e.mustOK(logical.UpdateOperation, "static-roles/ext", map[string]interface{}{
		"project_id": fakeopenai.ProjectActive, "service_account_id": sa.ID, "rotation_period": "2h", "overlap": 0,
	})
	for range 3 {
		e.mustOK(logical.UpdateOperation, "static-roles/ext/rotate", nil)
		e.assertStaticInvariants("ext", sa.KeyID)
	}
	if e.keyStatus(sa.KeyValue) != http.StatusOK {
		t.Fatal("operator's own key stopped working")
	}
	e.mustOK(logical.DeleteOperation, "static-roles/ext", nil)
	if ids := e.fake.AccountKeyIDs(fakeopenai.ProjectActive, sa.ID); len(ids) != 1 || ids[0] != sa.KeyID {
		t.Fatalf("after delete the account holds %v, want only the operator's %s", ids, sa.KeyID)
	}
}

func TestStatic_DeleteOwnAccountDeletesIt(t *testing.T) {
	e := newStaticEnv(t)
	e.mustOK(logical.UpdateOperation, "static-roles/app", map[string]interface{}{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "2h",
	})
	e.mustOK(logical.UpdateOperation, "static-roles/app/rotate", nil)
	r := e.staticRole("app")
	e.mustOK(logical.DeleteOperation, "static-roles/app", nil)
	if e.liveAccountIDs()[r.ServiceAccountID] || len(e.fake.LiveKeys()) != 0 {
		t.Fatal("account or keys left after delete")
	}
	resp, _ := e.do(logical.ReadOperation, "static-creds/app", nil)
	if resp == nil || !resp.IsError() {
		t.Fatalf("creds of a deleted role: %v", resp)
	}
}

func TestStatic_DeleteRefusedWhileRotationInFlight(t *testing.T) {
	e := newStaticEnv(t)
	e.mustOK(logical.UpdateOperation, "static-roles/app", map[string]interface{}{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "2h",
	})
	r := e.staticRole("app")
	name, token, _ := uniqueName(staticKeyNameBase("app"))
	if _, err := framework.PutWAL(context.Background(), e.storage, walKindStaticKey, &walStaticKey{
		Role: "app", ProjectID: r.ProjectID, AccountID: r.ServiceAccountID, KeyName: name, Token: token,
		CreatedAt: time.Now().Unix(), ExpiresAt: time.Now().Add(time.Hour).Unix(),
	}); err != nil {
		t.Fatal(err)
	}
	e.mustBadRequest(logical.DeleteOperation, "static-roles/app", nil, "rotation in flight")
	e.rollbackNow()
	e.mustOK(logical.DeleteOperation, "static-roles/app", nil)
}

func TestStatic_CreateRefusedKeepsCurrent(t *testing.T) {
	e := newStaticEnv(t)
	e.mustOK(logical.UpdateOperation, "static-roles/app", map[string]interface{}{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "2h",
	})
	before := e.staticCreds("app")
	e.setFault(fakeopenai.OpCreateServiceAccountKey, fakeopenai.Fault400, 0, 1, 0)
	if _, err := e.do(logical.UpdateOperation, "static-roles/app/rotate", nil); err == nil {
		t.Fatal("rotate succeeded with creates refused")
	}
	e.fake.SetFaults(fakeopenai.Faults{})
	if e.staticCreds("app")["api_key"] != before["api_key"] || e.walCount() != 0 {
		t.Fatal("a refused create changed the role or left a WAL entry")
	}
	e.assertStaticInvariants("app")
}

func TestStatic_LostCreateResponseTwinDeleted(t *testing.T) {
	e := newStaticEnv(t)
	e.mustOK(logical.UpdateOperation, "static-roles/app", map[string]interface{}{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "2h",
	})
	e.setFault(fakeopenai.OpCreateServiceAccountKey, fakeopenai.FaultLostResponse, 1, 0, 0)
	e.mustOK(logical.UpdateOperation, "static-roles/app/rotate", nil)
	if e.fake.Calls()[fakeopenai.OpCreateServiceAccountKey] != 2 {
		t.Fatalf("create calls: %v", e.fake.Calls())
	}
	if e.walCount() != 0 {
		t.Fatal("WAL entry left")
	}
	e.assertStaticInvariants("app") // the twin is gone: only current and previous
}

func TestStatic_EveryCreateLostRolledBack(t *testing.T) {
	e := newStaticEnv(t)
	e.mustOK(logical.UpdateOperation, "static-roles/app", map[string]interface{}{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "2h", "overlap": 0,
	})
	before := e.staticCreds("app")
	e.setFault(fakeopenai.OpCreateServiceAccountKey, fakeopenai.FaultLostResponse, 0, 1, 0)
	if _, err := e.do(logical.UpdateOperation, "static-roles/app/rotate", nil); err == nil {
		t.Fatal("rotate succeeded with every response lost")
	}
	e.fake.SetFaults(fakeopenai.Faults{})
	r := e.staticRole("app")
	if n := len(e.fake.AccountKeyIDs(r.ProjectID, r.ServiceAccountID)); n < 2 {
		t.Fatalf("lost creates made %d keys; the test needs orphans", n)
	}
	if e.walCount() != 1 {
		t.Fatal("an ambiguous create must leave its WAL entry")
	}
	e.rollbackNow()
	if e.walCount() != 0 || e.staticCreds("app")["api_key"] != before["api_key"] {
		t.Fatal("rollback did not settle, or changed the current key")
	}
	e.assertStaticInvariants("app")
}

// failingStaticPut fails puts of static roles while on.
type failingStaticPut struct {
	logical.Storage
	on *bool
}

func (s failingStaticPut) Put(ctx context.Context, e *logical.StorageEntry) error {
	if *s.on && strings.HasPrefix(e.Key, staticRoleStoragePrefix) {
		return errors.New("injected storage failure")
	}
	return s.Storage.Put(ctx, e)
}

func (e *testEnv) rotateWithStorage(name string, s logical.Storage) error {
	resp, err := e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.UpdateOperation, Path: "static-roles/" + name + "/rotate", Storage: s,
	})
	if err == nil && resp != nil && resp.IsError() {
		err = resp.Error()
	}
	return err
}

func TestStatic_StoreFailsNewKeyDeleted(t *testing.T) {
	e := newStaticEnv(t)
	e.mustOK(logical.UpdateOperation, "static-roles/app", map[string]interface{}{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "2h", "overlap": 0,
	})
	before := e.staticCreds("app")
	on := true
	if err := e.rotateWithStorage("app", failingStaticPut{e.storage, &on}); err == nil {
		t.Fatal("rotate succeeded with storage failing")
	}
	if e.walCount() != 0 || e.staticCreds("app")["api_key"] != before["api_key"] {
		t.Fatal("store failure left a WAL entry or changed the key")
	}
	e.assertStaticInvariants("app")
}

func TestStatic_StoreAndDeleteFailRolledBackLater(t *testing.T) {
	e := newStaticEnv(t)
	e.mustOK(logical.UpdateOperation, "static-roles/app", map[string]interface{}{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "2h", "overlap": 0,
	})
	before := e.staticCreds("app")
	e.setFault(fakeopenai.OpDeleteProjectKey, fakeopenai.Fault403, 0, 1, 0)
	on := true
	if err := e.rotateWithStorage("app", failingStaticPut{e.storage, &on}); err == nil {
		t.Fatal("rotate succeeded with storage failing")
	}
	// The state a crash between create and store leaves: an unstored key
	// on the account and the WAL entry naming it.
	r := e.staticRole("app")
	if n := len(e.fake.AccountKeyIDs(r.ProjectID, r.ServiceAccountID)); n != 2 || e.walCount() != 1 {
		t.Fatalf("keys %d, WAL entries %d; want 2 and 1", n, e.walCount())
	}
	e.fake.SetFaults(fakeopenai.Faults{})
	e.rollbackNow()
	if e.walCount() != 0 || e.staticCreds("app")["api_key"] != before["api_key"] {
		t.Fatal("rollback did not settle or changed the key")
	}
	e.assertStaticInvariants("app")
}

func TestStatic_RollForwardKeepsStoredKey(t *testing.T) {
	e := newStaticEnv(t)
	e.mustOK(logical.UpdateOperation, "static-roles/app", map[string]interface{}{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "2h",
	})
	r := e.staticRole("app")
	// A crash after the store and before the WAL delete leaves this entry.
	token := r.Current.Name[len(r.Current.Name)-uniqueTokenLength:]
	if _, err := framework.PutWAL(context.Background(), e.storage, walKindStaticKey, &walStaticKey{
		Role: "app", ProjectID: r.ProjectID, AccountID: r.ServiceAccountID, KeyName: r.Current.Name, Token: token,
		CreatedAt: time.Now().Unix(), ExpiresAt: time.Now().Add(time.Hour).Unix(),
	}); err != nil {
		t.Fatal(err)
	}
	e.rollbackNow()
	if e.walCount() != 0 {
		t.Fatal("entry not settled")
	}
	e.assertStaticInvariants("app")
}

func TestStatic_PreviousDeleteFailsThenRetried(t *testing.T) {
	e := newStaticEnv(t)
	e.mustOK(logical.UpdateOperation, "static-roles/app", map[string]interface{}{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "2h", "overlap": "10m",
	})
	first := e.staticCreds("app")
	e.mustOK(logical.UpdateOperation, "static-roles/app/rotate", nil)
	r := e.staticRole("app")
	r.Previous.EndsAt = time.Now().Add(-time.Second)
	e.putStatic("app", r)
	e.setFault(fakeopenai.OpDeleteProjectKey, fakeopenai.Fault403, 0, 1, 0)
	e.tick()
	if e.keyStatus(first["api_key"].(string)) != http.StatusOK || e.staticRole("app").Previous == nil {
		t.Fatal("previous key gone although its delete failed")
	}
	// A rotation now would make a third key: it is refused instead.
	if _, err := e.do(logical.UpdateOperation, "static-roles/app/rotate", nil); err == nil {
		t.Fatal("rotated with the previous key undeletable")
	}
	e.assertStaticInvariants("app")
	e.fake.SetFaults(fakeopenai.Faults{})
	e.tick()
	if e.keyStatus(first["api_key"].(string)) != http.StatusUnauthorized || e.staticRole("app").Previous != nil {
		t.Fatal("previous key not deleted on the retry")
	}
	e.assertStaticInvariants("app")
}

func TestStatic_BadInputIs400AndCreatesNothing(t *testing.T) {
	e := newStaticEnv(t)
	e.fake.AddProject("proj_other", "Other", "active")
	c := newSDKClient(clientSettings{BaseURL: e.url, AdminAPIKey: e.fake.AdminKey(), RequestTimeout: 10 * time.Second, RetryBudget: time.Second})
	other, err := c.CreateServiceAccount(context.Background(), "proj_other", "elsewhere", 0)
	if err != nil {
		t.Fatal(err)
	}
	accounts, keys := len(e.fake.LiveAccounts()), len(e.fake.LiveKeys())
	p := fakeopenai.ProjectActive
	cases := []struct {
		data map[string]interface{}
		want string
	}{
		{map[string]interface{}{"rotation_period": "2h"}, "project_id: required"},
		{map[string]interface{}{"project_id": "proj_nope", "rotation_period": "2h"}, `project_id "proj_nope" was not found`},
		{map[string]interface{}{"project_id": p, "service_account_id": "svc_acct_nope", "rotation_period": "2h"}, `service_account_id "svc_acct_nope" was not found`},
		{map[string]interface{}{"project_id": p, "service_account_id": other.ID, "rotation_period": "2h"}, "service_account_id"},
		{map[string]interface{}{"project_id": p, "rotation_period": "30s"}, "rotation_period: rotations must be at least 1m0s apart"},
		{map[string]interface{}{"project_id": p, "rotation_period": "8760h"}, "rotation_period: rotations at most"},
		{map[string]interface{}{"project_id": p, "rotation_period": "2h", "overlap": "2h"}, "overlap: must be shorter"},
		{map[string]interface{}{"project_id": p, "rotation_period": "2h", "overlap": "-1"}, "overlap"},
		{map[string]interface{}{"project_id": p, "rotation_period": "2h", "rotation_schedule": "0 * * * *"}, "rotation_period"},
		{map[string]interface{}{"project_id": p}, "rotation_period: a static role needs"},
		{map[string]interface{}{"project_id": p, "rotation_schedule": "not cron"}, "rotation_schedule"},
		{map[string]interface{}{"project_id": p, "rotation_schedule": "* * * * *", "overlap": "1m"}, "overlap"},
		{map[string]interface{}{"project_id": p, "rotation_period": "2h", "disable_automated_rotation": true}, "disable_automated_rotation"},
		{map[string]interface{}{"project_id": p, "rotation_period": "2h", "scopes": "bad scope"}, "scopes"},
		{map[string]interface{}{"project_id": "../x", "rotation_period": "2h"}, "project_id"},
	}
	for _, tc := range cases {
		e.mustBadRequest(logical.UpdateOperation, "static-roles/bad", tc.data, tc.want)
	}
	if len(e.fake.LiveAccounts()) != accounts || len(e.fake.LiveKeys()) != keys || e.walCount() != 0 {
		t.Fatal("bad input created something")
	}
	if r, _ := getStaticRole(context.Background(), e.storage, "bad"); r != nil {
		t.Fatal("bad input stored a role")
	}
	// A schedule is accepted, and so is an update changing only overlap.
	e.mustOK(logical.UpdateOperation, "static-roles/cron", map[string]interface{}{"project_id": p, "rotation_schedule": "0 * * * *", "overlap": "5m"})
	c2 := e.staticCreds("cron")
	if c2["rotation_schedule"] != "0 * * * *" || c2["ttl"].(int64) > 3600 {
		t.Fatalf("cron creds: %v", c2)
	}
	e.mustOK(logical.UpdateOperation, "static-roles/cron", map[string]interface{}{"overlap": "10m"})
	e.mustBadRequest(logical.UpdateOperation, "static-roles/cron", map[string]interface{}{"project_id": "proj_other"}, "project_id")
	e.mustBadRequest(logical.UpdateOperation, "static-roles/cron", map[string]interface{}{"overlap": "2h"}, "overlap")
}

func TestStatic_FirstKeyFailureRetriedByPeriodic(t *testing.T) {
	e := newStaticEnv(t)
	e.setFault(fakeopenai.OpCreateServiceAccountKey, fakeopenai.Fault403, 0, 1, 0)
	resp := e.mustOK(logical.UpdateOperation, "static-roles/app", map[string]interface{}{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "2h",
	})
	if resp == nil || len(resp.Warnings) == 0 {
		t.Fatal("no warning for a failed first key")
	}
	if r, _ := e.do(logical.ReadOperation, "static-creds/app", nil); r == nil || !r.IsError() {
		t.Fatal("creds without a key answered")
	}
	e.fake.SetFaults(fakeopenai.Faults{})
	e.tick()
	if e.keyStatus(e.staticCreds("app")["api_key"].(string)) != http.StatusOK {
		t.Fatal("first key not made on the tick")
	}
}

func TestStatic_EnterpriseRotationManagerDrivesSchedule(t *testing.T) {
	e := newTestEnv(t)
	sys := &entSystemView{StaticSystemView: logical.StaticSystemView{DefaultLeaseTTLVal: testDefaultLeaseTTL, MaxLeaseTTLVal: testMaxLeaseTTL}}
	e.withSystem(sys)
	e.configure()
	e.mustOK(logical.UpdateOperation, "static-roles/app", map[string]interface{}{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "2h",
	})
	if sys.registered.Load() != 1 || e.mustOK(logical.ReadOperation, "static-roles/app", nil).Data["rotation_managed_by_vault"] != true {
		t.Fatal("schedule not handed to the rotation manager")
	}
	first := e.staticCreds("app")["api_key_id"]
	r := e.staticRole("app")
	r.LastRotated = r.LastRotated.Add(-3 * time.Hour)
	e.putStatic("app", r)
	e.tick()
	if e.staticCreds("app")["api_key_id"] != first {
		t.Fatal("the engine rotated a schedule Vault owns")
	}
	if err := e.b.rotateCredential(context.Background(), &logical.Request{Storage: e.storage, Path: "static-roles/app"}); err != nil {
		t.Fatal(err)
	}
	if e.staticCreds("app")["api_key_id"] == first {
		t.Fatal("rotation manager's call did not rotate")
	}
}
