package backend

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/automatedrotationutil"
	"github.com/hashicorp/vault/sdk/logical"
)

// The static-roles/ paths: define, read, list and delete static roles, and
// rotate one now. The rotation itself is static_rotation.go.

func pathStaticRoles(b *backend) []*framework.Path {
	fields := map[string]*framework.FieldSchema{
		"name": {
			Type:        framework.TypeLowerCaseString,
			Description: "Name of the static role: letters, digits, '-', '_' and '.', at most 128 characters, no \"..\"; stored lowercased.",
			Required:    true,
		},
		"project_id": {
			Type:         framework.TypeString,
			Description:  "OpenAI project (proj_...) of the role's service account. Required on create; must exist and be active. Cannot change.",
			DisplayAttrs: &framework.DisplayAttributes{Name: "Project ID"},
		},
		"service_account_id": {
			Type: framework.TypeString,
			Description: "An existing service account (svc_acct_...) in project_id whose key the engine rotates; checked at write. " +
				"Keys on it that the engine did not make are never touched. Omit it and the engine creates a bare account " +
				"named by name_template (default vault-static-<role>) and a unique token, and deletes it with the role. Cannot change.",
			DisplayAttrs: &framework.DisplayAttributes{Name: "Service account ID"},
		},
		"name_template": {
			Type: framework.TypeString,
			Description: "Without service_account_id: the name of the account the engine creates, as a dynamic role's " +
				"name_template (variables " + nameTemplateVariables + ", .DisplayName being the token that creates the role; " +
				"functions include random, truncate, unix_time, lowercase), followed by \"-\" and a unique token. " +
				"Only at create; not with service_account_id. Default: " + defaultStaticNameTemplate,
			DisplayAttrs: &framework.DisplayAttributes{Name: "Name template"},
		},
		"overlap": {
			Type: framework.TypeDurationSecond,
			Description: "How long the previous key keeps working after a rotation, so apps that re-read on their own schedule " +
				"never hold a dead key. Default 1h; must be shorter than the time between rotations. 0 deletes the old key at once.",
			Default:      int(defaultStaticOverlap.Seconds()),
			DisplayAttrs: &framework.DisplayAttributes{Name: "Overlap"},
		},
		"scopes": {
			Type: framework.TypeCommaStringSlice,
			Description: "OpenAI API-key scopes every key of this role carries (as for dynamic roles); empty (default) gives the key " +
				"all permissions of its account. Checked at write by making and deleting one probe key with them.",
			DisplayAttrs: &framework.DisplayAttributes{Name: "Scopes"},
		},
	}
	automatedrotationutil.AddAutomatedRotationFields(fields)
	describeStaticRotationFields(fields)

	return []*framework.Path{
		{
			Pattern:      "static-roles/?$",
			DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix, OperationSuffix: "static-roles"},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{
					Callback:     b.pathStaticRoleList,
					Responses:    staticRoleListResponses(),
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "list"},
				},
			},
			HelpSynopsis:    "List the static roles.",
			HelpDescription: "Lists the names of all static roles on this mount.",
		},
		{
			Pattern:        "static-roles/" + framework.GenericNameRegex("name"),
			DisplayAttrs:   &framework.DisplayAttributes{OperationPrefix: operationPrefix, OperationSuffix: "static-role"},
			Fields:         fields,
			ExistenceCheck: b.staticRoleExistenceCheck,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.CreateOperation: &framework.PathOperation{
					Callback:     b.pathStaticRoleWrite,
					Responses:    staticRoleWriteResponses(),
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "write"},
				},
				logical.UpdateOperation: &framework.PathOperation{
					Callback:     b.pathStaticRoleWrite,
					Responses:    staticRoleWriteResponses(),
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "write"},
				},
				logical.ReadOperation: &framework.PathOperation{
					Callback:     b.pathStaticRoleRead,
					Responses:    staticRoleReadResponses(),
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read"},
				},
				logical.DeleteOperation: &framework.PathOperation{
					Callback:     b.pathStaticRoleDelete,
					Responses:    staticRoleDeleteResponses(),
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "delete"},
				},
			},
			HelpSynopsis:    "Manage static roles: one long-lived service account whose key the engine rotates on a schedule.",
			HelpDescription: pathStaticRoleHelp,
		},
		{
			Pattern:      "static-roles/" + framework.GenericNameRegex("name") + "/rotate$",
			DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix, OperationSuffix: "static-role"},
			Fields: map[string]*framework.FieldSchema{
				"name": {Type: framework.TypeLowerCaseString, Description: "Name of the static role.", Required: true},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: &framework.PathOperation{
					Callback:     b.pathStaticRoleRotate,
					Responses:    staticRoleRotateResponses(),
					DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "rotate"},
				},
			},
			HelpSynopsis: "Rotate a static role's key now.",
			HelpDescription: "Creates a new key on the role's account and makes it current; the previous current key keeps " +
				"working for overlap. A previous key still inside its overlap is deleted first, so at most two of the " +
				"engine's keys are ever live on the account. The schedule restarts from this rotation.",
		},
	}
}

