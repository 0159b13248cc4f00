//go:build e2e

package e2e

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// kill -9 of Vault (plugin included) at every step of a static role's
// rotation that TestCrashStaticBetweenCreateAndStore does not cover: the
// plugin, built with tag crashpoints, stops at the named step
// (backend/static_rotation.go, path_static_roles.go), or the fake holds the
// step's call and completes it after Vault died, as OpenAI would a request
// that reached it. After a restart, with the WAL rollback age at 20s:
//
//   - no leaked key: the account holds only keys the role stores, at most
//     two, and after the next rotation exactly the role's keys;
//   - no lost working key: the key static-creds returns works at the fake;
//   - what the crash interrupted is rolled back (a key or account never
//     stored) or forward (a key stored), and the role rotates again.
func TestCrashAtEachStaticRotationStep(t *testing.T) {
	t.Parallel()
	cases := map[string]func(*testing.T){
		// A rotation: WAL entry written, create not yet sent.
		"static.after_wal": func(t *testing.T) { crashStaticRotation(t, "static.after_wal") },
		// A rotation: the new key stored (committed), its WAL entry not yet
		// dropped.
		"static.after_store": func(t *testing.T) { crashStaticRotation(t, "static.after_store") },
		// A rotation ahead of schedule deletes the previous key first:
		// deleted at OpenAI, still stored.
		"static.after_previous_delete": func(t *testing.T) { crashStaticPreviousDelete(t, true) },
		"previous_delete_in_flight":    func(t *testing.T) { crashStaticPreviousDelete(t, false) },
		// The engine's own account: created, role not stored.
		"static.after_account_create": func(t *testing.T) { crashStaticAccountCreate(t, true) },
		"account_create_in_flight":    func(t *testing.T) { crashStaticAccountCreate(t, false) },
		// The first key of the engine's own account: created, not stored.
		"first_key.static.after_create": crashStaticFirstKey,
	}
	for name, run := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			run(t)
		})
	}
}

const staticCrashRole = "openai/static-roles/s"

// startStaticCrashVault starts Vault on file storage (it survives kill -9)
// with the plugin registered with env and configured against a new fake.
func startStaticCrashVault(t *testing.T, env ...string) (*Vault, *Fake) {
	v := startVault(t, VaultOptions{FileStorage: true})
	f := newFake(t)
	registerPlugin(t, v, env...)
	mountPlugin(t, v, "openai")
	writeConfig(t, v, "openai", f, rollbackSoonConfig)
	return v, f
}

func withCrashpoint(point string) []string {
	return append([]string{"OPENAI_PLUGIN_CRASHPOINT=" + point}, rollbackSoon...)
}

// killWhenStopped runs call, waits for stopped to say the plugin is held
// mid-step, kills Vault, and fails the test if call succeeded anyway.
func killWhenStopped(t *testing.T, v *Vault, what string, call func() error, stopped func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	stopped()
	v.Kill()
	if err := <-done; err == nil {
		t.Fatalf("%s succeeded although Vault was killed during it", what)
	}
}

func atCrashpoint(t *testing.T, v *Vault, point string) func() {
	seen := strings.Count(v.Log(), crashpointMarker(point))
	return func() { waitForCrashpoint(t, v, point, seen) }
}

// heldAtFake makes the fake hold the next call of op for 2s and then
// perform it; the returned func waits until the call has arrived.
func heldAtFake(t *testing.T, f *Fake, op fakeopenai.Op) func() {
	fired := make(chan struct{}, 1)
	f.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{{
		Ops: []fakeopenai.Op{op}, Kind: fakeopenai.FaultHold, Count: 1, Hold: 2 * time.Second,
		OnFire: func(fakeopenai.Op) { fired <- struct{}{} },
	}}})
	return func() {
		select {
		case <-fired:
		case <-time.After(time.Minute):
			t.Fatalf("%s never reached the fake", op)
		}
	}
}

// staticRoleKeys reads the role's current and previous key ids ("" when none).
func staticRoleKeys(t *testing.T, v *Vault) (current, previous, account string) {
	t.Helper()
	s, err := v.Client.Logical().Read(staticCrashRole)
	if err != nil || s == nil {
		t.Fatalf("read the static role: %v (found: %v)", err, s != nil)
	}
	current, _ = s.Data["api_key_id"].(string)
	previous, _ = s.Data["previous_api_key_id"].(string)
	account, _ = s.Data["service_account_id"].(string)
	return current, previous, account
}

