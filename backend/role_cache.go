package backend

import (
	"context"
	"strings"
	"sync"

	"github.com/hashicorp/vault/sdk/logical"
)

// roleCache keeps decoded roles with their parsed name templates, so issuing
// a key costs no storage read (a gRPC round trip to Vault for an external
// plugin) and no template parse. Role writes and deletes on this node drop
// their entry; Invalidate drops it when another node wrote the role.
type roleCache struct {
	mu sync.RWMutex
	// gen counts invalidations: a read that started before one must not
	// store what it read from storage, which may be the old role.
	gen   uint64
	roles map[string]*cachedRole
}

type cachedRole struct {
	role *roleEntry
	tmpl *nameTemplate
}

func (c *roleCache) invalidate(name string) {
	c.mu.Lock()
	c.gen++
	delete(c.roles, name)
	c.mu.Unlock()
}

// issueRole returns the role and its parsed template, from the cache or from
// storage. A role whose stored template no longer parses is returned with
// that error (tmplErr) and not cached. A name storage cannot hold ("a..b",
// see roleNameProblem) is no role (nil, nil): getRole never asks storage for
// it, so the creds path answers 400 "unknown role" instead of a storage 500.
func (b *backend) issueRole(ctx context.Context, s logical.Storage, name string) (role *roleEntry, tmpl *nameTemplate, tmplErr, err error) {
	c := &b.roleCache
	c.mu.RLock()
	cr, gen := c.roles[name], c.gen
	c.mu.RUnlock()
	if cr != nil {
		return cr.role, cr.tmpl, nil, nil
	}

	role, err = getRole(ctx, s, name)
	if err != nil || role == nil {
		return nil, nil, nil, err
	}
	tmpl, tmplErr = parseNameTemplate(role.NameTemplate)
	if tmplErr != nil {
		return role, nil, tmplErr, nil
	}
	c.mu.Lock()
	if c.gen == gen {
		if c.roles == nil {
			c.roles = map[string]*cachedRole{}
		}
		c.roles[name] = &cachedRole{role: role, tmpl: tmpl}
	}
	c.mu.Unlock()
	return role, tmpl, nil, nil
}

// invalidateRole is the Invalidate hook's share for role keys.
func (b *backend) invalidateRole(key string) {
	if name, ok := strings.CutPrefix(key, roleStoragePrefix); ok {
		b.roleCache.invalidate(name)
	}
}
