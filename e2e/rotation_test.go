//go:build e2e

package e2e

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// liveAdminKeyIDs lists the admin keys the fake still accepts.
func liveAdminKeyIDs(f *Fake) []string {
	var ids []string
	for _, k := range f.LiveAdminKeys() {
		ids = append(ids, k.ID)
	}
	return ids
}

func readConfig(t *testing.T, v *Vault) map[string]any {
	t.Helper()
	s, err := v.Client.Logical().Read("openai/config")
	if err != nil || s == nil {
		t.Fatalf("reading openai/config: %v", err)
	}
	if _, ok := s.Data["admin_api_key"]; ok {
		t.Fatal("config read returned admin_api_key")
	}
	return s.Data
}

// TestRotateRootUnderLoad rotates the admin key three times on a real Vault
// while 8 clients issue keys: no issue may fail, one admin key must remain.
func TestRotateRootUnderLoad(t *testing.T) {
	t.Parallel()
	v, f := setupEngine(t, map[string]any{"ttl": "10m"})

	var issued, failed atomic.Int64
	stop := issueLoop(v, "openai", "r", 8, func(_ *Creds, err error) {
		if err != nil {
			failed.Add(1)
			t.Errorf("issue during rotation failed: %v", err)
		} else {
			issued.Add(1)
		}
	})

	var keyIDs []string
	for i := 0; i < 3; i++ {
		time.Sleep(300 * time.Millisecond)
		s, err := v.Client.Logical().Write("openai/config/rotate-root", nil)
		if err != nil {
			t.Fatalf("rotate-root: %v", err)
		}
		id, _ := s.Data["admin_api_key_id"].(string)
		keyIDs = append(keyIDs, id)
	}
	time.Sleep(300 * time.Millisecond)
	stop()

	live := liveAdminKeyIDs(f)
	cfg := readConfig(t, v)
	t.Logf("rotations=3 issued=%d failed=%d live_admin_keys=%d", issued.Load(), failed.Load(), len(live))
	if failed.Load() != 0 || issued.Load() == 0 {
		t.Fatalf("issued %d, failed %d", issued.Load(), failed.Load())
	}
	if len(live) != 1 || live[0] != keyIDs[2] || cfg["admin_api_key_id"] != keyIDs[2] {
		t.Fatalf("live admin keys %v, config %v, last rotation %s", live, cfg["admin_api_key_id"], keyIDs[2])
	}
	if got := len(f.LiveAccounts()); int64(got) != issued.Load() {
		t.Fatalf("fake holds %d accounts for %d issued keys", got, issued.Load())
	}
	// Leases issued under the old keys still revoke with the new one.
	if err := v.Client.Sys().RevokePrefix("openai/creds/r"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "all accounts revoked", func() bool { return len(f.LiveAccounts()) == 0 })
}

// TestScheduledRotationOnCommunity waits for Vault's one-minute periodic tick
// to rotate a key whose rotation_period has passed. Community Edition refuses
// the rotation manager, so the engine's own schedule must do it.
func TestScheduledRotationOnCommunity(t *testing.T) {
	t.Parallel()
	v, f := setupEngine(t, nil)
	oldID := f.AdminKeyID()
	if _, err := v.Client.Logical().Write("openai/config", map[string]any{"rotation_period": "1m"}); err != nil {
		t.Fatalf("setting rotation_period on Community Edition: %v", err)
	}
	cfg := readConfig(t, v)
	if cfg["rotation_managed_by"] != "engine" || cfg["next_rotation"] == "" {
		t.Fatalf("config after rotation_period: %v", cfg)
	}
	// The rotation falls due at next_rotation, as the engine reports it, and
	// happens at Vault's first periodic tick after that (one a minute, later
	// on a loaded machine). The bound is a timeout, not an expectation: the
	// wait ends as soon as the rotation shows.
	due, err := time.Parse(time.RFC3339Nano, fmt.Sprint(cfg["next_rotation"]))
	if err != nil {
		t.Fatalf("next_rotation %v: %v", cfg["next_rotation"], err)
	}
	start := time.Now()
	waitFor(t, time.Until(due)+3*time.Minute, "scheduled rotation", func() bool {
		c := readConfig(t, v)
		return c["admin_api_key_id"] != oldID && c["last_rotated"] != ""
	})
	t.Logf("scheduled rotation seen after %s", time.Since(start).Round(time.Second))
	cfg = readConfig(t, v)
	waitFor(t, 30*time.Second, "one live admin key", func() bool {
		live := liveAdminKeyIDs(f)
		return len(live) == 1 && live[0] == cfg["admin_api_key_id"]
	})
	issue(t, v, "openai", "r", nil)
}
