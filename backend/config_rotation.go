package backend

import (
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// The config fields of admin key rotation (rotation_schedule.go): Vault's
// automated rotation fields, described for this engine, and
// admin_api_key_ttl.

// parseRotationConfig applies admin_api_key_ttl and the automated rotation
// fields from a config write. changed reports whether any rotation field
// was written, so the schedule is registered again.
func parseRotationConfig(cfg *openaiConfig, d *framework.FieldData) (changed bool, resp *logical.Response) {
	if v, ok := d.GetOk("admin_api_key_ttl"); ok {
		ttl := time.Duration(v.(int)) * time.Second
		if ttl != 0 && (ttl < time.Hour || ttl > maxKeyLifetime) {
			return false, logical.ErrorResponse("admin_api_key_ttl must be 0 or between 1h and %s", maxKeyLifetime)
		}
		cfg.AdminAPIKeyTTL = ttl
	}
	for _, f := range []string{"rotation_period", "rotation_schedule", "rotation_window", "disable_automated_rotation", "rotation_policy"} {
		if _, ok := d.GetOk(f); ok {
			changed = true
		}
	}
	if !changed {
		return false, nil
	}
	if err := cfg.Rotation.ParseAutomatedRotationFields(d); err != nil {
		return true, logical.ErrorResponse("rotation: %s", err)
	}
	if p := cfg.Rotation.RotationPeriod; p < 0 || (p > 0 && p < time.Minute) {
		return true, logical.ErrorResponse("rotation_period must be 0 (off) or at least 1m")
	}
	return true, nil
}

// describeRotationFields replaces the generic help of the automated rotation
// fields (written for database usernames) with what they do here.
func describeRotationFields(fields map[string]*framework.FieldSchema) {
	desc := map[string]string{
		"rotation_period": "Rotate the admin key this often (seconds or a duration such as 720h; at least 1m, 0 turns it off). " +
			"Mutually exclusive with rotation_schedule. A key with an expiry is also rotated when a fifth of its lifetime is left.",
		"rotation_schedule": "Cron schedule on which to rotate the admin key, e.g. \"0 3 * * SAT\". Mutually exclusive with rotation_period.",
		"rotation_window":   "With rotation_schedule: how long after the scheduled time a rotation may still start (Vault Enterprise).",
		"disable_automated_rotation": "Turn scheduled rotation of the admin key off. A key with an expiry is still rotated " +
			"when a fifth of its lifetime is left, so it never expires in use.",
		"rotation_policy": "Vault Enterprise rotation manager policy for retrying failed scheduled rotations.",
	}
	for name, d := range desc {
		if f, ok := fields[name]; ok {
			f.Description = d
		}
	}
}

// expiryNotice tells the operator, when the key has an expiry, that the
// engine will replace it ahead of time, and what happens to the old key:
// a supplied key may be shared, and rotation deletes it by default.
func expiryNotice(cfg *openaiConfig) *logical.Response {
	if cfg.AdminAPIKeyExpiresAt <= 0 {
		return nil
	}
	resp := &logical.Response{}
	msg := fmt.Sprintf("admin_api_key expires at %s; the engine rotates it at %s (a fifth of its lifetime before), whatever the rotation schedule",
		formatTime(time.Unix(cfg.AdminAPIKeyExpiresAt, 0)), formatTime(cfg.expiryRotation()))
	if cfg.deleteOldKeyOnRotate() {
		msg += ", and then deletes it at OpenAI: if it is shared, set delete_supplied_key_on_rotate=false"
	}
	resp.AddWarning(msg)
	return resp
}
