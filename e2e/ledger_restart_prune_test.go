//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// The ledger is storage, not memory: after a Vault restart (file storage)
// keys/ lists the same keys, every entry reads the same, a leaked key still
// finds its holder, and the engine keeps recording (a key revoked after the
// restart is marked so). ledger_retention's bounds are enforced and the
// setting survives too.
func TestLedgerSurvivesRestart(t *testing.T) {
	t.Parallel()
	v := startVault(t, VaultOptions{FileStorage: true})
	f := newFake(t)
	registerPlugin(t, v)
	mountPlugin(t, v, "openai")
	writeConfig(t, v, "openai", f, nil)
	writeRole(t, v, "openai", "r", map[string]any{"ttl": "30m", "max_ttl": "2h"})

	_, err := v.Client.Logical().Write("openai/config", map[string]any{"ledger_retention": "30m"})
	if code, msg := responseError(err); code != http.StatusBadRequest || !strings.Contains(msg, "ledger_retention") {
		t.Errorf("ledger_retention=30m (below the 1h minimum): HTTP %d %q, want a 400 naming ledger_retention", code, msg)
	}
	if _, err := v.Client.Logical().Write("openai/config", map[string]any{"ledger_retention": "1h"}); err != nil {
		t.Fatalf("ledger_retention=1h: %v", err)
	}

	live := issue(t, v, "openai", "r", nil)
	gone := issue(t, v, "openai", "r", nil)
	if a := f.CreateResponse(t, live.APIKey); a.Status != http.StatusOK {
		t.Fatalf("model call: HTTP %d", a.Status)
	}
	if _, err := v.Client.Sys().Renew(gone.LeaseID, 600); err != nil {
		t.Fatalf("renew: %v", err)
	}
	if err := v.Client.Sys().Revoke(gone.LeaseID); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	before, _ := ledgerList(t, v, "openai", nil)
	entries := map[string]map[string]any{}
	for _, id := range before {
		entries[id] = ledgerRead(t, v, "openai", id)
	}
	if len(before) != 2 || entries[gone.APIKeyID]["state"] != "revoked" || entries[live.APIKeyID]["state"] != "live" {
		t.Fatalf("before the restart keys/ lists %v with states %v/%v, want the two keys, one revoked", before,
			entries[live.APIKeyID]["state"], entries[gone.APIKeyID]["state"])
	}

	v.Restart()

	after, _ := ledgerList(t, v, "openai", nil)
	if !slices.Equal(after, before) {
		t.Fatalf("after the restart keys/ lists %v, before %v", after, before)
	}
	for id, want := range entries {
		if got := ledgerRead(t, v, "openai", id); !reflect.DeepEqual(got, want) {
			t.Errorf("keys/%s changed across the restart:\n before %v\n after  %v", id, want, got)
		}
	}
	if revoked, _ := ledgerList(t, v, "openai", map[string]string{"state": "revoked"}); !slices.Equal(revoked, []string{gone.APIKeyID}) {
		t.Errorf("after the restart keys/?state=revoked lists %v, want [%s]", revoked, gone.APIKeyID)
	}
	for _, c := range []*Creds{live, gone} {
		m := lookupKey(t, v, "openai", map[string]any{"api_key": c.APIKey})
		if len(m) != 1 || m[0]["api_key_id"] != c.APIKeyID || m[0]["display_name"] != entries[c.APIKeyID]["display_name"] || m[0]["request_id"] != entries[c.APIKeyID]["request_id"] {
			t.Errorf("after the restart keys/lookup of a key finds %v, want its entry", m)
		}
	}
	if m := lookupKey(t, v, "openai", map[string]any{"api_key": gone.APIKey}); len(m) == 1 && m[0]["lease_id"] != gone.LeaseID {
		t.Errorf("after the restart the revoked key's lease_id is %v, want %s", m[0]["lease_id"], gone.LeaseID)
	}
	cfg, err := v.Client.Logical().Read("openai/config")
	if err != nil || cfg == nil {
		t.Fatalf("reading config after the restart: %v", err)
	}
	if got := jsonInt(t, cfg.Data, "ledger_retention"); got != 3600 {
		t.Errorf("after the restart config ledger_retention is %d, want 3600", got)
	}

	// The engine keeps recording on the reloaded ledger.
	if err := v.Client.Sys().Revoke(live.LeaseID); err != nil {
		t.Fatalf("revoke after restart: %v", err)
	}
	// (Its lease was never renewed, so Vault does not pass its id: lease_id stays empty.)
	if e := ledgerRead(t, v, "openai", live.APIKeyID); e["state"] != "revoked" || e["revoked_by"] != "revoke" || e["revoked_at"] == "" {
		t.Errorf("a key revoked after the restart: state %v revoked_by %v revoked_at %v, want revoked by revoke", e["state"], e["revoked_by"], e["revoked_at"])
	}
	third := issue(t, v, "openai", "r", nil)
	if ids, _ := ledgerList(t, v, "openai", map[string]string{"state": "live"}); !slices.Equal(ids, []string{third.APIKeyID}) {
		t.Errorf("after the restart keys/?state=live lists %v, want only the key issued since [%s]", ids, third.APIKeyID)
	}
}