const pathStaticRoleHelp = `
A static role rotates the key of one long-lived OpenAI service account, for
workloads that cannot take a new identity per lease. Read its key at
static-creds/<name>; it is not leased.

Every rotation creates a key on the account (expiring at OpenAI at the next
rotation plus overlap plus 24h of grace), stores it, and deletes the previous
key once overlap has passed. Give rotation_period (at least 1m) or
rotation_schedule (cron), not both. On Vault Enterprise the rotation manager
drives the schedule; on Community Edition the engine's one-minute periodic
function does, on the active node.

Deleting the role deletes the keys the engine made (and the account, if the
engine created it); it is refused while a rotation is in flight. Reading the
role never shows a key.
`

func describeStaticRotationFields(fields map[string]*framework.FieldSchema) {
	desc := map[string]string{
		"rotation_period": "Rotate the key this often (seconds or a duration such as 720h): at least 1m, and at most one year " +
			"minus overlap and 24h of grace (OpenAI's longest key expiry). Exactly one of rotation_period and rotation_schedule.",
		"rotation_schedule":          "Cron schedule on which to rotate the key, e.g. \"0 3 * * SAT\"; runs at least 1m apart. Exactly one of rotation_period and rotation_schedule.",
		"rotation_window":            "With rotation_schedule: how long after the scheduled time a rotation may still start (Vault Enterprise).",
		"disable_automated_rotation": "Not accepted for static roles: their keys expire at OpenAI, so they always rotate.",
		"rotation_policy":            "Vault Enterprise rotation manager policy for retrying failed scheduled rotations.",
	}
	for name, d := range desc {
		if f, ok := fields[name]; ok {
			f.Description = d
			f.DisplayAttrs = &framework.DisplayAttributes{Name: displayName(name)}
		}
	}
}

func displayName(field string) string {
	return map[string]string{
		"rotation_period": "Rotation period", "rotation_schedule": "Rotation schedule", "rotation_window": "Rotation window",
		"disable_automated_rotation": "Disable automated rotation", "rotation_policy": "Rotation policy",
	}[field]
}

func (b *backend) staticRoleExistenceCheck(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	name := d.Get("name").(string)
	if roleNameProblem(name) != "" {
		return false, nil
	}
	r, err := getStaticRole(ctx, req.Storage, name)
	return r != nil, err
}

func (b *backend) pathStaticRoleList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	names, err := req.Storage.List(ctx, staticRoleStoragePrefix)
	if err != nil {
		return nil, err
	}
	return logical.ListResponse(names), nil
}

