package backend

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// The ledger's read paths: keys/ (list), keys/<api_key_id> (read) and
// keys/lookup (from what a leaked key reveals). All answer from the
// in-memory index (ledger.go) plus one storage read per entry shown, and
// are forwarded by performance standbys to the active node, whose index is
// the one kept current.

const (
	defaultKeysListLimit = 100
	maxKeysListLimit     = 1000
	// maxLookupMatches bounds a redacted_value lookup, whose 4-character
	// hint can match several keys on a busy mount.
	maxLookupMatches = 100
	// serviceAccountKeyPrefix starts every key a project service account
	// gets from OpenAI: a redacted_value whose shown prefix disagrees with
	// it cannot be one of this engine's keys.
	serviceAccountKeyPrefix = "sk-svcacct-"
)

func pathKeys(b *backend) []*framework.Path {
	stateAttrs := &framework.DisplayAttributes{Name: "State"}
	return []*framework.Path{
		{
			Pattern: "keys/lookup$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationVerb:   "lookup",
				OperationSuffix: "api-key",
			},
			Fields: map[string]*framework.FieldSchema{
				"api_key": {
					Query: true, // accepted from a GET's query string too, where it may be logged: prefer the body
					Type:  framework.TypeString,
					Description: "The full key value (sk-svcacct-...), for example one found leaked. Hashed (SHA-256) on arrival " +
						"and matched against the ledger's hashes; never stored or logged. Send it in the request body (write), " +
						"not in a URL.",
					DisplayAttrs: &framework.DisplayAttributes{Name: "API key", Sensitive: true},
				},
				"redacted_value": {
					Query: true, // also read from a GET's query string
					Type:  framework.TypeString,
					Description: "The key as OpenAI shows it redacted, e.g. sk-svcacct-...abcd or sk-...abcd: matched by its " +
						"last characters (at least 3; the ledger keeps the last 4) against every entry's key_hint; the shown " +
						"prefix only rules out keys that are not service-account keys (sk-svcacct-). Several keys may match.",
					DisplayAttrs: &framework.DisplayAttributes{Name: "Redacted value"},
				},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				// The key in the body (recommended); the read takes it in
				// the query string, where it may be logged.
				logical.UpdateOperation: &framework.PathOperation{Callback: b.pathKeysLookup, ForwardPerformanceStandby: true,
					Responses: keysLookupResponses()},
				logical.ReadOperation: &framework.PathOperation{Callback: b.pathKeysLookup, ForwardPerformanceStandby: true,
					DisplayAttrs: &framework.DisplayAttributes{OperationSuffix: "api-key-by-query"},
					Responses:    keysLookupResponses()},
			},
			HelpSynopsis:    "Find the ledger entries of a key from its value or its redacted form.",
			HelpDescription: pathKeysLookupHelp,
		},
		{
			Pattern: "keys/" + framework.GenericNameRegex("api_key_id"),
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationVerb:   "read",
				OperationSuffix: "api-key-ledger-entry",
			},
			Fields: map[string]*framework.FieldSchema{
				"api_key_id": {
					Type:         framework.TypeString,
					Description:  "OpenAI's id of the key (key_...), as creds returned it and OpenAI's usage reports name it.",
					Required:     true,
					DisplayAttrs: &framework.DisplayAttributes{Name: "API key id"},
				},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{Callback: b.pathKeysRead, ForwardPerformanceStandby: true,
					Responses: keysReadResponses()},
			},
			HelpSynopsis:    "Read one key's ledger entry.",
			HelpDescription: pathKeysReadHelp,
		},
		{
			Pattern: "keys/?$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationVerb:   "list",
				OperationSuffix: "api-keys",
			},
			Fields: map[string]*framework.FieldSchema{
				"after": {
					Query:        true, // also read from a GET's query string
					Type:         framework.TypeString,
					Description:  "List only key ids sorted after this one: the last id of the previous page.",
					DisplayAttrs: &framework.DisplayAttributes{Name: "After"},
				},
				"limit": {
					Query:        true, // also read from a GET's query string
					Type:         framework.TypeInt,
					Default:      defaultKeysListLimit,
					Description:  fmt.Sprintf("Most key ids in one page (1 to %d).", maxKeysListLimit),
					DisplayAttrs: &framework.DisplayAttributes{Name: "Limit"},
				},
				"role": {
					Query:        true, // also read from a GET's query string
					Type:         framework.TypeLowerCaseString,
					Description:  "Only keys issued for this role.",
					DisplayAttrs: &framework.DisplayAttributes{Name: "Role"},
				},
				"static_role": {
					Query:        true, // also read from a GET's query string
					Type:         framework.TypeLowerCaseString,
					Description:  "Only keys made for this static role (static-roles/<name>).",
					DisplayAttrs: &framework.DisplayAttributes{Name: "Static role"},
				},
				"state": {
					Query:         true, // also read from a GET's query string
					Type:          framework.TypeString,
					Description:   "Only live keys (issued, not revoked) or only revoked ones.",
					AllowedValues: []interface{}{"live", "revoked"},
					DisplayAttrs:  stateAttrs,
				},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{Callback: b.pathKeysList, ForwardPerformanceStandby: true,
					Responses: keysListResponses()},
			},
			HelpSynopsis:    "List the key ids of the issuance ledger, paged.",
			HelpDescription: pathKeysListHelp,
		},
	}
}

