// Package fakeopenai is an in-memory, stateful stand-in for the part of the
// OpenAI Admin API that the secrets engine uses (projects, project service
// accounts and their keys, admin API keys), with fault injection so tests can
// reproduce rate limiting, outages and lost responses deterministically.
//
// The wire shapes follow OpenAI's published OpenAPI description (the relevant
// part is embedded from openapi/); where that description and the official Go
// SDK disagree, the SDK wins. Unless Options.SkipContract is set, every
// exchange is checked against that contract as it happens (contract.go,
// violations.go), so any client tested against the fake is checked too.
package fakeopenai

import (
	"crypto/rand"
	"encoding/hex"
	"log"
	"net/http"
	"sort"
	"sync"
	"time"
)

// Seeded projects.
const (
	ProjectActive   = "proj_fake_active"
	ProjectArchived = "proj_fake_archived"
)

// Options for New. The zero value is usable.
type Options struct {
	// AdminKey is the value of the seeded admin key; "" generates a random
	// "sk-admin-..." value (read it back with Server.AdminKey).
	AdminKey string
	// Logger receives one line per request and per injected fault. Key values
	// are never logged.
	Logger *log.Logger
	// Now overrides the clock, so tests can move past key expiry without
	// sleeping. Nil means time.Now.
	Now func() time.Time
	// OrganizationID is the fake's organization: a request whose
	// OpenAI-Organization header names another one is refused, as OpenAI
	// refuses a header that does not match the key's organization. ""
	// means the constant OrganizationID.
	OrganizationID string
	// SkipContract turns off the contract check of every exchange
	// (contract.go). Only benchmarks should set it: the check costs CPU on
	// the machine being measured. Everywhere else it is on.
	SkipContract bool
	// OnViolation, if set, is called with each contract violation (key
	// values masked), besides the record Violations returns.
	OnViolation func(string)
}

// OrganizationID is the fake's organization unless Options say otherwise.
const OrganizationID = "org-fake"

// Account is a live service account, as seen by an operator.
type Account struct {
	ProjectID    string `json:"project_id"`
	ID           string `json:"id"`
	Name         string `json:"name"`
	CreatedAt    int64  `json:"created_at"`
	KeyExpiresAt int64  `json:"key_expires_at"` // 0: the key never expires
	KeyID        string `json:"key_id"`
}

// AdminKeyInfo describes an admin key without its value.
type AdminKeyInfo struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	RedactedValue string `json:"redacted_value"`
	CreatedAt     int64  `json:"created_at"`
	ExpiresAt     int64  `json:"expires_at"` // 0: never expires
}

// Op names an Admin API operation, for call counting and fault targeting.
type Op string

// Operations served by the fake.
const (
	OpGetProject           Op = "get_project"
	OpCreateServiceAccount Op = "create_service_account"
	OpListServiceAccounts  Op = "list_service_accounts"
	OpDeleteServiceAccount Op = "delete_service_account"
	OpListAdminKeys        Op = "list_admin_keys"
	OpCreateAdminKey       Op = "create_admin_key"
	OpGetAdminKey          Op = "get_admin_key"
	OpDeleteAdminKey       Op = "delete_admin_key"
)

// Server is the fake. It implements http.Handler: the OpenAI API is served
// under /v1 and the unauthenticated control endpoints under /_fake/.
type Server struct {
	logger *log.Logger
	now    func() time.Time

	mu          sync.Mutex
	seq         uint64
	projects    map[string]*project
	projOrder   []*project
	adminKeys   map[string]*adminKey // by id
	adminByVal  map[string]*adminKey // by value
	adminOrder  []*adminKey          // creation order, deleted ones removed
	seededAdmin *adminKey
	calls       map[Op]int

	org         string
	contract    *contract // nil: SkipContract
	onViolation func(string)

	vmu        sync.Mutex
	violations []string
	seen       map[string]bool // "operationId status" of every checked answer

	fmu         sync.Mutex
	faults      Faults
	ruleRemain  []int // remaining Count per rule, parallel to faults.Rules
	faultCounts map[FaultKind]int
}