func (b *backend) pathStaticRoleRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if resp := roleNameError(name); resp != nil {
		return resp, nil
	}
	r, err := getStaticRole(ctx, req.Storage, name)
	if err != nil || r == nil {
		return nil, err
	}
	data := map[string]interface{}{
		"project_id":                r.ProjectID,
		"service_account_id":        r.ServiceAccountID,
		"service_account_name":      r.ServiceAccountName,
		"account_created_by_engine": r.AccountCreatedByEngine,
		"name_template":             r.NameTemplate,
		"overlap":                   int64(r.Overlap.Seconds()),
		"scopes":                    append([]string{}, r.Scopes...),
		"rotation_managed_by_vault": r.RotationManagedByVault,
		"api_key_id":                staticKeyID(r.Current),
		"last_vault_rotation":       rfc3339OrEmpty(r.LastRotated, r.Current != nil),
		"next_vault_rotation":       formatTime(r.nextRotation()),
	}
	r.Rotation.PopulateAutomatedRotationData(data)
	data["rotation_period"] = int64(r.Rotation.RotationPeriod.Seconds())
	data["rotation_window"] = int64(r.Rotation.RotationWindow.Seconds())
	addPreviousKey(data, r)
	return &logical.Response{Data: data}, nil
}

func addPreviousKey(data map[string]interface{}, r *staticRole) {
	data["previous_api_key_id"] = staticKeyID(r.Previous)
	data["previous_api_key_ends_at"] = ""
	if r.Previous != nil {
		data["previous_api_key_ends_at"] = r.Previous.EndsAt.UTC().Format(time.RFC3339)
	}
}

func rfc3339OrEmpty(t time.Time, ok bool) string {
	if !ok {
		return ""
	}
	return formatTime(t)
}

func (b *backend) pathStaticRoleWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if resp := roleNameError(name); resp != nil {
		return resp, nil
	}
	unlock := b.lockStaticRole(name)
	defer unlock()

	existing, err := getStaticRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	create := existing == nil
	role := existing
	if create {
		role = &staticRole{Overlap: defaultStaticOverlap, CreatedAt: time.Now()}
	}

	// Local checks first: nothing is asked of OpenAI for input that is
	// wrong on its face.
	if v, ok := d.GetOk("project_id"); ok {
		p := v.(string)
		if !create && p != role.ProjectID {
			return logical.ErrorResponse("project_id: a static role's project cannot change; delete the role and create it again"), nil
		}
		role.ProjectID = p
	}
	if role.ProjectID == "" {
		return logical.ErrorResponse("project_id: required"), nil
	}
	if !openaiIDPattern.MatchString(role.ProjectID) {
		return logical.ErrorResponse("project_id %q is not an OpenAI project id (proj_...)", role.ProjectID), nil
	}
	givenAccount := ""
	if v, ok := d.GetOk("service_account_id"); ok {
		givenAccount = v.(string)
		if !create && givenAccount != role.ServiceAccountID {
			return logical.ErrorResponse("service_account_id: a static role's account cannot change; delete the role and create it again"), nil
		}
		if !openaiIDPattern.MatchString(givenAccount) {
			return logical.ErrorResponse("service_account_id %q is not an OpenAI service account id (svc_acct_...)", givenAccount), nil
		}
	}
	accountName := ""
	if v, ok := d.GetOk("name_template"); ok {
		switch {
		case !create:
			return logical.ErrorResponse("name_template: names the account the engine creates, so it is taken only when the role is created"), nil
		case givenAccount != "":
			return logical.ErrorResponse("name_template: names the account the engine creates; not with service_account_id (the account exists)"), nil
		}
		role.NameTemplate = v.(string)
	}
	if create && givenAccount == "" {
		if role.NameTemplate == "" {
			role.NameTemplate = defaultStaticNameTemplate
		}
		tmpl, err := parseNameTemplate(role.NameTemplate)
		if err == nil {
			accountName, err = tmpl.render(nameTemplateData{RoleName: name, DisplayName: req.DisplayName, MountAccessor: req.MountAccessor})
		}
		if err != nil {
			return logical.ErrorResponse("name_template: %s", err), nil
		}
	}
	if v, ok := d.GetOk("overlap"); ok {
		role.Overlap = time.Duration(v.(int)) * time.Second
	}
	rotationChanged := create
	for _, f := range []string{"rotation_period", "rotation_schedule", "rotation_window", "disable_automated_rotation", "rotation_policy"} {
		if _, ok := d.GetOk(f); ok {
			rotationChanged = true
		}
	}
	if err := role.Rotation.ParseAutomatedRotationFields(d); err != nil {
		field := "rotation_schedule"
		if errors.Is(err, automatedrotationutil.ErrRotationMutuallyExclusiveFields) {
			field = "rotation_period"
		}
		return logical.ErrorResponse("%s: %s", field, err), nil
	}
	if resp := role.validateStaticTiming(time.Now()); resp != nil {
		return resp, nil
	}
	scopesChanged := false
	if v, ok := d.GetOk("scopes"); ok {
		scopes, resp := normalizeScopes("scopes", v.([]string))
		if resp != nil {
			return resp, nil
		}
		scopesChanged = !slices.Equal(scopes, role.Scopes)
		role.Scopes = scopes
	}

	// Then OpenAI: the project, the account, the scopes.
	if create {
		if resp, err := b.checkProject(ctx, req.Storage, role.ProjectID); resp != nil || err != nil {
			return resp, err
		}
		if givenAccount != "" {
			if resp, err := b.checkStaticAccount(ctx, req.Storage, role.ProjectID, givenAccount); resp != nil || err != nil {
				return resp, err
			}
			role.ServiceAccountID = givenAccount
		}
	}
	if scopesChanged && len(role.Scopes) > 0 {
		if resp, err := b.probeScopes(ctx, req.Storage, role.ProjectID, name, role.Scopes); resp != nil || err != nil {
			return resp, err
		}
	}
	if create && givenAccount == "" {
		if err := b.createStaticAccount(ctx, req.Storage, name, accountName, role); err != nil {
			return nil, err
		}
	} else if err := putStaticRole(ctx, req.Storage, name, role); err != nil {
		return nil, err
	}

	resp := &logical.Response{}
	if rotationChanged {
		managed, err := b.registerStaticRotation(ctx, req.MountPoint, name, role)
		if err != nil {
			resp.AddWarning(fmt.Sprintf("Vault's rotation manager refused the schedule; the engine's own periodic function rotates instead: %s", err))
		}
		if managed != role.RotationManagedByVault {
			role.RotationManagedByVault = managed
			if err := putStaticRole(ctx, req.Storage, name, role); err != nil {
				return nil, err
			}
		}
	}
	if role.Current == nil {
		if _, err := b.rotateStaticRoleLocked(ctx, req.Storage, name); err != nil {
			resp.AddWarning(fmt.Sprintf("the role is stored but its first key could not be made; the engine retries every minute, or write static-roles/%s/rotate: %s", name, err))
		}
	}
	if len(resp.Warnings) == 0 {
		return nil, nil
	}
	return resp, nil
}