// checkStaticKeys asserts the invariants after a crash: static-creds
// answers a key that works at the fake, the account holds no key the role
// does not store and at most two, and with exact, exactly the role's.
func checkStaticKeys(t *testing.T, v *Vault, f *Fake, exact bool) (currentID string, held []string) {
	t.Helper()
	key, id, account, err := readStaticCreds(v, "s")
	if err != nil {
		t.Fatalf("static-creds: %v", err)
	}
	if status, err := staticKeyWorks(f, key); err != nil || status != http.StatusOK {
		t.Fatalf("the key static-creds returns (%s) does not work at the fake: %d %v", id, status, err)
	}
	current, previous, _ := staticRoleKeys(t, v)
	stored := []string{current}
	if previous != "" {
		stored = append(stored, previous)
	}
	held = f.AccountKeyIDs(fakeopenai.ProjectActive, account)
	if len(held) > 2 || !slices.Contains(held, id) {
		t.Fatalf("the account holds %v; the current key is %s", held, id)
	}
	for _, k := range held {
		if !slices.Contains(stored, k) {
			t.Fatalf("leaked key: the account holds %s, which the role does not store (it stores %v)", k, stored)
		}
	}
	if exact && len(held) != len(stored) {
		t.Fatalf("the account holds %v, the role stores %v", held, stored)
	}
	return id, held
}

// rotateAndCheck rotates by hand after recovery: the role's keys and the
// account's are then exactly the same, the new key working.
func rotateAndCheck(t *testing.T, v *Vault, f *Fake, before string) {
	t.Helper()
	if _, err := v.Client.Logical().Write(staticCrashRole+"/rotate", nil); err != nil {
		t.Fatalf("rotate after the crash: %v", err)
	}
	id, held := checkStaticKeys(t, v, f, true)
	if id == before || len(held) != 2 {
		t.Fatalf("after a rotation the current key is %s (was %s) and the account holds %v", id, before, held)
	}
}

// waitStaticSettled waits for rollback to settle a WAL entry of kind
// ("static rotation" or "static account create") logged after seen.
func waitStaticSettled(t *testing.T, v *Vault, kind string, seen int, since time.Time) {
	t.Helper()
	marker := "settled the WAL entry of a " + kind
	took := waitFor(t, 3*time.Minute, "rollback to settle the "+kind, func() bool {
		return strings.Count(v.Log(), marker) > seen
	})
	t.Logf("rollback settled the %s %s after the restart (%s after the kill)", kind, took.Round(time.Second), time.Since(since).Round(time.Second))
}

func crashStaticRotation(t *testing.T, point string) {
	v, f := startStaticCrashVault(t, rollbackSoon...)
	if _, err := v.Client.Logical().Write(staticCrashRole, map[string]any{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "2h",
	}); err != nil {
		t.Fatalf("static role: %v", err)
	}
	first, _ := checkStaticKeys(t, v, f, true)
	_, _, account := staticRoleKeys(t, v)

	reloadPlugin(t, v, withCrashpoint(point)...)
	killWhenStopped(t, v, "the rotation", func() error {
		_, err := v.Client.Logical().Write(staticCrashRole+"/rotate", nil)
		return err
	}, atCrashpoint(t, v, point))
	atCrash := f.AccountKeyIDs(fakeopenai.ProjectActive, account)
	killed := time.Now()

	v.Restart()
	reloadPlugin(t, v, rollbackSoon...)
	waitStaticSettled(t, v, "static rotation", 0, killed)
	current, held := checkStaticKeys(t, v, f, true)
	switch point {
	case "static.after_wal":
		// Nothing was created: the stored key stays, alone.
		if len(atCrash) != 1 || current != first || len(held) != 1 {
			t.Fatalf("killed before the create: %v at the crash, %v after, current %s (was %s)", atCrash, held, current, first)
		}
	case "static.after_store":
		// Committed: rolled forward, the old key kept for its overlap.
		if len(atCrash) != 2 || current == first || !slices.Equal(held, atCrash) {
			t.Fatalf("killed after the store: %v at the crash, %v after, current %s (first %s)", atCrash, held, current, first)
		}
		if !strings.Contains(v.Log(), "rolled_forward=true") {
			t.Error("rollback did not say it rolled the stored rotation forward")
		}
	}
	rotateAndCheck(t, v, f, current)
}

// crashStaticPreviousDelete: a rotation by hand inside the overlap deletes
// the previous key before anything else; Vault dies with that key gone at
// OpenAI but still stored as previous. No WAL entry exists yet, so nothing
// is rolled back: the stale previous key is deleted again (404 counts as
// done) by the next rotation or at the overlap's end.
func crashStaticPreviousDelete(t *testing.T, crashpoint bool) {
	const point = "static.after_previous_delete"
	v, f := startStaticCrashVault(t, rollbackSoon...)
	if _, err := v.Client.Logical().Write(staticCrashRole, map[string]any{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "2h", "overlap": "30m",
	}); err != nil {
		t.Fatalf("static role: %v", err)
	}
	if _, err := v.Client.Logical().Write(staticCrashRole+"/rotate", nil); err != nil {
		t.Fatalf("first rotation: %v", err)
	}
	current, held := checkStaticKeys(t, v, f, true)
	_, previous, account := staticRoleKeys(t, v)
	if len(held) != 2 {
		t.Fatalf("want current and previous on the account, have %v", held)
	}

	var stopped func()
	if crashpoint {
		reloadPlugin(t, v, withCrashpoint(point)...)
		stopped = atCrashpoint(t, v, point)
	} else {
		stopped = heldAtFake(t, f, fakeopenai.OpDeleteProjectKey)
	}
	killWhenStopped(t, v, "the rotation", func() error {
		_, err := v.Client.Logical().Write(staticCrashRole+"/rotate", nil)
		return err
	}, stopped)
	waitFor(t, 30*time.Second, "the previous key's delete to complete at the fake", func() bool {
		return slices.Equal(f.AccountKeyIDs(fakeopenai.ProjectActive, account), []string{current})
	})

	v.Restart()
	reloadPlugin(t, v, rollbackSoon...)
	if now, _ := checkStaticKeys(t, v, f, false); now != current {
		t.Fatalf("static-creds answers %s after the restart, want the key stored before the crash, %s", now, current)
	}
	if _, stale, _ := staticRoleKeys(t, v); stale != previous {
		t.Fatalf("the role's previous key is %q, want the deleted %s still stored (the crash came before it was forgotten)", stale, previous)
	}
	rotateAndCheck(t, v, f, current)
}

