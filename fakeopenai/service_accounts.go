// Project service accounts and their keys: state, paging, the list and
// create handlers (delete, a few lines, is in the dispatch in routes.go)
// and the wire shapes.

package fakeopenai

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
)

// Account is a live service account, as seen by an operator.
type Account struct {
	ProjectID string `json:"project_id"`
	ID        string `json:"id"`
	Name      string `json:"name"`
	CreatedAt int64  `json:"created_at"`
	// KeyID and KeyExpiresAt describe the account's oldest live key ("" and
	// 0 for an account without keys, as one created bare); KeyExpiresAt 0
	// also means that key never expires. KeyIDs lists every live key, oldest
	// first (see KeyInfo for one key's scopes and expiry).
	KeyExpiresAt int64    `json:"key_expires_at"`
	KeyID        string   `json:"key_id"`
	KeyIDs       []string `json:"key_ids"`
}

type account struct {
	projectID string
	id, name  string
	role      string
	createdAt int64
	seq       uint64
	deleted   bool
	// keys are the account's keys, oldest first; deleted ones are removed.
	// Empty for an account created with create_service_account_only until
	// a key is added to it (api_keys.go).
	keys []*saKey
}

// LiveAccounts returns every live service account in every project, sorted
// by creation. Accounts whose key has expired are still live: OpenAI deletes
// expired keys, not their accounts.
func (s *Server) LiveAccounts() []Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Account
	var seqs []uint64
	for _, p := range s.projOrder {
		for _, a := range p.order {
			if a.deleted {
				continue
			}
			out = append(out, a.export())
			seqs = append(seqs, a.seq)
		}
	}
	sort.Sort(bySeq{out, seqs})
	if out == nil {
		out = []Account{}
	}
	return out
}

type bySeq struct {
	a []Account
	s []uint64
}

func (b bySeq) Len() int { return len(b.a) }

func (b bySeq) Less(i, j int) bool { return b.s[i] < b.s[j] }

func (b bySeq) Swap(i, j int) {
	b.a[i], b.a[j] = b.a[j], b.a[i]
	b.s[i], b.s[j] = b.s[j], b.s[i]
}

func (a *account) export() Account {
	out := Account{ProjectID: a.projectID, ID: a.id, Name: a.name, CreatedAt: a.createdAt, KeyIDs: []string{}}
	for _, k := range a.keys {
		out.KeyIDs = append(out.KeyIDs, k.id)
	}
	if len(a.keys) > 0 {
		out.KeyID, out.KeyExpiresAt = a.keys[0].id, a.keys[0].expiresAt
	}
	return out
}

// DeleteAccount deletes a service account as an operator would by hand in
// the OpenAI dashboard, bypassing the API (no call counted, no faults).
func (s *Server) DeleteAccount(projectID, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.projects[projectID]
	if !ok {
		return false
	}
	return p.deleteLocked(id)
}

func (p *project) deleteLocked(id string) bool {
	a, ok := p.accounts[id]
	if !ok {
		return false
	}
	delete(p.accounts, id)
	a.deleted = true
	// Deleting the account deletes its keys (ADMIN-API.md).
	for _, k := range a.keys {
		p.dropKeyLocked(k)
	}
	a.keys = nil
	p.dead++
	if p.dead > 64 && p.dead > len(p.accounts) {
		live := make([]*account, 0, len(p.accounts))
		for _, o := range p.order {
			if !o.deleted {
				live = append(live, o)
			}
		}
		p.order, p.dead = live, 0
	}
	return true
}

func accountOr404(w http.ResponseWriter, p *project, id string) *account {
	a, ok := p.accounts[id]
	if !ok {
		writeError(w, http.StatusNotFound, "invalid_request_error", nil, nil, fmt.Sprintf("No such service account: '%s'.", id))
		return nil
	}
	return a
}

// pageAccounts returns up to limit live accounts after the cursor.
func (p *project) pageAccounts(after string, limit int) (out []*account, hasMore, ok bool) {
	start := 0
	if after != "" {
		seq, found := p.seqOf[after]
		if !found {
			return nil, false, false
		}
		start = sort.Search(len(p.order), func(i int) bool { return p.order[i].seq > seq })
	}
	for _, a := range p.order[start:] {
		if a.deleted {
			continue
		}
		if len(out) == limit {
			return out, true, true
		}
		out = append(out, a)
	}
	return out, false, true
}

func (s *Server) listServiceAccounts(w http.ResponseWriter, r *http.Request, p *project) {
	limit, ok := parseLimit(w, r)
	if !ok {
		return
	}
	after := r.URL.Query().Get("after")
	accts, hasMore, ok := p.pageAccounts(after, limit)
	if !ok {
		badAfter(w, after)
		return
	}
	writeJSON(w, list(accts, hasMore, func(a *account) string { return a.id }, func(a *account) any { return a.json() }))
}

func (s *Server) createServiceAccount(w http.ResponseWriter, r *http.Request, p *project) {
	name, expiresIn, body, ok := createFields(w, r, "create_service_account_only")
	if !ok {
		return
	}
	var accountOnly bool
	if raw, ok := body["create_service_account_only"]; ok && string(raw) != "null" {
		if json.Unmarshal(raw, &accountOnly) != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", ptr("create_service_account_only"), nil, "'create_service_account_only' must be a boolean.")
			return
		}
	}
	// openai-go v3.96.0 on expires_in_seconds: "A non-null value cannot be
	// used when create_service_account_only is true." (the exact error text
	// is unconfirmed). A bare account has no key to expire; its keys get
	// their expiry from the api_keys create (api_keys.go).
	if accountOnly && expiresIn > 0 {
		writeError(w, http.StatusBadRequest, "invalid_request_error", ptr("expires_in_seconds"), nil,
			"'expires_in_seconds' cannot be used when 'create_service_account_only' is true.")
		return
	}
	now := s.now().Unix()
	s.seq++
	a := &account{projectID: p.id, id: "svc_acct_" + randHex(12), name: name, role: "member", createdAt: now, seq: s.seq}
	if accountOnly {
		// ADMIN-API.md and openai-go v3.96.0: no default role and no key
		// (role "none", api_key null).
		a.role = "none"
	}
	p.accounts[a.id] = a
	p.order = append(p.order, a)
	p.seqOf[a.id] = a.seq
	resp := serviceAccountCreateJSON{serviceAccountJSON: a.json()}
	if !accountOnly {
		// The default key has no scope restrictions: all of the account's
		// permissions.
		k := s.addKeyLocked(p, a, defaultKeyName, nil, expiresIn)
		resp.APIKey = ptrTo(k.createdJSON())
	}
	writeJSON(w, resp)
}

type serviceAccountJSON struct {
	Object    string `json:"object"`
	ID        string `json:"id"`
	Name      string `json:"name"`
	Role      string `json:"role"`
	CreatedAt int64  `json:"created_at"`
}

type serviceAccountCreateJSON struct {
	serviceAccountJSON
	APIKey *serviceAccountKeyJSON `json:"api_key"`
}

type serviceAccountKeyJSON struct {
	Object    string `json:"object"`
	Value     string `json:"value"`
	Name      string `json:"name"`
	CreatedAt int64  `json:"created_at"`
	ID        string `json:"id"`
	// Not in the published spec; the SDK (newer) reads it.
	ExpiresAt *int64 `json:"expires_at"`
}

func (a *account) json() serviceAccountJSON {
	return serviceAccountJSON{Object: "organization.project.service_account", ID: a.id, Name: a.name, Role: a.role, CreatedAt: a.createdAt}
}