const pathKeysListHelp = `
Lists the api_key_id of every key in this mount's issuance ledger: live keys
and revoked ones kept for ledger_retention (config, default 31 days). Sorted;
page with limit (default 100, at most 1000) and after (the last id of the
previous page); key_info gives each id's role (or static_role, for a static
role's key), state and service account. Filter with role, static_role and
state=live|revoked. Entries of this cluster only: the
ledger is local storage, like the leases it mirrors.
`

const pathKeysReadHelp = `
Reads one key's ledger entry: the key's ids (api_key_id, service_account_id,
project_id), role and scopes; who received it (display_name and entity_id of
the requesting token, and request_id, the issuing request's id, which Vault's
audit log carries: search the audit log for it to find the exact request);
lease_id (unknown at issue, because Vault assigns it after the engine
answers; Vault 1.21 passes it to the engine only when revoking a lease that
was renewed at least once, so look it up in the audit log's response to
request_id);
issued_at, expires_at (the lease's latest possible end), key_expires_at (the
key's expiry at OpenAI); key_hint (the key's last 4 characters, as OpenAI's
redacted_value ends) and key_sha256 (hex SHA-256 of the key; the value is
never kept); state (live or revoked), revoked_at and revoked_by (revoke,
expiry, rollback, tidy, budget). An expiry and an explicit revoke reach the
engine as the same call; revoked_by=expiry means the revocation came at or
after the lease's end (within 2s).

A static role's key (static_role set, role empty) has no requester and no
lease: issued_at is when the engine made it, expires_at and key_expires_at
its expiry at OpenAI, and revoked_by is rotation (a later key replaced it and
its overlap ended), role_delete or rollback (made, never stored).
`

const pathKeysLookupHelp = `
Finds which lease received a key, from what a leak reveals:

  api_key         the full value: hashed on arrival, matched exactly.
  redacted_value  OpenAI's redacted form (sk-svcacct-...abcd): matched by
                  its last characters against each entry's key_hint (the
                  last 4); the shown prefix only excludes keys that are not
                  service-account keys. Can match several keys.

Answers matches (ledger entries, as keys/<api_key_id> shows them) and
matched_by. The audit log then leads from an entry's request_id, or from the
key's HMAC (sys/audit-hash/<device> with the leaked value), to the request,
token accessor and remote address that received it.
`

