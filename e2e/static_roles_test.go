//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// Static roles on a real Vault: scheduled rotations driven by Vault's
// periodic tick under concurrent static-creds readers, and a kill -9 of
// Vault between a rotation's key create and its storage.

// staticKeyWorks asks the fake whether key authenticates (GET /v1/models);
// safe from any goroutine (no t).
func staticKeyWorks(f *Fake, key string) (int, error) {
	req, err := http.NewRequest(http.MethodGet, f.URL+"/models", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func readStaticCreds(v *Vault, role string) (key, id, account string, err error) {
	s, err := v.Client.Logical().Read("openai/static-creds/" + role)
	if err != nil {
		return "", "", "", err
	}
	if s == nil || s.Data == nil {
		return "", "", "", fmt.Errorf("no data")
	}
	key, _ = s.Data["api_key"].(string)
	id, _ = s.Data["api_key_id"].(string)
	account, _ = s.Data["service_account_id"].(string)
	if key == "" || id == "" {
		return "", "", "", fmt.Errorf("creds without a key: %v", s.Data["api_key_id"])
	}
	return key, id, account, nil
}

// TestFaultStaticScheduledRotationsUnderReaders: a 1m static role rotated
// by Vault's periodic tick (Community Edition) while readers hammer
// static-creds. Every read succeeds, every key read works at the fake when
// read, and the account never holds more than two keys. Short run: 2
// scheduled rotations (measured 1m57s, about 2 min with Vault's start);
// E2E_FAULTS=1 (make test-faults): 5 (measured 4m57s, about 5 min).
func TestFaultStaticScheduledRotationsUnderReaders(t *testing.T) {
	t.Parallel()
	want := 2
	if faultsFull() {
		want = 5
	}
	v, f := setupEngine(t, nil)
	if _, err := v.Client.Logical().Write("openai/static-roles/s", map[string]any{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "1m", "overlap": "30s",
	}); err != nil {
		t.Fatalf("static role: %v", err)
	}
	_, firstID, account, err := readStaticCreds(v, "s")
	if err != nil {
		t.Fatal(err)
	}

	var reads, failed atomic.Int64
	var mu sync.Mutex
	seen := map[string]bool{firstID: true}
	var problems []string
	maxKeys := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				key, id, _, err := readStaticCreds(v, "s")
				reads.Add(1)
				if err == nil {
					var status int
					status, err = staticKeyWorks(f, key)
					if err == nil && status != http.StatusOK {
						err = fmt.Errorf("key %s refused at the fake with %d", id, status)
					}
				}
				n := len(f.AccountKeyIDs(fakeopenai.ProjectActive, account))
				mu.Lock()
				seen[id] = true
				maxKeys = max(maxKeys, n)
				if err != nil {
					failed.Add(1)
					problems = append(problems, err.Error())
				}
				mu.Unlock()
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
	start := time.Now()
	waitFor(t, time.Duration(want+3)*time.Minute, fmt.Sprintf("%d scheduled rotations", want), func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) >= want+1
	})
	close(stop)
	wg.Wait()
	t.Logf("%d scheduled rotations in %s; %d reads, %d failed; at most %d keys on the account",
		len(seen)-1, time.Since(start).Round(time.Second), reads.Load(), failed.Load(), maxKeys)
	if failed.Load() != 0 {
		t.Fatalf("failed reads: %v", problems[:min(len(problems), 5)])
	}
	if maxKeys > 2 {
		t.Fatalf("the account held %d keys at once", maxKeys)
	}
	if _, err := v.Client.Logical().Delete("openai/static-roles/s"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if f.Has(account) || len(f.LiveKeys()) != 0 {
		t.Fatal("account or keys left after the role's delete")
	}
}

// TestCrashStaticBetweenCreateAndStore: Vault is killed (kill -9, plugin
// included) after a rotation created its key at OpenAI and before the role
// stored it. After restart the rollback deletes the new key by its name;
// the stored key is untouched and keeps working, and rotation works again.
func TestCrashStaticBetweenCreateAndStore(t *testing.T) {
	t.Parallel()
	const point = "static.after_create"
	v := startVault(t, VaultOptions{FileStorage: true})
	f := newFake(t)
	registerPlugin(t, v, rollbackSoon...)
	mountPlugin(t, v, "openai")
	writeConfig(t, v, "openai", f, rollbackSoonConfig)
	if _, err := v.Client.Logical().Write("openai/static-roles/s", map[string]any{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "2h",
	}); err != nil {
		t.Fatalf("static role: %v", err)
	}
	key, id, account, err := readStaticCreds(v, "s")
	if err != nil {
		t.Fatal(err)
	}

	reloadPlugin(t, v, append([]string{"OPENAI_PLUGIN_CRASHPOINT=" + point}, rollbackSoon...)...)
	rotated := make(chan error, 1)
	go func() {
		_, err := v.Client.Logical().Write("openai/static-roles/s/rotate", nil)
		rotated <- err
	}()
	waitForCrashpoint(t, v, point, 0)
	atCrash := f.AccountKeyIDs(fakeopenai.ProjectActive, account)
	v.Kill()
	if err := <-rotated; err == nil {
		t.Fatal("the rotation succeeded although Vault was killed")
	}
	if len(atCrash) != 2 {
		t.Fatalf("want the stored key and the new one at the crash, have %v", atCrash)
	}

	v.Restart()
	waitFor(t, 3*time.Minute, "rollback to settle the rotation's WAL entry", func() bool {
		return strings.Contains(v.Log(), "settled the WAL entry of a static rotation")
	})
	if ids := f.AccountKeyIDs(fakeopenai.ProjectActive, account); len(ids) != 1 || ids[0] != id {
		t.Fatalf("after rollback the account holds %v, want only the stored key %s", ids, id)
	}
	if status, err := staticKeyWorks(f, key); err != nil || status != http.StatusOK {
		t.Fatalf("the stored key stopped working: %d %v", status, err)
	}
	if k, gotID, _, err := readStaticCreds(v, "s"); err != nil || k != key || gotID != id {
		t.Fatalf("static-creds after the restart: %s %v", gotID, err)
	}

	reloadPlugin(t, v, rollbackSoon...)
	if _, err := v.Client.Logical().Write("openai/static-roles/s/rotate", nil); err != nil {
		t.Fatalf("rotate after the crash: %v", err)
	}
	newKey, newID, _, err := readStaticCreds(v, "s")
	if err != nil || newID == id {
		t.Fatalf("no new key after the crash: %v", err)
	}
	if status, _ := staticKeyWorks(f, newKey); status != http.StatusOK {
		t.Fatal("new key refused")
	}
	if ids := f.AccountKeyIDs(fakeopenai.ProjectActive, account); len(ids) != 2 {
		t.Fatalf("after a rotation the account holds %v, want current and previous", ids)
	}
}
