// Service-account API keys: state, scopes, the api_keys create on a service
// account and the project api_keys operations (get, list, update, delete),
// and their wire shapes. Keys authenticate the /v1 inference endpoints
// (inference.go).

package fakeopenai

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// defaultKeyName is the name OpenAI gives a service account's default key,
// and the fake gives a key created without a name (unconfirmed for the
// latter: the spec and SDK leave "name" optional and say nothing more).
const defaultKeyName = "Secret Key"

// Bounds on scopes. UNCONFIRMED: OpenAI publishes neither a list of scope
// names nor limits (ADMIN-API.md); these are the fake's guesses, well above
// what a sane client sends, so a client cannot rely on scopes being unbounded.
const (
	maxScopes   = 100
	maxScopeLen = 256
)

type saKey struct {
	id, name, value string
	project         *project
	account         *account
	seq             uint64
	deleted         bool
	createdAt       int64
	expiresAt       int64 // 0: never expires
	lastUsedAt      int64 // 0: never used
	// scopes restrict the key within its account's permissions; empty
	// means all of them (openai-go v3.96.0 AdminOrganizationProjectAPIKeyUpdateParams.Scopes:
	// "An empty array removes key restrictions (All permissions)").
	scopes []string
}

func (k *saKey) expired(now int64) bool { return k.expiresAt != 0 && now >= k.expiresAt }

// KeyInfo is a service-account key as an operator (or a test) sees it;
// never its value.
type KeyInfo struct {
	ProjectID  string   `json:"project_id"`
	AccountID  string   `json:"account_id"`
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Scopes     []string `json:"scopes"` // empty: all permissions
	CreatedAt  int64    `json:"created_at"`
	ExpiresAt  int64    `json:"expires_at"`   // 0: never expires
	LastUsedAt int64    `json:"last_used_at"` // 0: never used
	Expired    bool     `json:"expired"`
}

func (k *saKey) info(now int64) KeyInfo {
	return KeyInfo{
		ProjectID: k.project.id, AccountID: k.account.id, ID: k.id, Name: k.name,
		Scopes: append([]string{}, k.scopes...), CreatedAt: k.createdAt, ExpiresAt: k.expiresAt,
		LastUsedAt: k.lastUsedAt, Expired: k.expired(now),
	}
}

// Key returns a live (not deleted) key by id, expired or not.
func (s *Server) Key(keyID string) (KeyInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.projOrder {
		if k, ok := p.keys[keyID]; ok {
			return k.info(s.now().Unix()), true
		}
	}
	return KeyInfo{}, false
}

// LiveKeys returns every key not deleted (expired ones included) in every
// project, oldest first.
func (s *Server) LiveKeys() []KeyInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().Unix()
	var keys []*saKey
	for _, p := range s.projOrder {
		for _, k := range p.keys {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].seq < keys[j].seq })
	out := make([]KeyInfo, 0, len(keys))
	for _, k := range keys {
		out = append(out, k.info(now))
	}
	return out
}

// AccountKeyIDs returns the ids of a live account's keys, oldest first (nil
// if there is no such account).
func (s *Server) AccountKeyIDs(projectID, accountID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.projects[projectID]
	if !ok {
		return nil
	}
	a, ok := p.accounts[accountID]
	if !ok {
		return nil
	}
	out := []string{}
	for _, k := range a.keys {
		out = append(out, k.id)
	}
	return out
}

// DeleteKey deletes a key as an operator would in the dashboard, bypassing
// the API (no call counted, no faults). Its account and other keys stay.
func (s *Server) DeleteKey(projectID, keyID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.projects[projectID]
	if !ok {
		return false
	}
	k, ok := p.keys[keyID]
	if !ok {
		return false
	}
	p.deleteKeyLocked(k)
	return true
}

// SetRejectedScopes makes the project refuse keys asking for any of scopes
// (400 naming them, on the api_keys create and the key update), as OpenAI
// refuses a scope it does not know or the project does not allow. Nil
// clears the set. By default every well-formed scope is accepted, since
// OpenAI publishes no list. It reports whether the project exists.
func (s *Server) SetRejectedScopes(projectID string, scopes ...string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.projects[projectID]
	if !ok {
		return false
	}
	p.rejectedScopes = map[string]bool{}
	for _, sc := range scopes {
		p.rejectedScopes[sc] = true
	}
	return true
}

// addKeyLocked creates a key on a; expiresIn 0 means it never expires.
func (s *Server) addKeyLocked(p *project, a *account, name string, scopes []string, expiresIn int64) *saKey {
	now := s.now().Unix()
	s.seq++
	k := &saKey{
		id: "key_" + randHex(12), name: name, value: "sk-svcacct-" + randHex(32),
		project: p, account: a, seq: s.seq, createdAt: now, scopes: scopes,
	}
	if expiresIn > 0 {
		k.expiresAt = now + expiresIn
	}
	a.keys = append(a.keys, k)
	p.keys[k.id] = k
	p.keyByValue[k.value] = k
	p.keyOrder = append(p.keyOrder, k)
	p.keySeq[k.id] = k.seq
	return k
}

