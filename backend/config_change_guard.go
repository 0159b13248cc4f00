package backend

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// Keys issued by this mount can only be revoked through an admin key of the
// organization, at the base_url, they were issued in. Config writes and
// deletes that would cut that link are refused while such keys are live, or
// while WAL entries still need the admin key to settle an interrupted
// operation, unless force=true. The check is on this cluster's records:
// records are local storage, like the leases they mirror.

func addConfigGuardFields(fields map[string]*framework.FieldSchema) {
	fields["force"] = &framework.FieldSchema{
		Query: true, // a delete's is a query parameter
		Type:  framework.TypeBool,
		Description: "Proceed although keys issued by this mount are still live, static roles exist (or WAL rollbacks are pending): " +
			"on delete, removes config anyway; on write, accepts a base_url, organization_id or admin key that cannot " +
			"reach the projects of those keys. Their revocations then fail until config is put back.",
	}
}

func forced(d *framework.FieldData) bool {
	v, ok := d.GetOk("force")
	return ok && v.(bool)
}

// credsPrefix is the lease prefix an operator revokes, from the real mount path.
func credsPrefix(req *logical.Request) string {
	mount := req.MountPoint
	if mount == "" {
		mount = "<mount>/"
	}
	return strings.TrimSuffix(mount, "/") + "/creds/"
}

// liveRecordProjects counts recorded accounts whose key may still work (not
// revoked, not past expiry) and lists their projects, sorted.
func liveRecordProjects(ctx context.Context, s logical.Storage, now time.Time) (int, []string, error) {
	ids, err := listAccountIDs(ctx, s)
	if err != nil {
		return 0, nil, err
	}
	live := 0
	seen := map[string]bool{}
	for _, id := range ids {
		r, err := getAccountRecord(ctx, s, id)
		if err != nil {
			return 0, nil, err
		}
		if r != nil && !r.revoked() && now.Before(r.keyDeadAt()) {
			live++
			seen[r.ProjectID] = true
		}
	}
	projects := make([]string, 0, len(seen))
	for p := range seen {
		projects = append(projects, p)
	}
	sort.Strings(projects)
	return live, projects, nil
}

// staticRoleProjects lists the static roles (which rotate keys with the
// admin key as long as they exist) and their projects, sorted.
func staticRoleProjects(ctx context.Context, s logical.Storage) (roles, projects []string, err error) {
	roles, err = s.List(ctx, staticRoleStoragePrefix)
	if err != nil {
		return nil, nil, err
	}
	seen := map[string]bool{}
	for _, name := range roles {
		r, err := getStaticRole(ctx, s, name)
		if err != nil {
			return nil, nil, err
		}
		if r != nil && !seen[r.ProjectID] {
			seen[r.ProjectID] = true
			projects = append(projects, r.ProjectID)
		}
	}
	sort.Strings(roles)
	sort.Strings(projects)
	return roles, projects, nil
}

// staticRolesRefusal is the refusal of a config change that would leave
// static roles unable to rotate or delete their keys.
func staticRolesRefusal(action string, roles []string, req *logical.Request) *logical.Response {
	return logical.ErrorResponse("refusing to %s: %d static role(s) (%s) rotate keys with the admin key, and only the organization and base_url their keys were made in can delete them; "+
		"delete the static roles first (vault delete %s<name>), or use force=true",
		action, len(roles), listForHumans(roles), strings.TrimSuffix(credsPrefix(req), "creds/")+"static-roles/")
}

// listForHumans shows at most ten items.
func listForHumans(items []string) string {
	if len(items) > 10 {
		return strings.Join(items[:10], ", ") + fmt.Sprintf(" and %d more", len(items)-10)
	}
	return strings.Join(items, ", ")
}

// refuseConfigMove guards a config write before anything is asked of
// OpenAI: base_url and organization_id cannot change while keys are live.
// old is the stored config (nil on first write), cfg the new one.
func refuseConfigMove(ctx context.Context, req *logical.Request, d *framework.FieldData, old, cfg *openaiConfig) (*logical.Response, error) {
	if forced(d) || old == nil {
		return nil, nil
	}
	var moved []string
	if old.BaseURL != cfg.BaseURL {
		moved = append(moved, "base_url")
	}
	if old.OrganizationID != cfg.OrganizationID {
		moved = append(moved, "organization_id")
	}
	if len(moved) == 0 {
		return nil, nil
	}
	live, projects, err := liveRecordProjects(ctx, req.Storage, time.Now())
	if err != nil {
		return nil, err
	}
	if live == 0 {
		roles, _, err := staticRoleProjects(ctx, req.Storage)
		if err != nil || len(roles) == 0 {
			return nil, err
		}
		return staticRolesRefusal("change "+strings.Join(moved, " and "), roles, req), nil
	}
	return logical.ErrorResponse("refusing to change %s: %d key(s) issued by this mount are still live in project(s) %s, and only the organization and base_url they were issued in can revoke them; "+
		"revoke their leases first (vault lease revoke -prefix %s), or write with force=true",
		strings.Join(moved, " and "), live, listForHumans(projects), credsPrefix(req)), nil
}

