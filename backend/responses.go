package backend

import (
	"net/http"

	"github.com/hashicorp/vault/sdk/framework"
)

// The declared responses of every operation (framework.PathOperation's
// Responses), kept here so the path files only name them. They are what
// Vault's OpenAPI document and `vault path-help` show, and
// TestResponseSchemas (responses_test.go) checks every handler's actual
// responses against them strictly: a field a handler returns that is not
// declared here, or a declared always-present (Required) field it omits,
// fails the test. Durations are integer seconds (TypeInt64), times RFC 3339
// strings ("" when unset).

// respNoContent is an operation that answers 204 with no body; Vault answers 200
// instead when the operation returns warnings, still with no data.
func respNoContent(warnings string) map[int][]framework.Response {
	return map[int][]framework.Response{
		http.StatusNoContent: {{Description: "No content."}},
		http.StatusOK:        {{Description: "No data, only warnings: " + warnings}},
	}
}

func respOK(description string, fields map[string]*framework.FieldSchema) map[int][]framework.Response {
	return map[int][]framework.Response{http.StatusOK: {{Description: description, Fields: fields}}}
}

// respAlways marks fields every response of the operation carries.
func respAlways(fields map[string]*framework.FieldSchema) map[string]*framework.FieldSchema {
	for _, f := range fields {
		f.Required = true
	}
	return fields
}

func respString(description string) *framework.FieldSchema {
	return &framework.FieldSchema{Type: framework.TypeString, Description: description}
}

func respSeconds(description string) *framework.FieldSchema {
	return &framework.FieldSchema{Type: framework.TypeInt64, Description: description + " (seconds)."}
}

func respInt(description string) *framework.FieldSchema {
	return &framework.FieldSchema{Type: framework.TypeInt64, Description: description}
}

func respBool(description string) *framework.FieldSchema {
	return &framework.FieldSchema{Type: framework.TypeBool, Description: description}
}

func respStrings(description string) *framework.FieldSchema {
	return &framework.FieldSchema{Type: framework.TypeStringSlice, Description: description}
}

func respObject(description string) *framework.FieldSchema {
	return &framework.FieldSchema{Type: framework.TypeMap, Description: description}
}

func respObjects(description string) *framework.FieldSchema {
	return &framework.FieldSchema{Type: framework.TypeSlice, Description: description}
}

func configWriteResponses() map[int][]framework.Response {
	return respNoContent("when the admin key has an expiry, when and how the engine will rotate it.")
}

func configReadResponses() map[int][]framework.Response {
	fields := respAlways(map[string]*framework.FieldSchema{
		"admin_api_key_id":                respString("ID of the admin key in use (key_...)."),
		"organization_id":                 respString("Organization ID sent as the OpenAI-Organization header; empty when unset."),
		"base_url":                        respString("OpenAI API base URL."),
		"request_timeout":                 respSeconds("Timeout of one attempt of an OpenAI call"),
		"max_retries":                     respInt("Retries of a failed OpenAI call."),
		"retry_budget":                    respSeconds("Longest time one OpenAI call may spend retrying"),
		"admin_api_key_ttl":               respSeconds("Lifetime OpenAI gives admin keys created by rotation; 0: no expiry"),
		"last_rotated":                    respString("When the engine last rotated the admin key (RFC 3339); empty if never."),
		"next_rotation":                   respString("When the engine will next rotate the admin key (RFC 3339); empty if not scheduled."),
		"pending_admin_key_deletions":     respStrings("IDs of old admin keys whose deletion at OpenAI is still being retried."),
		"rotation_managed_by":             {Type: framework.TypeString, Description: "Who runs scheduled rotation: vault (Enterprise rotation manager) or engine.", AllowedValues: []interface{}{"engine", "vault"}},
		"rotation_period":                 respSeconds("Automatic rotation period; 0: none"),
		"rotation_schedule":               respString("Cron schedule of automatic rotation; empty: none."),
		"rotation_window":                 respSeconds("How long after the scheduled time a rotation may still start"),
		"rotation_policy":                 respString("Vault Enterprise rotation manager policy."),
		"disable_automated_rotation":      respBool("Whether scheduled rotation is disabled."),
		"delete_supplied_key_on_rotate":   respBool("Whether rotating away from a key written to config deletes it at OpenAI."),
		"admin_api_key_created_by_engine": respBool("Whether the key in use was created by the engine's own rotation."),
		"tidy_interval":                   respSeconds("How often the active node runs tidy; 0: never"),
		"ledger_retention":                respSeconds("How long revoked keys stay in the issuance ledger"),
		"max_live_keys":                   respInt("Most live keys of the whole mount; 0: unlimited."),
		"expiry_grace":                    respSeconds("How long past its lease's end a key following its lease stays valid at OpenAI"),
	})
	fields["admin_api_key_expires_at"] = respString("When the admin key in use expires at OpenAI (RFC 3339); absent when it has no expiry.")
	return respOK("The configuration, without the admin key.", fields)
}