// deleteKeyLocked deletes one key; its account and other keys stay.
func (p *project) deleteKeyLocked(k *saKey) {
	a := k.account
	a.keys = slices.DeleteFunc(a.keys, func(o *saKey) bool { return o == k })
	p.dropKeyLocked(k)
}

// dropKeyLocked removes k from the project's indexes (its account's list is
// the caller's business).
func (p *project) dropKeyLocked(k *saKey) {
	if k.deleted {
		return
	}
	k.deleted = true
	delete(p.keys, k.id)
	delete(p.keyByValue, k.value)
	p.deadKeys++
	if p.deadKeys > 64 && p.deadKeys > len(p.keys) {
		live := make([]*saKey, 0, len(p.keys))
		for _, o := range p.keyOrder {
			if !o.deleted {
				live = append(live, o)
			}
		}
		p.keyOrder, p.deadKeys = live, 0
	}
}

func keyOr404(w http.ResponseWriter, p *project, id string) *saKey {
	k, ok := p.keys[id]
	if !ok {
		writeError(w, http.StatusNotFound, "invalid_request_error", nil, nil, fmt.Sprintf("No such API key: '%s'.", id))
		return nil
	}
	return k
}

// scopesField reads "scopes": a JSON array of well-formed scope strings the
// project does not reject. present is false when the field is absent (or
// null, where nullOK). An empty array is present and means all permissions.
func scopesField(w http.ResponseWriter, body map[string]json.RawMessage, p *project, nullOK bool) (scopes []string, present, ok bool) {
	raw, has := body["scopes"]
	if !has || (nullOK && string(raw) == "null") {
		return nil, false, true
	}
	bad := func(msg string) ([]string, bool, bool) {
		writeError(w, http.StatusBadRequest, "invalid_request_error", ptr("scopes"), nil, msg)
		return nil, false, false
	}
	if string(raw) == "null" || json.Unmarshal(raw, &scopes) != nil {
		return bad("'scopes' must be an array of strings.")
	}
	if len(scopes) > maxScopes {
		return bad(fmt.Sprintf("'scopes' may hold at most %d scopes.", maxScopes))
	}
	seen := map[string]bool{}
	var rejected []string
	for _, sc := range scopes {
		// Well-formed: non-empty, bounded, no whitespace or control
		// characters. Anything else can only be a client bug.
		if sc == "" || utf8.RuneCountInString(sc) > maxScopeLen || strings.IndexFunc(sc, func(r rune) bool {
			return unicode.IsSpace(r) || unicode.IsControl(r)
		}) >= 0 {
			return bad(fmt.Sprintf("Invalid scope %q: a scope is a non-empty string of at most %d characters without whitespace.", sc, maxScopeLen))
		}
		// Duplicates: OpenAI's behaviour is unconfirmed; the strict reading
		// refuses them, so a client relying on de-duplication upstream
		// fails here.
		if seen[sc] {
			return bad(fmt.Sprintf("Duplicate scope %q.", sc))
		}
		seen[sc] = true
		if p.rejectedScopes[sc] {
			rejected = append(rejected, sc)
		}
	}
	if len(rejected) > 0 {
		// The exact wording of OpenAI's refusal is unconfirmed.
		return bad("Invalid scopes: " + strings.Join(rejected, ", ") + ".")
	}
	return scopes, true, true
}

// createServiceAccountKey answers POST .../service_accounts/{id}/api_keys:
// body {name?, scopes?, expires_in_seconds?} (spec CreateProjectServiceAccountApiKeyBody,
// plus expires_in_seconds from openai-go v3.96.0).
func (s *Server) createServiceAccountKey(w http.ResponseWriter, r *http.Request, p *project, a *account) {
	body, ok := readBody(w, r, "name", "scopes", "expires_in_seconds")
	if !ok {
		return
	}
	name := defaultKeyName
	if raw, has := body["name"]; has && string(raw) != "null" {
		if name, ok = nameField(w, body); !ok {
			return
		}
	}
	scopes, _, ok := scopesField(w, body, p, true)
	if !ok {
		return
	}
	expiresIn, ok := expiresField(w, body)
	if !ok {
		return
	}
	k := s.addKeyLocked(p, a, name, scopes, expiresIn)
	writeJSON(w, k.createdJSON())
}

