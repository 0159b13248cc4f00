package backend

import (
	"github.com/hashicorp/vault/sdk/framework"
)

// A rotation deletes the old admin key at OpenAI once the new one is stored.
// An admin key the operator supplied may be shared with another mount, another
// Vault cluster or a tool outside Vault, which would lose access without
// warning. Keys the engine created itself (by rotating) are only ever used
// by this mount and are always deleted; a supplied key is deleted only while
// delete_supplied_key_on_rotate is true (the default, as with Vault's other
// engines: rotate-root leaves the old credential unusable).

func addSuppliedKeyFields(fields map[string]*framework.FieldSchema) {
	fields["delete_supplied_key_on_rotate"] = &framework.FieldSchema{
		Type:    framework.TypeBool,
		Default: true,
		Description: "Whether a rotation deletes, at OpenAI, an admin key that was written to config (rather than created " +
			"by an earlier rotation). Set false when that key is shared with another mount, cluster or tool: it then " +
			"keeps working after the rotation and is yours to delete. Keys the engine created are always deleted.",
		DisplayAttrs: &framework.DisplayAttributes{Name: "Delete supplied key on rotate"},
	}
}

func parseSuppliedKeyConfig(cfg *openaiConfig, d *framework.FieldData) {
	if v, ok := d.GetOk("delete_supplied_key_on_rotate"); ok {
		cfg.KeepSuppliedKeyOnRotate = !v.(bool)
	}
}

func addSuppliedKeyData(cfg *openaiConfig, data map[string]interface{}) {
	data["delete_supplied_key_on_rotate"] = !cfg.KeepSuppliedKeyOnRotate
	data["admin_api_key_created_by_engine"] = cfg.AdminAPIKeyCreatedByEngine
}

// deleteOldKeyOnRotate reports whether rotating away from cfg's current key
// deletes it.
func (c *openaiConfig) deleteOldKeyOnRotate() bool {
	return c.AdminAPIKeyCreatedByEngine || !c.KeepSuppliedKeyOnRotate
}