func configDeleteResponses() map[int][]framework.Response {
	return map[int][]framework.Response{http.StatusNoContent: {{Description: "No content."}}}
}

func rotateRootResponses() map[int][]framework.Response {
	fields := respAlways(map[string]*framework.FieldSchema{
		"admin_api_key_id": respString("ID of the new admin key."),
		"last_rotated":     respString("When the rotation happened (RFC 3339)."),
	})
	fields["old_admin_api_key_kept"] = respString("ID of the old, supplied key left working at OpenAI (delete_supplied_key_on_rotate=false); absent otherwise.")
	return respOK("The new admin key's ID.", fields)
}

func roleListResponses() map[int][]framework.Response {
	return respOK("Role names.", map[string]*framework.FieldSchema{"keys": respStrings("Role names.")})
}

func roleReadResponses() map[int][]framework.Response {
	return respOK("The role.", respAlways(map[string]*framework.FieldSchema{
		"project_id":           respString("OpenAI project whose service accounts the role creates."),
		"name_template":        respString("Template of service-account names."),
		"ttl":                  respSeconds("Default lease TTL; 0: the mount's"),
		"max_ttl":              respSeconds("Maximum lifetime of a key; 0: the mount's"),
		"max_live_keys":        respInt("Most live keys of the role; 0: unlimited."),
		"scopes":               respStrings("OpenAI scopes of every key; empty: unscoped."),
		"expiry_follows_lease": respBool("Whether a key's OpenAI expiry follows its lease's end."),
		"max_tokens_per_key":   respInt("Token budget of each key; 0: none."),
	}))
}

func roleWriteResponses() map[int][]framework.Response {
	return respNoContent("the role's max_ttl exceeds the mount's max lease TTL.")
}

func roleDeleteResponses() map[int][]framework.Response {
	return map[int][]framework.Response{http.StatusNoContent: {{Description: "No content."}}}
}

// credsFields are the data of a creds response (a secret: lease_id,
// lease_duration and renewable sit beside it).
func credsFields() map[string]*framework.FieldSchema {
	return respAlways(map[string]*framework.FieldSchema{
		"api_key":              {Type: framework.TypeString, Description: "The OpenAI API key (sk-svcacct-...).", DisplayAttrs: &framework.DisplayAttributes{Sensitive: true}},
		"api_key_id":           respString("OpenAI's id of the key (key_...)."),
		"service_account_id":   respString("The project service account that owns the key; deleted on revocation."),
		"service_account_name": respString("The service account's name: the role's name_template and a unique token."),
		"project_id":           respString("The role's project."),
		"scopes":               respStrings("The key's OpenAI scopes; empty means all permissions of its service account."),
	})
}

func credsResponses() map[int][]framework.Response {
	return respOK("A new API key on a renewable lease.", credsFields())
}

func tidyResponses() map[int][]framework.Response {
	return respOK("What tidy found and did.", respAlways(map[string]*framework.FieldSchema{
		"dry_run":          respBool("Whether nothing was deleted."),
		"records":          respInt("Account records examined."),
		"stale":            respInt("Records older than their lease's max lifetime plus grace."),
		"key_expired":      respInt("Records whose key OpenAI already expired."),
		"deleted":          respInt("Accounts deleted at OpenAI."),
		"already_gone":     respInt("Accounts OpenAI no longer had."),
		"not_ours":         respInt("Accounts OpenAI lists under another name than the record's: left alone."),
		"failed":           respInt("Deletions that failed."),
		"untracked_marked": respInt("vault-... accounts without a record: counted, never deleted."),
		"projects_listed":  respInt("Projects whose accounts were listed."),
		"incomplete":       respBool("Whether tidy stopped early."),
		"reason":           respString("Why tidy stopped early; empty if it did not."),
		"duration_ms":      respInt("How long tidy ran (milliseconds)."),
	}))
}

