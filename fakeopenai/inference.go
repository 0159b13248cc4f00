// The two inference calls a test makes with an issued key, GET /v1/models
// and POST /v1/responses, minimal but enforcing what OpenAI enforces: only a
// live service-account key authenticates (not an admin key, not an expired,
// deleted or revoked one), and only if its scopes allow the call.

package fakeopenai

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Scopes the two calls need, as OpenAI's own material names them
// (ADMIN-API.md "Key scopes": spec examples and the audit-log example).
const (
	scopeModelRead      = "api.model.read"
	scopeResponsesWrite = "api.responses.write"
	// scopeAllRead is read-only access to everything (openai-go v3.96.0
	// AdminOrganizationProjectAPIKeyUpdateParams.Scopes: `["api.all.read"]`
	// for read-only access).
	scopeAllRead = "api.all.read"
)

// fakeModels are what GET /v1/models lists.
var fakeModels = []modelJSON{
	{ID: "gpt-4o-mini", Object: "model", Created: 1721172741, OwnedBy: "system"},
	{ID: "gpt-4.1", Object: "model", Created: 1744316542, OwnedBy: "system"},
}

// allows reports whether the key's scopes permit scope. No scopes means all
// the account's permissions (openai-go v3.96.0: an empty array is "All
// permissions"). api.all.read grants every "*.read" scope. Nothing else is
// implied: which scopes imply which others is unconfirmed, and the strict
// reading is the exact name.
//
// UNCONFIRMED: a bare account (create_service_account_only) has role "none",
// "without default roles" (openai-go v3.96.0), and scopes "never grant more"
// than the owner has (ADMIN-API.md). Whether a key of a role-none account
// may call anything at all is not documented; the fake lets the key's scopes
// decide, as issue 14's design assumes. If OpenAI refuses such keys, the
// engine's scoped issue would need a role grant the fake does not model.
func (k *saKey) allows(scope string) bool {
	if len(k.scopes) == 0 || slices.Contains(k.scopes, scope) {
		return true
	}
	return strings.HasSuffix(scope, ".read") && slices.Contains(k.scopes, scopeAllRead)
}

// keyAuthLocked authenticates an inference request by a service-account key.
func (s *Server) keyAuthLocked(w http.ResponseWriter, r *http.Request) *saKey {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	token = strings.TrimSpace(token)
	if !ok || token == "" {
		writeError(w, http.StatusUnauthorized, "invalid_request_error", nil, nil,
			"You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
		return nil
	}
	now := s.now().Unix()
	var key *saKey
	for _, p := range s.projOrder {
		if k, found := p.keyByValue[token]; found {
			key = k
			break
		}
	}
	// An unknown value, an admin key (admin keys serve the Admin API
	// only), a key deleted on its own or with its account (revoked), and
	// an expired key are all refused alike: 401 invalid_api_key. Unlike
	// OpenAI, no part of the key is echoed: nothing secret may reach logs.
	if key == nil || key.expired(now) {
		writeError(w, http.StatusUnauthorized, "invalid_request_error", nil, ptr("invalid_api_key"), "Incorrect API key provided.")
		return nil
	}
	if org := r.Header.Get("OpenAI-Organization"); org != "" && org != s.org {
		writeError(w, http.StatusUnauthorized, "invalid_request_error", nil, ptr("mismatched_organization"),
			"OpenAI-Organization header should match organization for API key")
		return nil
	}
	return key
}

// handleInferenceLocked serves GET /v1/models and POST /v1/responses.
func (s *Server) handleInferenceLocked(w http.ResponseWriter, r *http.Request, op Op) {
	k := s.keyAuthLocked(w, r)
	if k == nil {
		return
	}
	need := scopeModelRead
	if op == OpCreateResponse {
		need = scopeResponsesWrite
	}
	if !k.allows(need) {
		// ADMIN-API.md "Errors": a key lacking a scope is refused with 401
		// and a "Missing scopes: ..." message (OpenAI answers 401, not
		// 403, for a restricted key too).
		writeError(w, http.StatusUnauthorized, "invalid_request_error", nil, nil, fmt.Sprintf(
			"You have insufficient permissions for this operation. Missing scopes: %s. Check that you have the correct role in your organization or project, and (if you're using a restricted API key) that it has the necessary scopes.", need))
		return
	}
	if op == OpListModels {
		k.lastUsedAt = s.now().Unix()
		writeJSON(w, modelListJSON{Object: "list", Data: fakeModels})
		return
	}
	model, ok := s.responseRequest(w, r)
	if !ok {
		return
	}
	now := s.now().Unix()
	k.lastUsedAt = now
	writeJSON(w, minimalResponse(model, now))
}

// responseRequest reads the minimal request the fake serves: "model" (a
// non-empty string) and "input" (a non-empty string or array). OpenAI
// accepts many more fields; the fake refuses them by name rather than
// pretend to honour them.
func (s *Server) responseRequest(w http.ResponseWriter, r *http.Request) (string, bool) {
	body, ok := readBody(w, r, "model", "input")
	if !ok {
		return "", false
	}
	var model string
	if raw, has := body["model"]; !has || json.Unmarshal(raw, &model) != nil || strings.TrimSpace(model) == "" {
		writeError(w, http.StatusBadRequest, "invalid_request_error", ptr("model"), nil, "'model' is required and must be a non-empty string.")
		return "", false
	}
	var text string
	var items []json.RawMessage
	raw, has := body["input"]
	switch {
	case has && json.Unmarshal(raw, &text) == nil && text != "":
	case has && json.Unmarshal(raw, &items) == nil && len(items) > 0:
	default:
		writeError(w, http.StatusBadRequest, "invalid_request_error", ptr("input"), nil, "'input' is required and must be a non-empty string or array.")
		return "", false
	}
	return model, true
}

type modelJSON struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

type modelListJSON struct {
	Object string      `json:"object"`
	Data   []modelJSON `json:"data"`
}

// minimalResponse is a completed Response (spec schema Response: every
// required field, one assistant message).
func minimalResponse(model string, now int64) map[string]any {
	return map[string]any{
		"id": "resp_" + randHex(24), "object": "response", "created_at": now, "status": "completed",
		"completed_at": now, "error": nil, "incomplete_details": nil, "instructions": nil, "model": model,
		"output": []any{map[string]any{
			"type": "message", "id": "msg_" + randHex(24), "status": "completed", "role": "assistant",
			"content": []any{map[string]any{
				"type": "output_text", "text": "This is a response from the fake OpenAI.", "annotations": []any{}, "logprobs": []any{},
			}},
		}},
		"parallel_tool_calls": true, "metadata": map[string]any{}, "tool_choice": "auto", "tools": []any{},
		"temperature": 1.0, "top_p": 1.0,
	}
}
