package fakeopenai

import (
	"net/http"
	"strings"
)

// serveControl answers the unauthenticated /_fake/ endpoints of the
// standalone binary (cmd/fake-openai), for scripts and people watching a
// run. They are never subject to faults. Tests in Go use the Server's
// methods instead (LiveAccounts, LiveKeys, Key, AccountKeyIDs, DeleteKey,
// SetRejectedScopes, SetFaults, Calls, ...).
//
//	GET /_fake/accounts    live accounts (JSON array of Account): `fake-openai accounts`
//	GET /_fake/keys        live service-account keys, no values (JSON array of KeyInfo): `fake-openai keys`
//	GET /_fake/violations  contract violations seen (JSON array of strings)
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	var v any
	switch strings.TrimPrefix(r.URL.Path, "/_fake/") {
	case "accounts":
		v = s.LiveAccounts()
	case "keys":
		v = s.LiveKeys()
	case "violations":
		out := s.Violations()
		if out == nil {
			out = []string{}
		}
		v = out
	default:
		writeError(w, http.StatusNotFound, "invalid_request_error", nil, nil, "no such control endpoint")
		return
	}
	if r.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, "invalid_request_error", nil, nil, "method not allowed")
		return
	}
	writeJSON(w, v)
}
