package backend

import (
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// The config field of the mount-wide live-key cap (live_keys.go), added to
// the config path by pathConfig.

func addLiveKeysConfigFields(fields map[string]*framework.FieldSchema) {
	fields["max_live_keys"] = &framework.FieldSchema{
		Type: framework.TypeInt,
		Description: "Most keys of all roles together that may be live on this mount at once (issues in flight included); " +
			"an issue past it is refused until a lease is revoked or expires. 0 (default) is unlimited; at most 100000.",
		DisplayAttrs: &framework.DisplayAttributes{Name: "Max live keys"},
	}
}

// parseLiveKeysConfig applies max_live_keys from a config write.
func parseLiveKeysConfig(cfg *openaiConfig, d *framework.FieldData) *logical.Response {
	v, ok := d.GetOk("max_live_keys")
	if !ok {
		return nil
	}
	if resp := validMaxLiveKeys("max_live_keys", v.(int)); resp != nil {
		return resp
	}
	cfg.MaxLiveKeys = v.(int)
	return nil
}

func addLiveKeysConfigData(cfg *openaiConfig, data map[string]interface{}) {
	data["max_live_keys"] = cfg.MaxLiveKeys
}
