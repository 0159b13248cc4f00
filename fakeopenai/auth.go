// Authentication of Admin API requests, as strict as OpenAI documents it.

package fakeopenai

import (
	"net/http"
	"strings"
)

func (s *Server) authLocked(w http.ResponseWriter, r *http.Request) bool {
	h := r.Header.Get("Authorization")
	// Only "Bearer" as OpenAI documents it: whether OpenAI accepts other
	// casings of the scheme is unconfirmed, so the fake takes the strict
	// reading and a client relying on leniency fails here, not in production.
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || strings.TrimSpace(token) == "" {
		writeError(w, http.StatusUnauthorized, "invalid_request_error", nil, nil,
			"You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
		return false
	}
	s.expireAdminKeysLocked()
	k, ok := s.adminByVal[strings.TrimSpace(token)]
	if !ok {
		// Unlike OpenAI, no part of the key is echoed: nothing secret may reach logs.
		writeError(w, http.StatusUnauthorized, "invalid_request_error", nil, ptr("invalid_api_key"), "Incorrect API key provided.")
		return false
	}
	// OpenAI refuses an OpenAI-Organization header that does not name the
	// key's organization (401 mismatched_organization); absent is fine.
	if org := r.Header.Get("OpenAI-Organization"); org != "" && org != s.org {
		writeError(w, http.StatusUnauthorized, "invalid_request_error", nil, ptr("mismatched_organization"),
			"OpenAI-Organization header should match organization for API key")
		return false
	}
	k.lastUsedAt = s.now().Unix()
	return true
}
