package backend

import (
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// Config fields that bound how long one OpenAI call may keep retrying
// (added to the config path by pathConfig).

// defaultRetryBudget is how long a call keeps retrying throttling, 5xx and
// connection errors when max_retries is not set explicitly.
const defaultRetryBudget = 30 * time.Second

func addRetryConfigFields(fields map[string]*framework.FieldSchema) {
	fields["retry_budget"] = &framework.FieldSchema{
		Type: framework.TypeDurationSecond,
		Description: "How long one OpenAI call keeps retrying 429, 5xx and connection errors (honouring Retry-After) " +
			"before it fails; always inside the request's own deadline. Default 30s.",
		DisplayAttrs: &framework.DisplayAttributes{Name: "Retry budget"},
	}
}

func (c *openaiConfig) retryBudget() time.Duration {
	if c.RetryBudget == 0 {
		return defaultRetryBudget
	}
	return c.RetryBudget
}

// parseRetryConfig applies retry_budget from a config write.
func parseRetryConfig(cfg *openaiConfig, d *framework.FieldData) *logical.Response {
	v, ok := d.GetOk("retry_budget")
	if !ok {
		return nil
	}
	budget := time.Duration(v.(int)) * time.Second
	if budget < time.Second || budget > maxRetryBudget {
		return logical.ErrorResponse("retry_budget must be between 1s and %s", maxRetryBudget)
	}
	cfg.RetryBudget = budget
	return nil
}

// maxRetryBudget keeps a call's retries inside Vault's default 90s request deadline.
const maxRetryBudget = 80 * time.Second

func addRetryConfigData(cfg *openaiConfig, data map[string]interface{}) {
	data["retry_budget"] = int64(cfg.retryBudget().Seconds())
}