// refuseUnseeingKey guards a config write once the new key is verified: a
// new admin key must see every project that holds live keys, or their
// revocations would fail. client is built from the new config.
func refuseUnseeingKey(ctx context.Context, req *logical.Request, d *framework.FieldData, old, cfg *openaiConfig, client adminClient) (*logical.Response, error) {
	if forced(d) || (old != nil && old.AdminAPIKey == cfg.AdminAPIKey && old.BaseURL == cfg.BaseURL && old.OrganizationID == cfg.OrganizationID) {
		return nil, nil
	}
	live, projects, err := liveRecordProjects(ctx, req.Storage, time.Now())
	if err != nil {
		return nil, err
	}
	roles, staticProjects, err := staticRoleProjects(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if live == 0 && len(roles) == 0 {
		return nil, nil
	}
	for _, p := range staticProjects {
		if !slices.Contains(projects, p) {
			projects = append(projects, p)
		}
	}
	var unseen []string
	for _, p := range projects {
		_, err := client.GetProject(ctx, p)
		switch {
		case isNotFound(err):
			unseen = append(unseen, p)
		case err != nil:
			return upstreamConfigError("checking that admin_api_key sees the projects of live keys", err)
		}
	}
	if len(unseen) > 0 && live == 0 {
		return logical.ErrorResponse("refusing admin_api_key: it cannot see project(s) %s, where static role(s) %s rotate and delete their keys (wrong organization?); "+
			"delete those static roles first, or write with force=true", listForHumans(unseen), listForHumans(roles)), nil
	}
	if len(unseen) > 0 {
		return logical.ErrorResponse("refusing admin_api_key: it cannot see project(s) %s, where %d live key(s) issued by this mount need it to be revoked (wrong organization?); "+
			"revoke their leases first (vault lease revoke -prefix %s), or write with force=true",
			listForHumans(unseen), live, credsPrefix(req)), nil
	}
	return nil, nil
}

// refuseConfigDelete keeps the admin key while keys it issued may still be
// live, or while WAL entries need it: without it neither revocation nor
// rollback can ever succeed, and what they guard stays at OpenAI.
func refuseConfigDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if forced(d) {
		return nil, nil
	}
	live, projects, err := liveRecordProjects(ctx, req.Storage, time.Now())
	if err != nil {
		return nil, err
	}
	if live > 0 {
		return logical.ErrorResponse("refusing to delete config: %d key(s) issued by this mount are still live in project(s) %s and need the admin key to be revoked; "+
			"revoke their leases first (vault lease revoke -prefix %s), or delete with force=true", live, listForHumans(projects), credsPrefix(req)), nil
	}
	roles, _, err := staticRoleProjects(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if len(roles) > 0 {
		return staticRolesRefusal("delete config", roles, req), nil
	}
	pending, err := pendingWAL(ctx, req.Storage)
	if err != nil || len(pending) == 0 {
		return nil, err
	}
	return logical.ErrorResponse("refusing to delete config: %d interrupted operation(s) still wait for WAL rollback, which needs the admin key to delete what they may have created at OpenAI: %s; "+
		"Vault's rollback settles them within a few minutes (retry the delete then), or delete with force=true and check OpenAI by hand",
		len(pending), listForHumans(pending)), nil
}

// pendingWAL describes each WAL entry for an operator.
func pendingWAL(ctx context.Context, s logical.Storage) ([]string, error) {
	ids, err := framework.ListWAL(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("list WAL entries: %w", err)
	}
	var out []string
	for _, id := range ids {
		entry, err := framework.GetWAL(ctx, s, id)
		if err != nil {
			return nil, fmt.Errorf("read WAL entry: %w", err)
		}
		if entry == nil {
			continue // settled meanwhile
		}
		desc := entry.Kind
		if entry.Kind == walKindServiceAccount {
			if m, ok := entry.Data.(map[string]interface{}); ok {
				desc = fmt.Sprintf("issue of service account %v in project %v", m["name"], m["project_id"])
			}
		} else if entry.Kind == walKindAdminKeyRotation {
			desc = "admin key rotation"
		}
		out = append(out, desc)
	}
	sort.Strings(out)
	return out, nil
}
