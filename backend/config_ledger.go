package backend

import (
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// ledger_retention: how long a revoked key's ledger entry is kept
// (ledger.go), added to the config path by pathConfig.

const (
	defaultLedgerRetention = 31 * 24 * time.Hour
	// minLedgerRetention keeps an entry long enough for an incident
	// responder to look a key up after it died.
	minLedgerRetention = time.Hour
	// maxLedgerRetention: past it the ledger grows without purpose; the
	// usage reports it joins against are themselves bounded.
	maxLedgerRetention = 5 * 365 * 24 * time.Hour
)

func addLedgerConfigFields(fields map[string]*framework.FieldSchema) {
	fields["ledger_retention"] = &framework.FieldSchema{
		Type: framework.TypeDurationSecond,
		Description: "How long the ledger entry of a revoked key (keys/) is kept after its revocation; the active node " +
			"prunes older ones on Vault's one-minute tick, at most 500 per tick. 1h to 5 years; default 31 days (744h).",
		DisplayAttrs: &framework.DisplayAttributes{Name: "Ledger retention"},
	}
}

func (c *openaiConfig) ledgerRetention() time.Duration {
	if c == nil || c.LedgerRetention == nil {
		return defaultLedgerRetention
	}
	return *c.LedgerRetention
}

// parseLedgerConfig applies ledger_retention from a config write.
func parseLedgerConfig(cfg *openaiConfig, d *framework.FieldData) *logical.Response {
	v, ok := d.GetOk("ledger_retention")
	if !ok {
		return nil
	}
	r := time.Duration(v.(int)) * time.Second
	if r < minLedgerRetention || r > maxLedgerRetention {
		return logical.ErrorResponse("ledger_retention must be between %s and %s (got %s)", minLedgerRetention, maxLedgerRetention, r)
	}
	cfg.LedgerRetention = &r
	return nil
}

func addLedgerConfigData(cfg *openaiConfig, data map[string]interface{}) {
	data["ledger_retention"] = int64(cfg.ledgerRetention().Seconds())
}
