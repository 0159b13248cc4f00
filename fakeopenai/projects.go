// Projects: the seeded ones, lookup for the handlers and the wire shape.

package fakeopenai

import (
	"fmt"
	"net/http"
)

// Seeded projects.
const (
	ProjectActive   = "proj_fake_active"
	ProjectArchived = "proj_fake_archived"
)

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

	// Service-account keys (api_keys.go): live ones by id and by value,
	// all in creation order with tombstones (as order above), and the
	// creation seq of every key id ever made here, for list cursors.
	keys       map[string]*saKey
	keyByValue map[string]*saKey
	keyOrder   []*saKey
	deadKeys   int
	keySeq     map[string]uint64
	// rejectedScopes are scopes this project refuses (SetRejectedScopes).
	rejectedScopes map[string]bool
}

// AddProject adds a project or updates the name and status of an existing one.
// Archiving a project removes its service accounts, as OpenAI does.
func (s *Server) AddProject(id, name, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().Unix()
	p, ok := s.projects[id]
	if !ok {
		s.seq++
		p = &project{id: id, createdAt: now, seq: s.seq, accounts: map[string]*account{}, seqOf: map[string]uint64{},
			keys: map[string]*saKey{}, keyByValue: map[string]*saKey{}, keySeq: map[string]uint64{}}
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

// projectLocked finds a project; forAccounts rejects archived projects,
// which have no service accounts or keys.
func (s *Server) projectLocked(w http.ResponseWriter, id string, forAccounts bool) *project {
	p, ok := s.projects[id]
	if !ok {
		writeError(w, http.StatusNotFound, "invalid_request_error", nil, nil, fmt.Sprintf("No such project: '%s'.", id))
		return nil
	}
	if forAccounts && p.status == "archived" {
		writeError(w, http.StatusBadRequest, "invalid_request_error", nil, nil, fmt.Sprintf("Project '%s' is archived.", id))
		return nil
	}
	return p
}

type projectJSON struct {
	ID         string `json:"id"`
	Object     string `json:"object"`
	Name       string `json:"name"`
	CreatedAt  int64  `json:"created_at"`
	ArchivedAt *int64 `json:"archived_at"`
	Status     string `json:"status"`
}

func (p *project) json() projectJSON {
	return projectJSON{ID: p.id, Object: "organization.project", Name: p.name, CreatedAt: p.createdAt, ArchivedAt: optTime(p.archivedAt), Status: p.status}
}
