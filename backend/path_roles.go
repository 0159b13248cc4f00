package backend

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"
)

const roleStoragePrefix = "roles/"

// roleEntry is one role: which project its keys belong to and how long they live.
type roleEntry struct {
	ProjectID    string        `json:"project_id"`
	NameTemplate string        `json:"name_template"`
	TTL          time.Duration `json:"ttl"`
	MaxTTL       time.Duration `json:"max_ttl"`
	// MaxLiveKeys caps the role's live keys; 0 is unlimited (live_keys.go).
	MaxLiveKeys int `json:"max_live_keys,omitempty"`
	// Scopes restrict every key the role issues (sorted; empty: unscoped).
	Scopes []string `json:"scopes,omitempty"`
	// ExpiryAtMaxTTL is expiry_follows_lease=false, stored inverted so that
	// roles written before the field existed follow their leases, the
	// default (key_expiry.go).
	ExpiryAtMaxTTL bool `json:"expiry_at_max_ttl,omitempty"`
	// MaxTokensPerKey is the token budget of each key (budget.go); 0: none.
	MaxTokensPerKey int64 `json:"max_tokens_per_key,omitempty"`
}

// expiryFollowsLease is the role's expiry_follows_lease.
func (r *roleEntry) expiryFollowsLease() bool { return !r.ExpiryAtMaxTTL }

func pathRoles(b *backend) []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "roles/?$",
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "roles",
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{
					Callback:     b.pathRoleList,
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "list"},
					Responses:    roleListResponses(),
				},
			},
			HelpSynopsis:    "List the configured roles.",
			HelpDescription: "Lists the names of all roles on this mount.",
		},
		{
			Pattern: "roles/" + framework.GenericNameRegex("name"),
			DisplayAttrs: &framework.DisplayAttributes{
				OperationPrefix: operationPrefix,
				OperationSuffix: "role",
			},
			Fields: map[string]*framework.FieldSchema{
				"name": {
					Type:        framework.TypeLowerCaseString,
					Description: "Name of the role: letters, digits, '-', '_' and '.', at most 128 characters, no \"..\"; stored lowercased (App and app are the same role).",
					Required:    true,
				},
				"project_id": {
					Type:         framework.TypeString,
					Description:  "OpenAI project (proj_...) whose service accounts this role creates. Required on create; must exist and be active.",
					DisplayAttrs: &framework.DisplayAttributes{Name: "Project ID"},
				},
				"name_template": {
					Type: framework.TypeString,
					Description: "Template for service-account names (Vault template syntax). Variables: .RoleName, .DisplayName, .MountAccessor; " +
						"functions include random, truncate, unix_time, lowercase. Must produce unique names. Default: " + defaultNameTemplate,
					DisplayAttrs: &framework.DisplayAttributes{Name: "Name template"},
				},
				"ttl": {
					Type:         framework.TypeDurationSecond,
					Description:  "Default lease TTL of issued keys. Defaults to the mount's default lease TTL.",
					DisplayAttrs: &framework.DisplayAttributes{Name: "TTL"},
				},
				"max_ttl": {
					Type:         framework.TypeDurationSecond,
					Description:  "Maximum lifetime of an issued key, renewals included; also sent to OpenAI as the key's own expiry. Defaults to the mount's max lease TTL; at most one year.",
					DisplayAttrs: &framework.DisplayAttributes{Name: "Max TTL"},
				},
				"max_live_keys": {
					Type: framework.TypeInt,
					Description: "Most keys of this role that may be live at once (issues in flight included); an issue past it is refused " +
						"until one of the role's leases is revoked or expires. 0 (default) is unlimited; at most 100000.",
					DisplayAttrs: &framework.DisplayAttributes{Name: "Max live keys"},
				},
				"scopes": {
					Type: framework.TypeCommaStringSlice,
					Description: "OpenAI API-key scopes every key of this role carries (for example api.model.read); empty (default) " +
						"gives keys all the permissions of their service account. Scope names are OpenAI's: the list is checked " +
						"at write by creating and deleting one key with these scopes, so a scope OpenAI refuses is a 400 here. " +
						"At most 32, each up to 64 visible ASCII characters; duplicates are dropped and the list is stored sorted. " +
						"With scopes, issuing makes two OpenAI calls (a bare account, then its key) instead of one, " +
						"and a request may narrow them (creds scopes=...).",
				},
				"max_tokens_per_key": {
					Type: framework.TypeInt,
					Description: "Token budget of each key: input plus output tokens as OpenAI's usage report counts them. " +
						"Checked on the active node every minute (one usage call per role with budgeted live keys); a key over " +
						"it has its service account deleted at OpenAI, is marked revoked_by budget in the ledger, and its lease " +
						"can no longer renew. Enforcement trails usage by up to a minute plus OpenAI's reporting delay. " +
						"0 (default) is no budget; at most 1000000000000.",
					DisplayAttrs: &framework.DisplayAttributes{Name: "Max tokens per key"},
				},
				"expiry_follows_lease": {
					Type: framework.TypeBool,
					Description: "When true (default), a key expires at OpenAI at its lease's current end plus config's expiry_grace, " +
						"and every renewal first moves that expiry (one OpenAI call; if OpenAI refuses, the renewal fails). " +
						"When false, a key expires at its lease's max_ttl and renewals make no call.",
					Default:      true,
					DisplayAttrs: &framework.DisplayAttributes{Name: "Expiry follows lease"},
				},
			},
			ExistenceCheck: b.roleExistenceCheck,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.CreateOperation: &framework.PathOperation{
					Callback:     b.pathRoleWrite,
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "write"},
					Responses:    roleWriteResponses(),
				},
				logical.UpdateOperation: &framework.PathOperation{
					Callback:     b.pathRoleWrite,
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "write"},
					Responses:    roleWriteResponses(),
				},
				logical.ReadOperation: &framework.PathOperation{
					Callback:     b.pathRoleRead,
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read"},
					Responses:    roleReadResponses(),
				},
				logical.DeleteOperation: &framework.PathOperation{
					Callback:     b.pathRoleDelete,
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "delete"},
					Responses:    roleDeleteResponses(),
				},
			},
			HelpSynopsis:    "Manage roles that issue OpenAI API keys.",
			HelpDescription: pathRoleHelp,
		},
	}
}