// updateProjectKey answers POST /organization/projects/{project_id}/api_keys/{key_id}
// (openai-go v3.96.0 Admin.Organization.Projects.APIKeys.Update; not in the
// spec copy): body {expires_in_seconds?, scopes?}, at least one, neither null;
// expired keys cannot be updated; the answer is the redacted key.
func (s *Server) updateProjectKey(w http.ResponseWriter, r *http.Request, p *project, k *saKey) {
	body, ok := readBody(w, r, "expires_in_seconds", "scopes")
	if !ok {
		return
	}
	for _, f := range []string{"expires_in_seconds", "scopes"} {
		if raw, has := body[f]; has && string(raw) == "null" {
			writeError(w, http.StatusBadRequest, "invalid_request_error", ptr(f), nil, fmt.Sprintf("'%s' cannot be null.", f))
			return
		}
	}
	if len(body) == 0 {
		writeError(w, http.StatusBadRequest, "invalid_request_error", nil, nil, "Provide at least one of 'scopes' or 'expires_in_seconds'.")
		return
	}
	scopes, setScopes, ok := scopesField(w, body, p, false)
	if !ok {
		return
	}
	expiresIn, ok := expiresField(w, body)
	if !ok {
		return
	}
	now := s.now().Unix()
	if k.expired(now) {
		// The SDK: "Expired keys cannot be updated." Status and wording
		// are unconfirmed; 400 is OpenAI's answer to a request it will not
		// perform on an existing object.
		writeError(w, http.StatusBadRequest, "invalid_request_error", nil, nil, fmt.Sprintf("API key '%s' has expired and cannot be updated.", k.id))
		return
	}
	// Both changes are saved together (the SDK), after every check passed.
	if setScopes {
		k.scopes = scopes
	}
	if expiresIn > 0 {
		k.expiresAt = now + expiresIn
	}
	writeJSON(w, k.projectJSON())
}

func (s *Server) listProjectKeys(w http.ResponseWriter, r *http.Request, p *project) {
	limit, ok := parseLimit(w, r)
	if !ok {
		return
	}
	switch v := r.URL.Query().Get("owner_project_access"); v {
	case "", "active", "any":
	case "inactive":
		// Every owner in the fake has access: nothing is inactive.
		writeJSON(w, list([]*saKey{}, false, func(k *saKey) string { return k.id }, func(k *saKey) any { return k.projectJSON() }))
		return
	default:
		writeError(w, http.StatusBadRequest, "invalid_request_error", ptr("owner_project_access"), nil,
			fmt.Sprintf("Invalid value for 'owner_project_access': '%s'. Expected one of active, inactive, any.", v))
		return
	}
	after := r.URL.Query().Get("after")
	start := 0
	if after != "" {
		seq, found := p.keySeq[after]
		if !found {
			badAfter(w, after)
			return
		}
		start = sort.Search(len(p.keyOrder), func(i int) bool { return p.keyOrder[i].seq > seq })
	}
	var page []*saKey
	hasMore := false
	for _, k := range p.keyOrder[start:] {
		if k.deleted {
			continue
		}
		if len(page) == limit {
			hasMore = true
			break
		}
		page = append(page, k)
	}
	writeJSON(w, list(page, hasMore, func(k *saKey) string { return k.id }, func(k *saKey) any { return k.projectJSON() }))
}

// createdJSON is the key as created, value included (spec
// ServiceAccountApiKeyBody plus the SDK's expires_at).
func (k *saKey) createdJSON() serviceAccountKeyJSON {
	return serviceAccountKeyJSON{
		Object: "organization.project.service_account.api_key", Value: k.value, Name: k.name,
		CreatedAt: k.createdAt, ID: k.id, ExpiresAt: optTime(k.expiresAt),
	}
}

// projectKeyJSON is spec ProjectApiKey plus openai-go v3.96.0
// ProjectAPIKey.ExpiresAt. Scopes are not part of it, in the spec or the SDK.
type projectKeyJSON struct {
	Object             string       `json:"object"`
	RedactedValue      string       `json:"redacted_value"`
	Name               string       `json:"name"`
	CreatedAt          int64        `json:"created_at"`
	LastUsedAt         *int64       `json:"last_used_at"`
	ID                 string       `json:"id"`
	OwnerProjectAccess string       `json:"owner_project_access"`
	Owner              keyOwnerJSON `json:"owner"`
	ExpiresAt          *int64       `json:"expires_at"`
}

type keyOwnerJSON struct {
	Type           string         `json:"type"`
	ServiceAccount keyOwnerSAJSON `json:"service_account"`
}

type keyOwnerSAJSON struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	CreatedAt int64  `json:"created_at"`
	Role      string `json:"role"`
}

func (k *saKey) projectJSON() projectKeyJSON {
	a := k.account
	return projectKeyJSON{
		Object: "organization.project.api_key", RedactedValue: redact(k.value), Name: k.name,
		CreatedAt: k.createdAt, LastUsedAt: optTime(k.lastUsedAt), ID: k.id, OwnerProjectAccess: "active",
		Owner: keyOwnerJSON{Type: "service_account", ServiceAccount: keyOwnerSAJSON{
			ID: a.id, Name: a.name, CreatedAt: a.createdAt, Role: a.role,
		}},
		ExpiresAt: optTime(k.expiresAt),
	}
}

func ptrTo[T any](v T) *T { return &v }