type project struct {
	id, name, status string
	createdAt        int64
	archivedAt       int64
	seq              uint64

	accounts map[string]*account // live accounts by id
	// order holds accounts in creation order; deleted ones stay as
	// tombstones until compaction so paging stays O(page).
	order []*account
	dead  int
	// seqOf remembers every id ever created here, so a cursor naming an
	// account deleted in the meantime still pages correctly.
	seqOf map[string]uint64
}

type account struct {
	projectID    string
	id, name     string
	role         string
	createdAt    int64
	seq          uint64
	deleted      bool
	key          *saKey // nil: created with create_service_account_only
	keyExpiresAt int64
}

type saKey struct {
	id, name, value string
	createdAt       int64
	expiresAt       int64
}

type adminKey struct {
	id, name, value string
	createdAt       int64
	expiresAt       int64
	lastUsedAt      int64
	seq             uint64
}

// New returns a fake with one active and one archived project and one admin key.
func New(opts Options) *Server {
	s := &Server{
		logger:      opts.Logger,
		now:         opts.Now,
		projects:    map[string]*project{},
		adminKeys:   map[string]*adminKey{},
		adminByVal:  map[string]*adminKey{},
		calls:       map[Op]int{},
		faultCounts: map[FaultKind]int{},
		org:         opts.OrganizationID,
		onViolation: opts.OnViolation,
		seen:        map[string]bool{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.org == "" {
		s.org = OrganizationID
	}
	if !opts.SkipContract {
		c, err := loadContract()
		if err != nil {
			panic("fakeopenai: " + err.Error()) // the spec is embedded: a build defect
		}
		s.contract = c
	}
	s.AddProject(ProjectActive, "Fake active project", "active")
	s.AddProject(ProjectArchived, "Fake archived project", "archived")
	val := opts.AdminKey
	if val == "" {
		val = "sk-admin-" + randHex(24)
	}
	s.mu.Lock()
	s.seededAdmin = s.addAdminKeyLocked("Seeded admin key", val, 0)
	s.mu.Unlock()
	return s
}

// AdminKey returns the seeded admin key's value.
func (s *Server) AdminKey() string { return s.seededAdmin.value }

// AdminKeyID returns the seeded admin key's id.
func (s *Server) AdminKeyID() string { return s.seededAdmin.id }

// AddProject adds a project or updates the name and status of an existing one.
// Archiving a project removes its service accounts, as OpenAI does.
func (s *Server) AddProject(id, name, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().Unix()
	p, ok := s.projects[id]
	if !ok {
		s.seq++
		p = &project{id: id, createdAt: now, seq: s.seq, accounts: map[string]*account{}, seqOf: map[string]uint64{}}
		s.projects[id] = p
		s.projOrder = append(s.projOrder, p)
	}
	p.name, p.status = name, status
	if status == "archived" {
		if p.archivedAt == 0 {
			p.archivedAt = now
		}
		for id := range p.accounts {
			p.deleteLocked(id)
		}
	} else {
		p.archivedAt = 0
	}
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

func (b bySeq) Len() int           { return len(b.a) }
func (b bySeq) Less(i, j int) bool { return b.s[i] < b.s[j] }
func (b bySeq) Swap(i, j int) {
	b.a[i], b.a[j] = b.a[j], b.a[i]
	b.s[i], b.s[j] = b.s[j], b.s[i]
}

func (a *account) export() Account {
	out := Account{ProjectID: a.projectID, ID: a.id, Name: a.name, CreatedAt: a.createdAt, KeyExpiresAt: a.keyExpiresAt}
	if a.key != nil {
		out.KeyID = a.key.id
	}
	return out
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

// Calls returns how many requests each operation received, faulted and
// failed ones included.
func (s *Server) Calls() map[Op]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[Op]int, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// ResetCalls zeroes the call counters.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = map[Op]int{}
}

func (s *Server) countCall(op Op) {
	s.mu.Lock()
	s.calls[op]++
	s.mu.Unlock()
}

func (s *Server) logf(format string, args ...any) {
	if s.logger != nil {
		s.logger.Printf(format, args...)
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return hex.EncodeToString(b)
}

// redact keeps the first 8 and last 3 characters, as OpenAI's "sk-admin...xyz".
func redact(v string) string {
	if len(v) <= 11 {
		return "..."
	}
	return v[:8] + "..." + v[len(v)-3:]
}

var _ http.Handler = (*Server)(nil)