const pathRoleHelp = `
A role names the OpenAI project its keys belong to, how each key's service
account is named, and how long keys live. The project is checked at write
time: it must exist and be active. Deleting or changing a role does not touch
keys already issued; their leases still revoke.

scopes restricts every key of the role to those OpenAI API-key scopes
(OpenAI's names, for example api.model.read; OpenAI publishes no list). When
the scopes (or the project of a role with scopes) change, the write creates
one key with them and deletes it again: a scope OpenAI refuses is a 400
carrying OpenAI's message, and nothing is stored. Requests may narrow a
role's scopes to a non-empty subset (creds/<role> scopes=...).

expiry_follows_lease (default true) gives each key an OpenAI-side expiry at
its lease's end plus config's expiry_grace, moved on every renewal, so a key
outlives a lost Vault by at most one TTL plus the grace; false keeps the
expiry at max_ttl and makes renewals call nothing.
`

func (b *backend) roleLock(name string) *locksutil.LockEntry {
	return locksutil.LockForKey(b.roleLocks, name)
}

// maxRoleNameLength keeps a role's storage key within what every storage
// backend accepts: file storage makes the name a file name (255 bytes).
const maxRoleNameLength = 128

// roleNameProblem says why a name the path pattern admits can never be a
// role, or "" when it can. framework.GenericNameRegex admits "a..b", but
// Vault's storage refuses any key containing ".." ("relative paths not
// supported"), which surfaced as a 500; so every role handler asks this
// first and answers 400 naming the field.
func roleNameProblem(name string) string {
	switch {
	case strings.Contains(name, ".."):
		return fmt.Sprintf("name %q must not contain \"..\"", name)
	case len(name) > maxRoleNameLength:
		return fmt.Sprintf("name must be at most %d characters (got %d)", maxRoleNameLength, len(name))
	}
	return ""
}