// rawAccountPath is where Vault's barrier keeps an account record (ledger
// entry) of the mount: logical/<mount uuid>/accounts/<service account id>.
func rawAccountPath(t *testing.T, v *Vault, mount, saID string) string {
	t.Helper()
	mounts, err := v.Client.Sys().ListMounts()
	if err != nil {
		t.Fatalf("listing mounts: %v", err)
	}
	mo, ok := mounts[mount+"/"]
	if !ok || mo.UUID == "" {
		t.Fatalf("mount %s/ has no uuid", mount)
	}
	return "sys/raw/logical/" + mo.UUID + "/accounts/" + saID
}

// backdateRevocation rewrites a revoked entry's revoked_at through Vault's
// raw storage endpoint (root; enabled on dev servers), as if it had been
// revoked at when. The clock is not touched: Vault, the plugin and the
// pruning compare against the real time.
func backdateRevocation(t *testing.T, v *Vault, mount, saID string, when time.Time) {
	t.Helper()
	p := rawAccountPath(t, v, mount, saID)
	s, err := v.Client.Logical().Read(p)
	if err != nil || s == nil {
		t.Fatalf("reading %s: %v", p, err)
	}
	raw, _ := s.Data["value"].(string)
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	var rec map[string]any
	if err := dec.Decode(&rec); err != nil {
		t.Fatalf("account record at %s is not JSON: %v", p, err)
	}
	if rec["revoked_at"] == nil || rec["service_account_id"] != saID {
		t.Fatalf("record at %s is not a revoked entry of %s: %v", p, saID, rec)
	}
	rec["revoked_at"] = when.Unix()
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(rec); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Client.Logical().Write(p, map[string]any{"value": strings.TrimSpace(b.String())}); err != nil {
		t.Fatalf("writing %s: %v", p, err)
	}
}

// Pruning on the real Vault, on its own periodic tick, with the real clock:
// ledger_retention cannot be set below 1h, which is too long for the suite
// to wait, so two revoked entries are backdated in storage (through Vault's
// raw endpoint) to 2h and 30m ago and the plugin reloaded to read them. The
// next tick deletes the 2h-old entry, past the 1h retention, and keeps the
// 30m-old one, a just-revoked one and a live one.
func TestLedgerPrunedAfterRetention(t *testing.T) {
	t.Parallel()
	v, f := setupEngine(t, map[string]any{"ttl": "30m"})
	if _, err := v.Client.Logical().Write("openai/config", map[string]any{"ledger_retention": "1h"}); err != nil {
		t.Fatalf("ledger_retention=1h: %v", err)
	}
	old := issue(t, v, "openai", "r", nil)
	recent := issue(t, v, "openai", "r", nil)
	fresh := issue(t, v, "openai", "r", nil)
	live := issue(t, v, "openai", "r", nil)
	for _, c := range []*Creds{old, recent, fresh} {
		if err := v.Client.Sys().Revoke(c.LeaseID); err != nil {
			t.Fatalf("revoke: %v", err)
		}
		if f.Has(c.ServiceAccountID) {
			t.Fatalf("revoked key's account still live")
		}
	}
	now := time.Now()
	backdateRevocation(t, v, "openai", old.ServiceAccountID, now.Add(-2*time.Hour))
	backdateRevocation(t, v, "openai", recent.ServiceAccountID, now.Add(-30*time.Minute))
	// The plugin keeps an index of the ledger in memory; a reload reads storage again.
	if _, err := v.Client.Sys().ReloadPlugin(&api.ReloadPluginInput{Plugin: pluginName}); err != nil {
		t.Fatalf("vault plugin reload: %v", err)
	}
	reloaded := time.Now()
	if e := ledgerRead(t, v, "openai", old.APIKeyID); e != nil {
		at, err := time.Parse(time.RFC3339, e["revoked_at"].(string))
		if err != nil || now.Add(-2*time.Hour).Sub(at).Abs() > 2*time.Second {
			t.Fatalf("after the reload keys/<old> revoked_at %v, want 2h ago", e["revoked_at"])
		}
	} // else already pruned by a tick that fell in between: the log check below still holds

	took := waitFor(t, 150*time.Second, "the periodic function to prune the entry past ledger_retention", func() bool {
		return ledgerRead(t, v, "openai", old.APIKeyID) == nil
	})
	for name, c := range map[string]*Creds{"revoked 30m ago": recent, "revoked just now": fresh, "live": live} {
		if ledgerRead(t, v, "openai", c.APIKeyID) == nil {
			t.Errorf("the entry %s was pruned; only the one revoked 2h ago is past the 1h retention", name)
		}
	}
	ids, _ := ledgerList(t, v, "openai", nil)
	if len(ids) != 3 || slices.Contains(ids, old.APIKeyID) {
		t.Errorf("keys/ lists %v after pruning, want the 3 others", ids)
	}
	if m := lookupKey(t, v, "openai", map[string]any{"api_key": old.APIKey}); len(m) != 0 {
		t.Errorf("keys/lookup still finds the pruned key")
	}
	lines := grepLines(v.Log(), "ledger: pruned revoked entries past ledger_retention")
	if len(lines) != 1 || !strings.Contains(lines[0], "pruned=1") || !strings.Contains(lines[0], "ledger_retention_s=3600") {
		t.Errorf("want one log line pruning 1 entry at retention 3600s, got %v", lines)
	}
	t.Logf("pruned %s after the reload (waited %s)", time.Since(reloaded).Round(100*time.Millisecond), took.Round(100*time.Millisecond))
	figures(t, "ledger-prune", "after_reload", time.Since(reloaded))
}
