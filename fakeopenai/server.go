// Package fakeopenai is an in-memory, stateful stand-in for the part of the
// OpenAI Admin API that the secrets engine uses (projects, project service
// accounts and their keys, the project's API keys, admin API keys), with fault
// injection so tests can reproduce rate limiting, outages and lost responses
// deterministically. It also serves GET /v1/models and POST /v1/responses,
// minimally, to the service-account keys it issued, enforcing what OpenAI
// enforces: a live key (not expired, deleted or revoked; never an admin key)
// whose scopes allow the call (inference.go).
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
	"maps"
	"net/http"
	"sync"
	"time"
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

// Calls returns how many requests each operation received, faulted and
// failed ones included.
func (s *Server) Calls() map[Op]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.calls)
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

var _ http.Handler = (*Server)(nil)