// checkStaticAccount answers 400 naming service_account_id unless the
// account exists in projectID. The Admin API has no lookup of an account by
// id alone, so the project's accounts are listed.
func (b *backend) checkStaticAccount(ctx context.Context, s logical.Storage, projectID, accountID string) (*logical.Response, error) {
	client, err := b.getClient(ctx, s)
	if err != nil {
		return nil, err
	}
	found := false
	err = client.ListServiceAccounts(ctx, projectID, func(sa serviceAccount) bool {
		found = sa.ID == accountID
		return !found
	})
	if err != nil {
		if isClientError(err) {
			return logical.ErrorResponse("service_account_id %q could not be checked in project %q: %s", accountID, projectID, err), nil
		}
		return nil, fmt.Errorf("check service_account_id %q: %w", accountID, err)
	}
	if !found {
		return logical.ErrorResponse("service_account_id %q was not found in project %q (an account of another project, or a typo)", accountID, projectID), nil
	}
	return nil, nil
}

// createStaticAccount creates the role's own bare account under a WAL
// entry and stores the role with it; the stored role is the commit.
func (b *backend) createStaticAccount(ctx context.Context, s logical.Storage, name, base string, role *staticRole) error {
	client, err := b.getClient(ctx, s)
	if err != nil {
		return err
	}
	acctName, token, err := uniqueName(base)
	if err != nil {
		return err
	}
	walID, err := framework.PutWAL(ctx, s, walKindStaticAccount, &walStaticAccount{
		Role: name, ProjectID: role.ProjectID, Name: acctName, Token: token, CreatedAt: time.Now().Unix(),
	})
	if err != nil {
		return fmt.Errorf("write WAL entry: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, b.createTimeLimit())
	sa, err := client.CreateBareServiceAccount(cctx, role.ProjectID, acctName)
	cancel()
	if err != nil {
		if !mayHaveCreated(err) {
			b.deleteWALQuietly(ctx, s, walID)
		}
		return fmt.Errorf("create the static role's service account: %w", err)
	}
	if sa.UnexpectedKeyID != "" {
		// A bare account came with a key the engine did not ask for and
		// would not know to rotate: do not build on it.
		if b.deleteUnusedAccount(ctx, client, role.ProjectID, sa.ID) && !sa.EarlierAttemptMayHaveCreated {
			b.deleteWALQuietly(ctx, s, walID)
		}
		return fmt.Errorf("OpenAI created the static role's account with a key (%s) although none was asked for", sa.UnexpectedKeyID)
	}
	crashpoint(b.Logger(), "static.after_account_create")
	role.ServiceAccountID, role.ServiceAccountName, role.AccountCreatedByEngine = sa.ID, sa.Name, true
	if err := putStaticRole(ctx, s, name, role); err != nil {
		if b.deleteUnusedAccount(ctx, client, role.ProjectID, sa.ID) && !sa.EarlierAttemptMayHaveCreated {
			b.deleteWALQuietly(ctx, s, walID)
		}
		return err
	}
	if !sa.EarlierAttemptMayHaveCreated {
		b.deleteWALQuietly(ctx, s, walID)
	}
	// Else the entry stays: its rollback deletes the twin and keeps the
	// stored account.
	return nil
}

func (b *backend) pathStaticRoleRotate(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if resp := roleNameError(name); resp != nil {
		return resp, nil
	}
	r, err := b.rotateStaticRole(ctx, req.Storage, name)
	if errors.Is(err, errStaticRoleNotFound) {
		return logical.ErrorResponse("static role %q not found", name), nil
	}
	if err != nil {
		return nil, err
	}
	data := map[string]interface{}{
		"api_key_id":          r.Current.ID,
		"last_vault_rotation": rfc3339OrEmpty(r.LastRotated, true),
	}
	addPreviousKey(data, r)
	return &logical.Response{Data: data}, nil
}

func (b *backend) pathStaticRoleDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if resp := roleNameError(name); resp != nil {
		return resp, nil
	}
	unlock := b.lockStaticRole(name)
	defer unlock()
	role, err := getStaticRole(ctx, req.Storage, name)
	if err != nil || role == nil {
		return nil, err
	}
	// A rotation whose WAL entry is unsettled may have made a key the
	// role does not know yet; its rollback needs the role to tell which key
	// to keep. Refuse until it settles.
	if n, err := staticRotationsInFlight(ctx, req.Storage, name); err != nil {
		return nil, err
	} else if n > 0 {
		return logical.ErrorResponse(
			"static role %q has a rotation in flight or awaiting rollback; retry once it settles (rollback runs within the WAL rollback age)", name), nil
	}
	client, err := b.getClient(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if role.AccountCreatedByEngine {
		// The account is the engine's: deleting it deletes every key on it.
		if err := client.DeleteServiceAccount(ctx, role.ProjectID, role.ServiceAccountID); err != nil && !isNotFound(err) {
			return nil, fmt.Errorf("delete the static role's service account %s: %w", role.ServiceAccountID, err)
		}
	} else {
		// The account is the operator's: only the engine's keys go.
		for _, k := range []*staticKey{role.Current, role.Previous} {
			if k == nil {
				continue
			}
			if err := client.DeleteAPIKey(ctx, role.ProjectID, k.ID); err != nil && !isNotFound(err) {
				return nil, fmt.Errorf("delete the static role's key %s: %w", k.ID, err)
			}
		}
	}
	for _, k := range []*staticKey{role.Current, role.Previous} {
		if k != nil {
			b.endStaticKey(ctx, req.Storage, k.ID, endedByRoleDelete)
		}
	}
	if role.RotationManagedByVault {
		if err := b.deregisterStaticRotation(ctx, req.MountPoint, name); err != nil {
			return nil, err
		}
	}
	return nil, req.Storage.Delete(ctx, staticRoleStoragePrefix+name)
}