func (b *backend) pathKeysList(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	limit := d.Get("limit").(int)
	if limit < 1 || limit > maxKeysListLimit {
		return logical.ErrorResponse("limit must be between 1 and %d (got %d)", maxKeysListLimit, limit), nil
	}
	state := d.Get("state").(string)
	if state != "" && state != "live" && state != "revoked" {
		return logical.ErrorResponse("state must be live or revoked (got %q)", state), nil
	}
	role := d.Get("role").(string)
	staticRole := d.Get("static_role").(string)
	after := d.Get("after").(string)
	if len(after) > 256 {
		return logical.ErrorResponse("after must be a key id (at most 256 characters)"), nil
	}
	if err := b.ledger.ensure(ctx, req.Storage); err != nil {
		return nil, err
	}
	if err := b.ledger.static.ensure(ctx, req.Storage); err != nil {
		return nil, err
	}

	type row struct {
		keyID, saID string
		e           ledgerEntry
		staticRole  string
	}
	var rows []row
	wantState := func(revokedAt int64) bool {
		return !(state == "live" && revokedAt != 0) && !(state == "revoked" && revokedAt == 0)
	}
	b.ledger.mu.RLock()
	for keyID, saID := range b.ledger.byKey {
		if keyID <= after || staticRole != "" {
			continue
		}
		e := b.ledger.bySA[saID]
		if role != "" && e.role != role {
			continue
		}
		if !wantState(e.revokedAt) {
			continue
		}
		rows = append(rows, row{keyID: keyID, saID: saID, e: e})
	}
	b.ledger.mu.RUnlock()
	for _, se := range b.ledger.static.entries(func(se staticKeyEntry) bool {
		return se.APIKeyID > after && role == "" && (staticRole == "" || se.StaticRole == staticRole) && wantState(se.EndedAt)
	}) {
		rows = append(rows, row{keyID: se.APIKeyID, saID: se.ServiceAccountID, e: ledgerEntry{revokedAt: se.EndedAt}, staticRole: se.StaticRole})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].keyID < rows[j].keyID })

	more := len(rows) > limit
	if more {
		rows = rows[:limit]
	}
	keys := make([]string, 0, len(rows))
	info := make(map[string]interface{}, len(rows))
	for _, r := range rows {
		keys = append(keys, r.keyID)
		info[r.keyID] = map[string]interface{}{"role": r.e.role, "static_role": r.staticRole, "state": stateOf(r.e.revokedAt), "service_account_id": r.saID}
	}
	resp := logical.ListResponseWithInfo(keys, info)
	if more {
		resp.Data["next_after"] = keys[len(keys)-1]
	}
	return resp, nil
}

func stateOf(revokedAt int64) string {
	if revokedAt != 0 {
		return "revoked"
	}
	return "live"
}

func (b *backend) pathKeysRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	keyID := d.Get("api_key_id").(string)
	if !openaiIDPattern.MatchString(keyID) {
		return logical.ErrorResponse("api_key_id %q is not an OpenAI key id (key_...)", keyID), nil
	}
	if err := b.ledger.ensure(ctx, req.Storage); err != nil {
		return nil, err
	}
	b.ledger.mu.RLock()
	saID, ok := b.ledger.byKey[keyID]
	b.ledger.mu.RUnlock()
	if !ok {
		if err := b.ledger.static.ensure(ctx, req.Storage); err != nil {
			return nil, err
		}
		if se, ok := b.ledger.static.get(keyID); ok {
			return &logical.Response{Data: staticKeyEntryData(se)}, nil
		}
		return nil, nil // 404
	}
	r, err := getAccountRecord(ctx, req.Storage, saID)
	if err != nil || r == nil {
		return nil, err
	}
	return &logical.Response{Data: ledgerEntryData(r)}, nil
}

