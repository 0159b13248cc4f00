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

// minRetryBudget and maxRetryBudget bound retry_budget; the maximum keeps a
// call's retries inside Vault's default 90s request deadline.
const (
	minRetryBudget = time.Second
	maxRetryBudget = 80 * time.Second
)

// maxRetriesUnset is stored as max_retries when the operator never wrote it:
// retries are then bounded by retry_budget alone. A count is a poor bound
// under sustained throttling (four retries at 30% throttling fail 0.24% of
// issues) while a Vault request has time for many more.
const maxRetriesUnset = -1

func addRetryConfigFields(fields map[string]*framework.FieldSchema) {
	fields["retry_budget"] = &framework.FieldSchema{
		Type: framework.TypeDurationSecond,
		Description: "How long one OpenAI call keeps retrying 429, 408, 409, 5xx and connection errors (honouring Retry-After): " +
			"no retry begins later than this after the call's first attempt, so a call lasts at most retry_budget plus one request_timeout, " +
			"and never past the request's own deadline. 1s to 80s; default 30s.",
		DisplayAttrs: &framework.DisplayAttributes{Name: "Retry budget"},
	}
	// max_retries is defined with the other config fields; its meaning is
	// decided here, with the budget it caps.
	fields["max_retries"] = &framework.FieldSchema{
		Type: framework.TypeInt,
		Description: "Optional cap on the retries of one OpenAI call, 0 to 10. When never written (read shows -1), " +
			"retries are bounded by retry_budget alone. Deletes of service accounts retry at least 10 times within the budget.",
		DisplayAttrs: &framework.DisplayAttributes{Name: "Max retries"},
	}
}

func (c *openaiConfig) retryBudget() time.Duration {
	if c.RetryBudget == 0 {
		return defaultRetryBudget
	}
	return c.RetryBudget
}

// parseRetryConfig applies retry_budget from a config write, marks
// max_retries unset on the first write that does not give it, and refuses
// settings under which a create could outlast the WAL rollback age.
func parseRetryConfig(cfg *openaiConfig, d *framework.FieldData) *logical.Response {
	if _, ok := d.GetOk("max_retries"); !ok && cfg.legacyDefaultRetries() {
		cfg.MaxRetries = maxRetriesUnset
	}
	if v, ok := d.GetOk("retry_budget"); ok {
		budget := time.Duration(v.(int)) * time.Second
		if budget < minRetryBudget || budget > maxRetryBudget {
			return logical.ErrorResponse("retry_budget must be between %s and %s", minRetryBudget, maxRetryBudget)
		}
		cfg.RetryBudget = budget
	}
	if cfg.RetryBudget == 0 {
		// Stored, so legacyDefaultRetries can tell this config apart from
		// one written before retry_budget existed.
		cfg.RetryBudget = defaultRetryBudget
	}
	if worst, age := cfg.clientSettings().worstCaseCall(), walRollbackMinAge(); worst+createCommitMargin > age {
		return logical.ErrorResponse("retry_budget (%s) plus request_timeout (%s) must stay below the WAL rollback age %s minus %s "+
			"(%s), or rollback could act while an issue is still creating its account: lower request_timeout or retry_budget",
			cfg.retryBudget(), cfg.RequestTimeout, age, createCommitMargin, walRollbackMinAgeEnv)
	}
	return nil
}

func addRetryConfigData(cfg *openaiConfig, data map[string]interface{}) {
	data["retry_budget"] = int64(cfg.retryBudget().Seconds())
	data["max_retries"] = cfg.clientSettings().MaxRetries
}

// legacyDefaultRetries: a config never written by a version that knows
// retry_budget (none is stored) whose max_retries is the old default, which
// pathConfigWrite also starts a new config with. Either way it is not the
// operator's choice, so it does not cap retries. (An operator who wrote 4
// explicitly before retry_budget existed gets the budget instead; writing
// max_retries again restores the cap.)
func (c *openaiConfig) legacyDefaultRetries() bool {
	return c.RetryBudget == 0 && c.MaxRetries == defaultMaxRetries
}