// roleNameError is roleNameProblem as a 400 response, or nil.
func roleNameError(name string) *logical.Response {
	if p := roleNameProblem(name); p != "" {
		return logical.ErrorResponse(p)
	}
	return nil
}

// getRole returns nil for a name that can never be stored (see
// roleNameProblem) without asking storage, so lookups of such names behave
// like any other unknown role instead of failing.
func getRole(ctx context.Context, s logical.Storage, name string) (*roleEntry, error) {
	if roleNameProblem(name) != "" {
		return nil, nil
	}
	entry, err := s.Get(ctx, roleStoragePrefix+name)
	if err != nil {
		return nil, fmt.Errorf("read role %q: %w", name, err)
	}
	if entry == nil {
		return nil, nil
	}
	role := new(roleEntry)
	if err := entry.DecodeJSON(role); err != nil {
		return nil, fmt.Errorf("decode role %q: %w", name, err)
	}
	return role, nil
}

func (b *backend) roleExistenceCheck(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	role, err := getRole(ctx, req.Storage, d.Get("name").(string))
	return role != nil, err
}

func (b *backend) pathRoleList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	names, err := req.Storage.List(ctx, roleStoragePrefix)
	if err != nil {
		return nil, err
	}
	return logical.ListResponse(names), nil
}

func (b *backend) pathRoleRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if resp := roleNameError(name); resp != nil {
		return resp, nil
	}
	role, err := getRole(ctx, req.Storage, name)
	if err != nil || role == nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]interface{}{
		"project_id":           role.ProjectID,
		"name_template":        role.NameTemplate,
		"ttl":                  int64(role.TTL.Seconds()),
		"max_ttl":              int64(role.MaxTTL.Seconds()),
		"max_live_keys":        role.MaxLiveKeys,
		"scopes":               append([]string{}, role.Scopes...),
		"expiry_follows_lease": role.expiryFollowsLease(),
		"max_tokens_per_key":   role.MaxTokensPerKey,
	}}, nil
}

func (b *backend) pathRoleWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name, unlock, resp := b.lockRoleForWrite(d)
	if resp != nil {
		return resp, nil
	}
	defer unlock()

	role, err := getRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if role == nil {
		role = &roleEntry{NameTemplate: defaultNameTemplate}
	}
	oldProject, oldScopes := role.ProjectID, role.Scopes

	if v, ok := d.GetOk("project_id"); ok {
		role.ProjectID = strings.TrimSpace(v.(string))
	}
	if role.ProjectID == "" {
		return logical.ErrorResponse("project_id is required"), nil
	}
	if !openaiIDPattern.MatchString(role.ProjectID) {
		return logical.ErrorResponse("project_id %q is not a valid OpenAI project id (letters, digits, '_' and '-')", role.ProjectID), nil
	}
	if v, ok := d.GetOk("name_template"); ok {
		role.NameTemplate = v.(string)
	}
	tmpl, err := parseNameTemplate(role.NameTemplate)
	if err == nil {
		err = tmpl.validate(name)
	}
	if err != nil {
		return logical.ErrorResponse("name_template: %s", err), nil
	}
	if v, ok := d.GetOk("ttl"); ok {
		role.TTL = time.Duration(v.(int)) * time.Second
	}
	if v, ok := d.GetOk("max_ttl"); ok {
		role.MaxTTL = time.Duration(v.(int)) * time.Second
	}
	if resp := validateRoleTTLs(role); resp != nil {
		return resp, nil
	}
	if v, ok := d.GetOk("max_live_keys"); ok {
		if resp := validMaxLiveKeys("max_live_keys", v.(int)); resp != nil {
			return resp, nil
		}
		role.MaxLiveKeys = v.(int)
	}
	if v, ok := d.GetOk("scopes"); ok {
		scopes, resp := normalizeScopes("scopes", v.([]string))
		if resp != nil {
			return resp, nil
		}
		role.Scopes = scopes
	}
	if v, ok := d.GetOk("expiry_follows_lease"); ok {
		role.ExpiryAtMaxTTL = !v.(bool)
	}
	if v, ok := d.GetOk("max_tokens_per_key"); ok {
		n := int64(v.(int))
		if resp := validMaxTokensPerKey(n); resp != nil {
			return resp, nil
		}
		role.MaxTokensPerKey = n
	}

	var warnings []string
	if sysMax := b.System().MaxLeaseTTL(); role.MaxTTL > sysMax {
		warnings = append(warnings, fmt.Sprintf("max_ttl %s exceeds the mount's max lease TTL %s; leases will be capped to the latter", role.MaxTTL, sysMax))
	}

	// The project is checked here, once, so the issue path needs no extra call.
	if role.ProjectID != oldProject {
		if resp, err := b.checkProject(ctx, req.Storage, role.ProjectID); resp != nil || err != nil {
			return resp, err
		}
	}
	// Scopes are probed where they will be used: again when the project
	// changes, since OpenAI may accept a scope in one project and not another.
	if len(role.Scopes) > 0 && (role.ProjectID != oldProject || !slices.Equal(role.Scopes, oldScopes)) {
		if resp, err := b.probeScopes(ctx, req.Storage, role.ProjectID, name, role.Scopes); resp != nil || err != nil {
			return resp, err
		}
	}

	entry, err := logical.StorageEntryJSON(roleStoragePrefix+name, role)
	if err != nil {
		return nil, err
	}
	if err := req.Storage.Put(ctx, entry); err != nil {
		return nil, err
	}
	b.roleCache.invalidate(name)
	if len(warnings) > 0 {
		return &logical.Response{Warnings: warnings}, nil
	}
	return nil, nil
}

