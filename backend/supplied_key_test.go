package backend

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// Defect 8: with delete_supplied_key_on_rotate=false, rotate-root keeps the
// key the operator supplied (it may be shared) and says so; keys the engine
// created are still deleted by the next rotation.
func TestSuppliedKey_KeptOnRotateWhenAsked(t *testing.T) {
	e := newTestEnv(t)
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{
		"admin_api_key": e.fake.AdminKey(), "base_url": e.url, "delete_supplied_key_on_rotate": false,
	})
	supplied := e.fake.AdminKeyID()
	read := e.mustOK(logical.ReadOperation, "config", nil)
	if read.Data["delete_supplied_key_on_rotate"] != false || read.Data["admin_api_key_created_by_engine"] != false {
		t.Fatalf("config read: %v", read.Data)
	}

	resp := e.mustOK(logical.UpdateOperation, "config/rotate-root", nil)
	if resp.Data["old_admin_api_key_kept"] != supplied || !strings.Contains(strings.Join(resp.Warnings, " "), "still works") {
		t.Fatalf("rotate-root does not say the supplied key was kept: %v %v", resp.Data, resp.Warnings)
	}
	if !slices.Contains(e.adminKeyIDs(), supplied) {
		t.Fatal("supplied key deleted although delete_supplied_key_on_rotate=false")
	}
	// The supplied key still authenticates: whoever shares it keeps working.
	if _, err := newSDKClient(clientSettings{BaseURL: e.url, AdminAPIKey: e.fake.AdminKey()}).GetAdminAPIKey(context.Background(), supplied); err != nil {
		t.Fatalf("supplied key no longer works: %v", err)
	}
	firstRotated := e.storedConfig().AdminAPIKeyID
	if !e.storedConfig().AdminAPIKeyCreatedByEngine || len(e.storedConfig().PendingKeyDeletions) != 0 {
		t.Fatalf("after rotation: %+v", e.storedConfig().PendingKeyDeletions)
	}

	// The engine's own key is deleted by the next rotation.
	e.mustOK(logical.UpdateOperation, "config/rotate-root", nil)
	ids := e.adminKeyIDs()
	if slices.Contains(ids, firstRotated) || !slices.Contains(ids, supplied) || len(ids) != 2 {
		t.Fatalf("admin keys after second rotation %v (supplied %s, first rotated %s)", ids, supplied, firstRotated)
	}
}

// By default the supplied key is deleted, as before; help says so.
func TestSuppliedKey_DeletedByDefaultAndHelpSaysSo(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	supplied := e.fake.AdminKeyID()
	e.mustOK(logical.UpdateOperation, "config/rotate-root", nil)
	if slices.Contains(e.adminKeyIDs(), supplied) {
		t.Fatal("supplied key kept by default")
	}
	resp, err := e.do(logical.HelpOperation, "config/rotate-root", nil)
	if err != nil {
		t.Fatal(err)
	}
	if help, _ := resp.Data["help"].(string); !strings.Contains(help, "delete_supplied_key_on_rotate=false") || !strings.Contains(help, "shared") {
		t.Fatalf("rotate-root help does not warn about deleting a shared key: %q", help)
	}
}

// mayHaveCreatedClient fails admin-key creation with a refusal that follows
// an attempt which may have created the key (a 5xx, then a 401).
type mayHaveCreatedClient struct{ adminClient }

func (mayHaveCreatedClient) CreateAdminAPIKey(context.Context, string, int64) (*adminAPIKey, string, error) {
	return nil, "", &upstreamErr{op: "create admin API key", status: 400, message: "refused", mayHaveCreated: true}
}

// Defect 5 (rotation half): the rotation WAL entry stays when any attempt
// may have created the new key, so rollback can delete it.
func TestSuppliedKey_RotationWALKeptWhenCreateMayHaveHappened(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.b.newClient = func(s clientSettings) adminClient { return mayHaveCreatedClient{newSDKClient(s)} }
	e.b.resetClient()
	if _, err := e.rotate(); err == nil {
		t.Fatal("rotation succeeded")
	}
	if n := e.walCount(); n != 1 {
		t.Fatalf("%d WAL entries, want the rotation's entry kept for rollback", n)
	}
}
