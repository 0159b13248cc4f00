package backend

import (
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// The config field of the tidy schedule (tidy.go), added to the config path
// by pathConfig.

const defaultTidyInterval = time.Hour

func addTidyConfigFields(fields map[string]*framework.FieldSchema) {
	fields["tidy_interval"] = &framework.FieldSchema{
		Type: framework.TypeDurationSecond,
		Description: "How often the active node sweeps for accounts whose lease can no longer be alive (see tidy). " +
			"0 disables the schedule; checked on Vault's one-minute tick. Default 1h.",
		DisplayAttrs: &framework.DisplayAttributes{Name: "Tidy interval"},
	}
}

func (c *openaiConfig) tidyInterval() time.Duration {
	if c.TidyInterval == nil {
		return defaultTidyInterval
	}
	return *c.TidyInterval
}

// parseTidyConfig applies tidy_interval from a config write.
func parseTidyConfig(cfg *openaiConfig, d *framework.FieldData) *logical.Response {
	v, ok := d.GetOk("tidy_interval")
	if !ok {
		return nil
	}
	iv := time.Duration(v.(int)) * time.Second
	if iv < 0 || iv > maxKeyLifetime {
		return logical.ErrorResponse("tidy_interval must be 0 (off) or a duration up to %s", maxKeyLifetime)
	}
	cfg.TidyInterval = &iv
	return nil
}

func addTidyConfigData(cfg *openaiConfig, data map[string]interface{}) {
	data["tidy_interval"] = int64(cfg.tidyInterval().Seconds())
}
