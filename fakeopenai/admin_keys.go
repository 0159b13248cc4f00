// Admin API keys: state, expiry, the list and create handlers (get and
// delete, a few lines each, are in the dispatch in routes.go) and the
// wire shapes.

package fakeopenai

import (
	"fmt"
	"net/http"
	"slices"
)

// AdminKeyInfo describes an admin key without its value.
type AdminKeyInfo struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	RedactedValue string `json:"redacted_value"`
	CreatedAt     int64  `json:"created_at"`
	ExpiresAt     int64  `json:"expires_at"` // 0: never expires
}

type adminKey struct {
	id, name, value string
	createdAt       int64
	expiresAt       int64
	lastUsedAt      int64
	seq             uint64
}

// AddAdminKey registers another admin key value (never expiring) and returns its id.
func (s *Server) AddAdminKey(value string) (id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addAdminKeyLocked("Admin key", value, 0).id
}

func (s *Server) addAdminKeyLocked(name, value string, expiresAt int64) *adminKey {
	s.seq++
	k := &adminKey{id: "key_" + randHex(12), name: name, value: value, createdAt: s.now().Unix(), expiresAt: expiresAt, seq: s.seq}
	if old, ok := s.adminByVal[value]; ok {
		s.deleteAdminKeyLocked(old.id)
	}
	s.adminKeys[k.id] = k
	s.adminByVal[value] = k
	s.adminOrder = append(s.adminOrder, k)
	return k
}

func (s *Server) deleteAdminKeyLocked(id string) bool {
	k, ok := s.adminKeys[id]
	if !ok {
		return false
	}
	delete(s.adminKeys, id)
	delete(s.adminByVal, k.value)
	for i, o := range s.adminOrder {
		if o == k {
			s.adminOrder = append(s.adminOrder[:i:i], s.adminOrder[i+1:]...)
			break
		}
	}
	return true
}

// expireAdminKeysLocked drops admin keys past their expiry: OpenAI deletes
// expired keys, so they stop authenticating and stop being listed.
func (s *Server) expireAdminKeysLocked() {
	now := s.now().Unix()
	var expired []string
	for _, k := range s.adminOrder {
		if k.expiresAt != 0 && k.expiresAt <= now {
			expired = append(expired, k.id)
		}
	}
	for _, id := range expired {
		s.deleteAdminKeyLocked(id)
	}
}

// LiveAdminKeys returns the admin keys that still authenticate, oldest first.
func (s *Server) LiveAdminKeys() []AdminKeyInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireAdminKeysLocked()
	out := make([]AdminKeyInfo, 0, len(s.adminOrder))
	for _, k := range s.adminOrder {
		out = append(out, AdminKeyInfo{ID: k.id, Name: k.name, RedactedValue: redact(k.value), CreatedAt: k.createdAt, ExpiresAt: k.expiresAt})
	}
	return out
}

func (s *Server) adminKeyOr404(w http.ResponseWriter, id string) *adminKey {
	k, ok := s.adminKeys[id]
	if !ok {
		writeError(w, http.StatusNotFound, "invalid_request_error", nil, nil, fmt.Sprintf("No such admin API key: '%s'.", id))
		return nil
	}
	return k
}

func (s *Server) listAdminKeys(w http.ResponseWriter, r *http.Request) {
	limit, ok := parseLimit(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	order := q.Get("order")
	if order != "" && order != "asc" && order != "desc" {
		writeError(w, http.StatusBadRequest, "invalid_request_error", ptr("order"), nil, "order must be 'asc' or 'desc'.")
		return
	}
	keys := s.adminOrder
	if order == "desc" {
		keys = slices.Clone(keys)
		slices.Reverse(keys)
	}
	if after := q.Get("after"); after != "" {
		k, ok := s.adminKeys[after]
		if !ok {
			badAfter(w, after)
			return
		}
		for i, o := range keys {
			if o == k {
				keys = keys[i+1:]
				break
			}
		}
	}
	hasMore := len(keys) > limit
	if hasMore {
		keys = keys[:limit]
	}
	writeJSON(w, list(keys, hasMore, func(k *adminKey) string { return k.id }, func(k *adminKey) any { return k.json(false) }))
}

func (s *Server) createAdminKey(w http.ResponseWriter, r *http.Request) {
	name, expiresIn, _, ok := createFields(w, r)
	if !ok {
		return
	}
	var expiresAt int64
	if expiresIn > 0 {
		expiresAt = s.now().Unix() + expiresIn
	}
	k := s.addAdminKeyLocked(name, "sk-admin-"+randHex(24), expiresAt)
	writeJSON(w, k.json(true))
}

type adminKeyJSON struct {
	Object        string        `json:"object"`
	ID            string        `json:"id"`
	Name          string        `json:"name"`
	RedactedValue string        `json:"redacted_value"`
	CreatedAt     int64         `json:"created_at"`
	ExpiresAt     *int64        `json:"expires_at"`
	LastUsedAt    *int64        `json:"last_used_at"`
	Owner         adminKeyOwner `json:"owner"`
	Value         string        `json:"value,omitempty"`
}

type adminKeyOwner struct {
	Type      string `json:"type"`
	Object    string `json:"object"`
	ID        string `json:"id"`
	Name      string `json:"name"`
	CreatedAt int64  `json:"created_at"`
	Role      string `json:"role"`
}

// The fake's admin keys all belong to one organization owner.
var fakeOwner = adminKeyOwner{Type: "user", Object: "organization.user", ID: "user_fake_owner", Name: "Fake Owner", CreatedAt: 1700000000, Role: "owner"}

func (k *adminKey) json(withValue bool) adminKeyJSON {
	out := adminKeyJSON{
		Object: "organization.admin_api_key", ID: k.id, Name: k.name, RedactedValue: redact(k.value),
		CreatedAt: k.createdAt, ExpiresAt: optTime(k.expiresAt), LastUsedAt: optTime(k.lastUsedAt), Owner: fakeOwner,
	}
	if withValue {
		out.Value = k.value
	}
	return out
}

// redact keeps the first 8 and last 3 characters, as OpenAI's "sk-admin...xyz".
func redact(v string) string {
	if len(v) <= 11 {
		return "..."
	}
	return v[:8] + "..." + v[len(v)-3:]
}