// ledgerEntryFields are one issuance-ledger entry (ledgerEntryData).
func ledgerEntryFields() map[string]*framework.FieldSchema {
	return respAlways(map[string]*framework.FieldSchema{
		"api_key_id":           respString("OpenAI's id of the key."),
		"service_account_id":   respString("The key's service account."),
		"service_account_name": respString("The service account's name."),
		"project_id":           respString("The key's project."),
		"role":                 respString("The role that issued it; empty for a static role's key."),
		"static_role":          respString("The static role the key was made for; empty for an issued key."),
		"scopes":               respStrings("The key's scopes; empty: unscoped."),
		"display_name":         respString("Display name of the requesting token."),
		"entity_id":            respString("Entity id of the requesting token; empty without one."),
		"request_id":           respString("ID of the issuing request, as Vault's audit log carries it."),
		"lease_id":             respString("The key's lease; empty until its first renewal or its revocation."),
		"issued_at":            respString("When the key was issued (RFC 3339)."),
		"expires_at":           respString("The lease's latest possible end (RFC 3339)."),
		"key_expires_at":       respString("The key's expiry at OpenAI (RFC 3339)."),
		"key_hint":             respString("The key's last 4 characters."),
		"key_sha256":           respString("Hex SHA-256 of the key."),
		"state":                {Type: framework.TypeString, Description: "live or revoked.", AllowedValues: []interface{}{"live", "revoked"}},
		"revoked_at":           respString("When the key was revoked (RFC 3339); empty while live."),
		"revoked_by":           respString("What ended it: revoke, expiry, rollback, tidy or budget; for a static role's key rotation (replaced, overlap over), role_delete or rollback (never stored); empty while live."),
	})
}

func keysListResponses() map[int][]framework.Response {
	return respOK("A page of key ids.", map[string]*framework.FieldSchema{
		"keys":       respStrings("Key ids (api_key_id), sorted."),
		"key_info":   respObject("Per key id: role, static_role, state and service_account_id."),
		"next_after": respString("Present when more keys follow: pass it as after for the next page."),
	})
}

func keysReadResponses() map[int][]framework.Response {
	return respOK("One key's ledger entry.", ledgerEntryFields())
}

func keysLookupResponses() map[int][]framework.Response {
	fields := respAlways(map[string]*framework.FieldSchema{
		"matches":    respObjects("Ledger entries matched, as keys/<api_key_id> shows them."),
		"matched_by": {Type: framework.TypeString, Description: "api_key_sha256 (exact) or key_hint (last characters).", AllowedValues: []interface{}{"api_key_sha256", "key_hint"}},
	})
	fields["truncated"] = respBool("Present and true when more keys matched than are shown.")
	return respOK("The matching ledger entries.", fields)
}

func metricsResponses() map[int][]framework.Response {
	return map[int][]framework.Response{http.StatusOK: {{
		Description: "Prometheus text exposition format (a raw body, not JSON).",
		MediaType:   "text/plain",
	}}}
}

func usageFields(perRole bool) map[string]*framework.FieldSchema {
	fields := respAlways(map[string]*framework.FieldSchema{
		"start_time":     respString("Start of the window (RFC 3339)."),
		"end_time":       respString("End of the window, exclusive (RFC 3339)."),
		"usage_start":    respString("Start of the whole UTC days OpenAI's numbers cover (RFC 3339); empty without keys."),
		"usage_end":      respString("End of the days OpenAI's numbers cover (RFC 3339); empty without keys."),
		"keys":           respObjects("Per key alive in the window: ids, who received it, issued, revoked, revoked_by, tokens, requests and cost."),
		"totals":         respObject("Sums over the keys: keys, input_tokens, output_tokens, input_cached_tokens, num_model_requests, cost."),
		"upstream_calls": respInt("OpenAI calls this request made."),
	})
	if perRole {
		fields["roles"] = &framework.FieldSchema{Type: framework.TypeMap, Description: "Totals per role.", Required: true}
	} else {
		fields["role"] = &framework.FieldSchema{Type: framework.TypeString, Description: "The role.", Required: true}
	}
	return fields
}

