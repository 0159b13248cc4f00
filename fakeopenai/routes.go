// The operations the fake serves: the engine's calls (backend/client.go),
// the project key operations around them, and the two inference calls a
// test makes with an issued key; and the dispatch from a path to its handler.

package fakeopenai

import (
	"net/http"
	"strings"
)

// Op names an Admin API operation, for call counting and fault targeting.
type Op string

// Operations served by the fake: the engine's calls and the few a test of
// issued keys needs, so a call the engine starts making fails its tests
// until the fake learns it.
const (
	OpGetProject           Op = "get_project"
	OpCreateServiceAccount Op = "create_service_account"
	OpListServiceAccounts  Op = "list_service_accounts"
	OpDeleteServiceAccount Op = "delete_service_account"
	OpListAdminKeys        Op = "list_admin_keys"
	OpCreateAdminKey       Op = "create_admin_key"
	OpGetAdminKey          Op = "get_admin_key"
	OpDeleteAdminKey       Op = "delete_admin_key"
	// Keys on service accounts, and the project's keys.
	OpCreateServiceAccountKey Op = "create_service_account_api_key"
	OpListProjectKeys         Op = "list_project_api_keys"
	OpGetProjectKey           Op = "get_project_api_key"
	OpUpdateProjectKey        Op = "update_project_api_key"
	OpDeleteProjectKey        Op = "delete_project_api_key"
	// Inference, authenticated by an issued service-account key, never an
	// admin key (inference.go).
	OpListModels     Op = "list_models"
	OpCreateResponse Op = "create_response"
	// The usage and cost reports, admin key only (usage.go).
	OpUsageCompletions Op = "usage_completions"
	OpCosts            Op = "costs"
)

// routes maps path shapes ("*" is one path segment) to the operation per method.
var routes = []struct {
	pattern []string
	methods map[string]Op
}{
	{[]string{"organization", "projects", "*"}, map[string]Op{"GET": OpGetProject}},
	{[]string{"organization", "projects", "*", "service_accounts"}, map[string]Op{"GET": OpListServiceAccounts, "POST": OpCreateServiceAccount}},
	{[]string{"organization", "projects", "*", "service_accounts", "*"}, map[string]Op{"DELETE": OpDeleteServiceAccount}},
	{[]string{"organization", "projects", "*", "service_accounts", "*", "api_keys"}, map[string]Op{"POST": OpCreateServiceAccountKey}},
	{[]string{"organization", "projects", "*", "api_keys"}, map[string]Op{"GET": OpListProjectKeys}},
	{[]string{"organization", "projects", "*", "api_keys", "*"}, map[string]Op{"GET": OpGetProjectKey, "POST": OpUpdateProjectKey, "DELETE": OpDeleteProjectKey}},
	{[]string{"models"}, map[string]Op{"GET": OpListModels}},
	{[]string{"responses"}, map[string]Op{"POST": OpCreateResponse}},
	{[]string{"organization", "admin_api_keys"}, map[string]Op{"GET": OpListAdminKeys, "POST": OpCreateAdminKey}},
	{[]string{"organization", "admin_api_keys", "*"}, map[string]Op{"GET": OpGetAdminKey, "DELETE": OpDeleteAdminKey}},
	{[]string{"organization", "usage", "completions"}, map[string]Op{"GET": OpUsageCompletions}},
	{[]string{"organization", "costs"}, map[string]Op{"GET": OpCosts}},
}

// resolve finds the operation for a request. On failure op is "" and status
// is 404 (no such path) or 405 (path exists, method does not).
func resolve(method, path string) (op Op, args []string, status int) {
	rest, ok := strings.CutPrefix(path, "/v1/")
	if !ok {
		return "", nil, http.StatusNotFound
	}
	segs := strings.Split(rest, "/")
	for _, rt := range routes {
		if len(rt.pattern) != len(segs) {
			continue
		}
		var wild []string
		match := true
		for i, p := range rt.pattern {
			if segs[i] == "" || (p != "*" && p != segs[i]) {
				match = false
				break
			}
			if p == "*" {
				wild = append(wild, segs[i])
			}
		}
		if !match {
			continue
		}
		if op, ok := rt.methods[method]; ok {
			return op, wild, http.StatusOK
		}
		return "", nil, http.StatusMethodNotAllowed
	}
	return "", nil, http.StatusNotFound
}

// handle authenticates and performs op.
func (s *Server) handle(w http.ResponseWriter, r *http.Request, op Op, args []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if op == OpListModels || op == OpCreateResponse {
		s.handleInferenceLocked(w, r, op)
		return
	}
	if !s.authLocked(w, r) {
		return
	}
	switch op {
	case OpGetProject:
		if p := s.projectLocked(w, args[0], false); p != nil {
			writeJSON(w, p.json())
		}
	case OpCreateServiceAccount:
		if p := s.projectLocked(w, args[0], true); p != nil {
			s.createServiceAccount(w, r, p)
		}
	case OpListServiceAccounts:
		if p := s.projectLocked(w, args[0], true); p != nil {
			s.listServiceAccounts(w, r, p)
		}
	case OpDeleteServiceAccount:
		if p := s.projectLocked(w, args[0], true); p != nil {
			if a := accountOr404(w, p, args[1]); a != nil {
				p.deleteLocked(a.id)
				writeJSON(w, deletedJSON{Object: "organization.project.service_account.deleted", ID: a.id, Deleted: true})
			}
		}
	case OpCreateServiceAccountKey:
		if p := s.projectLocked(w, args[0], true); p != nil {
			if a := accountOr404(w, p, args[1]); a != nil {
				s.createServiceAccountKey(w, r, p, a)
			}
		}
	case OpListProjectKeys:
		if p := s.projectLocked(w, args[0], true); p != nil {
			s.listProjectKeys(w, r, p)
		}
	case OpGetProjectKey, OpUpdateProjectKey, OpDeleteProjectKey:
		p := s.projectLocked(w, args[0], true)
		if p == nil {
			return
		}
		k := keyOr404(w, p, args[1])
		switch {
		case k == nil:
		case op == OpGetProjectKey:
			writeJSON(w, k.projectJSON())
		case op == OpUpdateProjectKey:
			s.updateProjectKey(w, r, p, k)
		default:
			// openai-go v3.96.0 (newer than the spec copy, which says this
			// errors for a service account's key): the key goes, its
			// account and other keys stay.
			p.deleteKeyLocked(k)
			writeJSON(w, deletedJSON{Object: "organization.project.api_key.deleted", ID: k.id, Deleted: true})
		}
	case OpListAdminKeys:
		s.listAdminKeys(w, r)
	case OpCreateAdminKey:
		s.createAdminKey(w, r)
	case OpGetAdminKey:
		if k := s.adminKeyOr404(w, args[0]); k != nil {
			writeJSON(w, k.json(false))
		}
	case OpDeleteAdminKey:
		if k := s.adminKeyOr404(w, args[0]); k != nil {
			s.deleteAdminKeyLocked(k.id)
			writeJSON(w, deletedJSON{Object: "organization.admin_api_key.deleted", ID: k.id, Deleted: true})
		}
	case OpUsageCompletions, OpCosts:
		s.serveReportLocked(w, r, op)
	}
}
