package fakeopenai

import (
	"encoding/json"
	"net/http"
	"strings"
)

// serveControl answers the unauthenticated /_fake/ endpoints used by the
// standalone binary and by scripts. They are never subject to faults, so a
// test can always inspect or heal the fake.
//
//	GET    /_fake/accounts              live accounts (JSON array of Account)
//	DELETE /_fake/accounts/{project}/{id}  delete one by hand
//	GET    /_fake/admin_keys            live admin keys (no values)
//	GET    /_fake/calls                 requests per operation
//	DELETE /_fake/calls                 reset the counters
//	GET    /_fake/faults                faults in force
//	PUT    /_fake/faults                replace them (JSON Faults)
//	GET    /_fake/fault_counts          faults injected per kind
//	PUT    /_fake/projects              add or update a project {"id","name","status"}
//	GET    /_fake/violations            contract violations seen (JSON array of strings)
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/_fake/")
	segs := strings.Split(path, "/")
	notAllowed := func() {
		writeError(w, http.StatusMethodNotAllowed, "invalid_request_error", nil, nil, "method not allowed")
	}
	switch {
	case path == "accounts":
		if r.Method != http.MethodGet {
			notAllowed()
			return
		}
		writeJSON(w, s.LiveAccounts())
	case len(segs) == 3 && segs[0] == "accounts" && segs[1] != "" && segs[2] != "":
		if r.Method != http.MethodDelete {
			notAllowed()
			return
		}
		if !s.DeleteAccount(segs[1], segs[2]) {
			writeError(w, http.StatusNotFound, "invalid_request_error", nil, nil, "no such live account")
			return
		}
		writeJSON(w, deletedJSON{Object: "organization.project.service_account.deleted", ID: segs[2], Deleted: true})
	case path == "admin_keys":
		if r.Method != http.MethodGet {
			notAllowed()
			return
		}
		writeJSON(w, s.LiveAdminKeys())
	case path == "calls":
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, s.Calls())
		case http.MethodDelete:
			s.ResetCalls()
			writeJSON(w, s.Calls())
		default:
			notAllowed()
		}
	case path == "faults":
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, s.CurrentFaults())
		case http.MethodPut:
			var f Faults
			dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&f); err != nil {
				writeError(w, http.StatusBadRequest, "invalid_request_error", nil, nil, "bad faults: "+err.Error())
				return
			}
			s.SetFaults(f)
			s.logf("faults replaced: %d rules, latency %s, down %t", len(f.Rules), f.Latency, f.Down)
			writeJSON(w, s.CurrentFaults())
		default:
			notAllowed()
		}
	case path == "fault_counts":
		if r.Method != http.MethodGet {
			notAllowed()
			return
		}
		writeJSON(w, s.FaultCounts())
	case path == "violations":
		if r.Method != http.MethodGet {
			notAllowed()
			return
		}
		v := s.Violations()
		if v == nil {
			v = []string{}
		}
		writeJSON(w, v)
	case path == "projects":
		if r.Method != http.MethodPut {
			notAllowed()
			return
		}
		var p struct{ ID, Name, Status string }
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&p); err != nil || p.ID == "" ||
			(p.Status != "active" && p.Status != "archived") {
			writeError(w, http.StatusBadRequest, "invalid_request_error", nil, nil, `want {"id":"proj_...","name":"...","status":"active"|"archived"}`)
			return
		}
		s.AddProject(p.ID, p.Name, p.Status)
		s.mu.Lock()
		out := s.projects[p.ID].json()
		s.mu.Unlock()
		writeJSON(w, out)
	default:
		writeError(w, http.StatusNotFound, "invalid_request_error", nil, nil, "no such control endpoint")
	}
}