func usageResponses(perRole bool) map[int][]framework.Response {
	return respOK("Token usage and cost of the keys alive in the window.", usageFields(perRole))
}

// previousKeyFields are the previous key of a static role, which every
// static-roles/<name> read, rotate and static-creds read carries ("" when
// there is none).
func previousKeyFields(fields map[string]*framework.FieldSchema) map[string]*framework.FieldSchema {
	fields["previous_api_key_id"] = &framework.FieldSchema{Type: framework.TypeString, Required: true,
		Description: "ID of the previous key, still working until previous_api_key_ends_at; empty when there is none."}
	fields["previous_api_key_ends_at"] = &framework.FieldSchema{Type: framework.TypeString, Required: true,
		Description: "When the engine deletes the previous key (RFC 3339); empty when there is none."}
	return fields
}

func staticRoleListResponses() map[int][]framework.Response {
	return respOK("Static role names.", map[string]*framework.FieldSchema{"keys": respStrings("Static role names.")})
}

func staticRoleReadResponses() map[int][]framework.Response {
	return respOK("The static role; never a key.", previousKeyFields(respAlways(map[string]*framework.FieldSchema{
		"project_id":                 respString("OpenAI project of the role's service account."),
		"service_account_id":         respString("The service account whose key the engine rotates."),
		"service_account_name":       respString("The account's name when the engine created it; empty for an operator's account."),
		"account_created_by_engine":  respBool("Whether the engine created the account (and deletes it with the role)."),
		"name_template":              respString("The template that named the engine's account; empty for an operator's account."),
		"overlap":                    respSeconds("How long the previous key keeps working after a rotation"),
		"scopes":                     respStrings("OpenAI scopes of every key; empty: unscoped."),
		"rotation_managed_by_vault":  respBool("Whether Vault's rotation manager (Enterprise) drives the schedule; else the engine's periodic function."),
		"api_key_id":                 respString("ID of the current key; empty until the first rotation succeeds."),
		"last_vault_rotation":        respString("When the current key was made (RFC 3339); empty before the first rotation."),
		"next_vault_rotation":        respString("When the engine next rotates the key (RFC 3339)."),
		"rotation_period":            respSeconds("Rotation period; 0 with rotation_schedule"),
		"rotation_schedule":          respString("Cron schedule of rotation; empty with rotation_period."),
		"rotation_window":            respSeconds("How long after the scheduled time a rotation may still start"),
		"disable_automated_rotation": respBool("Always false: static roles always rotate."),
		"rotation_policy":            respString("Vault Enterprise rotation manager policy; empty when unset."),
	})))
}

func staticRoleWriteResponses() map[int][]framework.Response {
	return respNoContent("Vault's rotation manager refused the schedule (the engine rotates instead), or the role's first key could not be made (retried every minute).")
}

func staticRoleDeleteResponses() map[int][]framework.Response {
	return map[int][]framework.Response{http.StatusNoContent: {{Description: "No content."}}}
}

func staticRoleRotateResponses() map[int][]framework.Response {
	return respOK("The new current key's ID; the old current key is now the previous one.", previousKeyFields(respAlways(map[string]*framework.FieldSchema{
		"api_key_id":          respString("ID of the new current key."),
		"last_vault_rotation": respString("When the rotation happened (RFC 3339)."),
	})))
}

func staticCredsResponses() map[int][]framework.Response {
	fields := previousKeyFields(respAlways(map[string]*framework.FieldSchema{
		"api_key":             {Type: framework.TypeString, Description: "The role's current OpenAI API key (sk-svcacct-...).", DisplayAttrs: &framework.DisplayAttributes{Sensitive: true}},
		"api_key_id":          respString("OpenAI's id of the key (key_...)."),
		"service_account_id":  respString("The service account that owns the key."),
		"project_id":          respString("The role's project."),
		"last_vault_rotation": respString("When the key was made (RFC 3339)."),
		"ttl":                 respSeconds("Time until the next rotation, after which a reader should read again"),
	}))
	fields["rotation_period"] = respSeconds("The role's rotation period; present when the role rotates on a period")
	fields["rotation_schedule"] = respString("The role's cron schedule; present when the role rotates on a schedule.")
	return respOK("The static role's current key; not leased.", fields)
}
