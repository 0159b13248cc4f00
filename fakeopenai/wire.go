// What every operation shares on the wire: limits, request body and
// paging parsing, the list and error envelopes, JSON writing.

package fakeopenai

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

const (
	maxExpiresIn = 31536000 // one year: the SDK's documented upper bound
	defaultLimit = 20
	maxLimit     = 100
	maxBody      = 1 << 20
	// maxNameLen bounds service-account and admin-key names. UNCONFIRMED:
	// OpenAI documents no limit (ADMIN-API.md), but some limit surely
	// exists; 256 is the fake's guess, chosen well above the 96 characters
	// the engine may send, so a client cannot rely on names being unbounded.
	maxNameLen = 256
)

// parseLimit reads ?limit= (1..100, default 20).
func parseLimit(w http.ResponseWriter, r *http.Request) (int, bool) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return defaultLimit, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxLimit {
		writeError(w, http.StatusBadRequest, "invalid_request_error", ptr("limit"), nil, "limit must be an integer between 1 and 100.")
		return 0, false
	}
	return n, true
}

func badAfter(w http.ResponseWriter, after string) {
	writeError(w, http.StatusBadRequest, "invalid_request_error", ptr("after"), nil, fmt.Sprintf("No object found for cursor '%s'.", after))
}

// readBody parses a JSON object body into its raw fields and refuses any
// field not in allowed, as OpenAI refuses an unrecognized request argument
// (400): a misspelt "expires_in" must not quietly create a key that never
// expires.
func readBody(w http.ResponseWriter, r *http.Request, allowed ...string) (map[string]json.RawMessage, bool) {
	var body map[string]json.RawMessage
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	if err := dec.Decode(&body); err != nil || body == nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", nil, nil,
			"We could not parse the JSON body of your request. The OpenAI API expects a JSON payload.")
		return nil, false
	}
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(allowed, k) {
			writeError(w, http.StatusBadRequest, "invalid_request_error", ptr(k), nil,
				fmt.Sprintf("Unrecognized request argument supplied: %s", k))
			return nil, false
		}
	}
	return body, true
}

// createFields reads a create request: the required "name", the optional
// "expires_in_seconds" (0: absent) and, left raw in body, any field of extra;
// any other field is refused (see readBody).
func createFields(w http.ResponseWriter, r *http.Request, extra ...string) (name string, expiresIn int64, body map[string]json.RawMessage, ok bool) {
	if body, ok = readBody(w, r, append([]string{"name", "expires_in_seconds"}, extra...)...); !ok {
		return "", 0, nil, false
	}
	if name, ok = nameField(w, body); !ok {
		return "", 0, nil, false
	}
	expiresIn, ok = expiresField(w, body)
	return name, expiresIn, body, ok
}

// nameField reads the required, non-empty "name".
func nameField(w http.ResponseWriter, body map[string]json.RawMessage) (string, bool) {
	var name string
	raw, ok := body["name"]
	if !ok || json.Unmarshal(raw, &name) != nil || strings.TrimSpace(name) == "" {
		writeError(w, http.StatusBadRequest, "invalid_request_error", ptr("name"), nil, "'name' is required and must be a non-empty string.")
		return "", false
	}
	if utf8.RuneCountInString(name) > maxNameLen {
		writeError(w, http.StatusBadRequest, "invalid_request_error", ptr("name"), nil,
			fmt.Sprintf("'name' must be at most %d characters.", maxNameLen))
		return "", false
	}
	return name, true
}

// expiresField reads the optional "expires_in_seconds" (1..31536000); 0 means absent.
func expiresField(w http.ResponseWriter, body map[string]json.RawMessage) (int64, bool) {
	raw, ok := body["expires_in_seconds"]
	if !ok || string(raw) == "null" {
		return 0, true
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || n < 1 || n > maxExpiresIn {
		writeError(w, http.StatusBadRequest, "invalid_request_error", ptr("expires_in_seconds"), nil,
			fmt.Sprintf("'expires_in_seconds' must be an integer between 1 and %d.", maxExpiresIn))
		return 0, false
	}
	return n, true
}

type errorJSON struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

type listJSON struct {
	Object  string  `json:"object"`
	Data    []any   `json:"data"`
	FirstID *string `json:"first_id"`
	LastID  *string `json:"last_id"`
	HasMore bool    `json:"has_more"`
}

type deletedJSON struct {
	Object  string `json:"object"`
	ID      string `json:"id"`
	Deleted bool   `json:"deleted"`
}

// list answers one page of a list operation: wire gives each item's JSON,
// id its id for first_id and last_id (null on an empty page).
func list[T any](page []T, hasMore bool, id func(T) string, wire func(T) any) listJSON {
	out := listJSON{Object: "list", Data: make([]any, 0, len(page)), HasMore: hasMore}
	for _, x := range page {
		out.Data = append(out.Data, wire(x))
	}
	if len(page) > 0 {
		first, last := id(page[0]), id(page[len(page)-1])
		out.FirstID, out.LastID = &first, &last
	}
	return out
}

func optTime(t int64) *int64 {
	if t == 0 {
		return nil
	}
	return &t
}

func ptr(s string) *string { return &s }

func writeJSON(w http.ResponseWriter, v any) {
	writeStatusJSON(w, http.StatusOK, v)
}

func writeStatusJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"message":"fake: cannot encode response","type":"server_error","param":null,"code":null}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, typ string, param, code *string, msg string) {
	writeStatusJSON(w, status, errorJSON{Error: errorBody{Message: msg, Type: typ, Param: param, Code: code}})
}