// crashStaticAccountCreate: a role without service_account_id; Vault dies
// with the engine's account created at OpenAI and the role not stored.
// Rollback deletes the account by the token in its name.
func crashStaticAccountCreate(t *testing.T, crashpoint bool) {
	const point = "static.after_account_create"
	env := rollbackSoon
	if crashpoint {
		env = withCrashpoint(point)
	}
	v, f := startStaticCrashVault(t, env...)
	var stopped func()
	if crashpoint {
		stopped = atCrashpoint(t, v, point)
	} else {
		stopped = heldAtFake(t, f, fakeopenai.OpCreateServiceAccount)
	}
	role := map[string]any{"project_id": fakeopenai.ProjectActive, "rotation_period": "2h"}
	killWhenStopped(t, v, "the role write", func() error {
		_, err := v.Client.Logical().Write(staticCrashRole, role)
		return err
	}, stopped)
	waitFor(t, 30*time.Second, "the account create to complete at the fake", func() bool { return len(f.LiveAccounts()) == 1 })
	killed := time.Now()

	v.Restart()
	reloadPlugin(t, v, rollbackSoon...)
	waitStaticSettled(t, v, "static account create", 0, killed)
	if n := len(f.LiveAccounts()); n != 0 {
		t.Fatalf("%d account(s) at the fake after rollback, want 0", n)
	}
	if s, err := v.Client.Logical().Read(staticCrashRole); err != nil || s != nil {
		t.Fatalf("the role was stored although its write was killed: %v", err)
	}
	if _, err := v.Client.Logical().Write(staticCrashRole, role); err != nil {
		t.Fatalf("the role write after the crash: %v", err)
	}
	if n := len(f.LiveAccounts()); n != 1 {
		t.Fatalf("%d accounts after the role write, want 1", n)
	}
	current, _ := checkStaticKeys(t, v, f, true)
	rotateAndCheck(t, v, f, current)
}

// crashStaticFirstKey: a role without service_account_id; its account is
// stored, its first key created and not stored when Vault dies. Rollback
// deletes that key; the periodic function makes the first key again (a
// role without a key is always due).
func crashStaticFirstKey(t *testing.T) {
	const point = "static.after_create"
	v, f := startStaticCrashVault(t, withCrashpoint(point)...)
	killWhenStopped(t, v, "the role write", func() error {
		_, err := v.Client.Logical().Write(staticCrashRole, map[string]any{
			"project_id": fakeopenai.ProjectActive, "rotation_period": "2h",
		})
		return err
	}, atCrashpoint(t, v, point))
	accounts := f.LiveAccounts()
	if len(accounts) != 1 {
		t.Fatalf("%d accounts at the crash, want the role's", len(accounts))
	}
	account := accounts[0].ID
	orphan := f.AccountKeyIDs(fakeopenai.ProjectActive, account)
	if len(orphan) != 1 {
		t.Fatalf("the account holds %v at the crash, want the unstored first key", orphan)
	}
	killed := time.Now()

	v.Restart()
	reloadPlugin(t, v, rollbackSoon...)
	if current, _, stored := staticRoleKeys(t, v); stored != account || current == orphan[0] {
		t.Fatalf("after the restart the role names account %s and key %q; want account %s, and not the unstored key %s", stored, current, account, orphan[0])
	}
	waitStaticSettled(t, v, "static rotation", 0, killed)
	took := waitFor(t, 3*time.Minute, "the periodic function to make the first key", func() bool {
		_, _, _, err := readStaticCreds(v, "s")
		return err == nil
	})
	t.Logf("first key made %s after the rollback", took.Round(time.Second))
	current, held := checkStaticKeys(t, v, f, true)
	if len(held) != 1 || held[0] == orphan[0] {
		t.Fatalf("the account holds %v, want only the new first key (not %s)", held, orphan[0])
	}
	if n := len(f.LiveAccounts()); n != 1 {
		t.Fatalf("%d accounts, want the role's one", n)
	}
	rotateAndCheck(t, v, f, current)
}