func (b *backend) pathKeysLookup(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	key := strings.TrimSpace(d.Get("api_key").(string))
	redacted := strings.TrimSpace(d.Get("redacted_value").(string))
	switch {
	case key == "" && redacted == "":
		return logical.ErrorResponse("give api_key (the full key) or redacted_value (as OpenAI shows it, e.g. sk-svcacct-...abcd)"), nil
	case key != "" && redacted != "":
		return logical.ErrorResponse("give either api_key or redacted_value, not both"), nil
	}
	if err := b.ledger.ensure(ctx, req.Storage); err != nil {
		return nil, err
	}
	if err := b.ledger.static.ensure(ctx, req.Storage); err != nil {
		return nil, err
	}

	var ids []string
	// A static key matches beside issued ones (static_ledger.go).
	var static []staticKeyEntry
	matchedBy := "api_key_sha256"
	truncated := false
	if key != "" {
		if len(key) > 1024 {
			return logical.ErrorResponse("api_key is not a key (longer than 1024 characters)"), nil
		}
		hash := keySHA256(key)
		b.ledger.mu.RLock()
		if id, ok := b.ledger.byHash[hash]; ok {
			ids = append(ids, id)
		}
		b.ledger.mu.RUnlock()
		static = b.ledger.static.entries(func(se staticKeyEntry) bool { return se.KeyHash == hash })
	} else {
		prefix, suffix, resp := parseRedactedValue(redacted)
		if resp != nil {
			return resp, nil
		}
		matchedBy = "key_hint"
		if !strings.HasPrefix(serviceAccountKeyPrefix, prefix) && !strings.HasPrefix(prefix, serviceAccountKeyPrefix) {
			// Not a service-account key: none of this engine's.
			return &logical.Response{Data: map[string]interface{}{"matches": []interface{}{}, "matched_by": matchedBy}}, nil
		}
		if len(suffix) > 4 {
			suffix = suffix[len(suffix)-4:]
		}
		b.ledger.mu.RLock()
		for id, e := range b.ledger.bySA {
			if e.keyHint != "" && strings.HasSuffix(e.keyHint, suffix) {
				ids = append(ids, id)
			}
		}
		b.ledger.mu.RUnlock()
		sort.Strings(ids)
		if len(ids) > maxLookupMatches {
			ids, truncated = ids[:maxLookupMatches], true
		}
		static = b.ledger.static.entries(func(se staticKeyEntry) bool {
			return se.KeyHint != "" && strings.HasSuffix(se.KeyHint, suffix)
		})
		if len(ids)+len(static) > maxLookupMatches {
			static, truncated = static[:maxLookupMatches-len(ids)], true
		}
	}

	matches := make([]interface{}, 0, len(ids))
	for _, id := range ids {
		r, err := getAccountRecord(ctx, req.Storage, id)
		if err != nil {
			return nil, err
		}
		if r != nil {
			matches = append(matches, ledgerEntryData(r))
		}
	}
	for _, se := range static {
		matches = append(matches, staticKeyEntryData(se))
	}
	resp := &logical.Response{Data: map[string]interface{}{"matches": matches, "matched_by": matchedBy}}
	if truncated {
		resp.Data["truncated"] = true
		resp.AddWarning(fmt.Sprintf("more than %d keys end in %q; showing the first %d by service account id: give the full api_key for an exact match",
			maxLookupMatches, redacted[max(0, len(redacted)-4):], maxLookupMatches))
	}
	return resp, nil
}

// parseRedactedValue splits OpenAI's redacted form, prefix...suffix.
func parseRedactedValue(v string) (prefix, suffix string, resp *logical.Response) {
	v = strings.ReplaceAll(v, "\u2026", "...")
	i := strings.LastIndex(v, "...")
	if i < 0 || len(v) > 256 {
		return "", "", logical.ErrorResponse("redacted_value must look like OpenAI's redacted form, prefix...suffix (e.g. sk-svcacct-...abcd), got %q", truncateForMessage(v))
	}
	prefix, suffix = v[:i], v[i+3:]
	if len(suffix) < 3 || strings.Contains(suffix, ".") {
		return "", "", logical.ErrorResponse("redacted_value must end in at least 3 of the key's last characters after \"...\" (e.g. sk-svcacct-...abcd), got %q", truncateForMessage(v))
	}
	return prefix, suffix, nil
}

func truncateForMessage(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// ledgerEntryData is one entry as keys/<api_key_id> and keys/lookup show
// it. Never a key value: the record holds none.
func ledgerEntryData(r *accountRecord) map[string]interface{} {
	ts := unixRFC3339
	scopes := r.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return map[string]interface{}{
		"api_key_id":           r.APIKeyID,
		"service_account_id":   r.ServiceAccountID,
		"service_account_name": r.Name,
		"project_id":           r.ProjectID,
		"role":                 r.Role,
		"static_role":          "",
		"scopes":               scopes,
		"display_name":         r.DisplayName,
		"entity_id":            r.EntityID,
		"request_id":           r.RequestID,
		"lease_id":             r.LeaseID,
		"issued_at":            ts(r.CreatedAt),
		"expires_at":           ts(r.ExpiresAt),
		"key_expires_at":       ts(r.KeyExpiresAt),
		"key_hint":             r.KeyHint,
		"key_sha256":           r.KeyHash,
		"state":                stateOf(r.RevokedAt),
		"revoked_at":           ts(r.RevokedAt),
		"revoked_by":           r.RevokedBy,
	}
}