func validateRoleTTLs(role *roleEntry) *logical.Response {
	switch {
	case role.TTL < 0:
		return logical.ErrorResponse("ttl must not be negative")
	case role.MaxTTL < 0:
		return logical.ErrorResponse("max_ttl must not be negative")
	case role.MaxTTL > maxKeyLifetime:
		return logical.ErrorResponse("max_ttl must be at most %s (OpenAI's longest key expiry)", maxKeyLifetime)
	case role.MaxTTL > 0 && role.TTL > role.MaxTTL:
		return logical.ErrorResponse("ttl (%s) must not exceed max_ttl (%s)", role.TTL, role.MaxTTL)
	}
	return nil
}

// checkProject answers 400 naming the project when it is missing or archived.
func (b *backend) checkProject(ctx context.Context, s logical.Storage, projectID string) (*logical.Response, error) {
	client, err := b.getClient(ctx, s)
	if errors.Is(err, errMissingConfig) {
		return logical.ErrorResponse(err.Error()), nil
	}
	if err != nil {
		return nil, err
	}
	p, err := client.GetProject(ctx, projectID)
	switch {
	case isNotFound(err):
		return logical.ErrorResponse("project_id %q was not found in the OpenAI organization", projectID), nil
	case isClientError(err):
		return logical.ErrorResponse("project_id %q could not be checked: %s", projectID, err), nil
	case err != nil:
		return nil, fmt.Errorf("check project_id %q: %w", projectID, err)
	case p.Status != "" && p.Status != "active":
		return logical.ErrorResponse("project_id %q is %s; service accounts can only be created in an active project", projectID, p.Status), nil
	}
	return nil, nil
}

func (b *backend) pathRoleDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name, unlock, resp := b.lockRoleForWrite(d)
	if resp != nil {
		return resp, nil
	}
	defer unlock()
	err := req.Storage.Delete(ctx, roleStoragePrefix+name)
	b.roleCache.invalidate(name)
	return nil, err
}

// lockRoleForWrite checks the role name (a 400 for one storage would refuse)
// and takes the role's write lock; the caller defers unlock.
func (b *backend) lockRoleForWrite(d *framework.FieldData) (name string, unlock func(), resp *logical.Response) {
	name = d.Get("name").(string)
	if resp := roleNameError(name); resp != nil {
		return "", nil, resp
	}
	lock := b.roleLock(name)
	lock.Lock()
	return name, lock.Unlock, nil
}
