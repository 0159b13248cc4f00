package fakeopenai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
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

// routes maps path shapes ("*" is one path segment) to the operation per method.
var routes = []struct {
	pattern []string
	methods map[string]Op
}{
	{[]string{"organization", "projects", "*"}, map[string]Op{"GET": OpGetProject}},
	{[]string{"organization", "projects", "*", "service_accounts"}, map[string]Op{"GET": OpListServiceAccounts, "POST": OpCreateServiceAccount}},
	{[]string{"organization", "projects", "*", "service_accounts", "*"}, map[string]Op{"DELETE": OpDeleteServiceAccount}},
	{[]string{"organization", "admin_api_keys"}, map[string]Op{"GET": OpListAdminKeys, "POST": OpCreateAdminKey}},
	{[]string{"organization", "admin_api_keys", "*"}, map[string]Op{"GET": OpGetAdminKey, "DELETE": OpDeleteAdminKey}},
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

// ServeHTTP serves the OpenAI API under /v1 and the control endpoints under /_fake/.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_fake/") {
		s.serveControl(w, r)
		return
	}
	op, args, status := resolve(r.Method, r.URL.Path)
	if op != "" {
		s.countCall(op)
	}
	// Read the body up front: net/http notices a client hanging up (and
	// cancels r.Context()) only once the body has been consumed, and
	// Latency must end when the client gives up. The contract check needs
	// the bytes too.
	var reqBody []byte
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		_ = r.Body.Close()
		if err != nil {
			return
		}
		reqBody = b
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	// Every answer goes through out; with the contract on, it is held back,
	// checked, and only then written to w.
	out := http.ResponseWriter(w)
	var held *heldResponse
	if s.contract != nil {
		held = &heldResponse{header: http.Header{}}
		out = held
	}
	noAnswer := func() {
		if s.contract != nil {
			s.validate(nil, exchange{req: r, reqBody: reqBody})
		}
		abortConn(w)
	}
	latency, down := s.baseFaults()
	if down {
		s.logf("%s %s op=%s fault=down", r.Method, r.URL.Path, op)
		noAnswer()
		return
	}
	if latency > 0 && !sleepCtx(r.Context(), latency) {
		return
	}
	switch status {
	case http.StatusNotFound:
		writeError(out, http.StatusNotFound, "invalid_request_error", nil, nil, fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path))
		s.finish(w, r, reqBody, held)
		return
	case http.StatusMethodNotAllowed:
		writeError(out, http.StatusMethodNotAllowed, "invalid_request_error", nil, nil, fmt.Sprintf("Method %s not allowed on %s", r.Method, r.URL.Path))
		s.finish(w, r, reqBody, held)
		return
	}
	if rule, fired := s.pickFault(op); fired {
		s.logf("%s %s op=%s fault=%s", r.Method, r.URL.Path, op, rule.Kind)
		msg := func(def string) string {
			if rule.Message != "" {
				return rule.Message
			}
			return def
		}
		switch rule.Kind {
		case Fault429:
			out.Header().Set("Retry-After", strconv.Itoa(max(rule.RetryAfter, 1))) // the spec: minimum 1
			writeError(out, http.StatusTooManyRequests, "rate_limit_exceeded", nil, ptr("rate_limit_exceeded"), msg("Rate limit reached for requests (injected by the fake)."))
			s.finish(w, r, reqBody, held)
			return
		case Fault500:
			writeError(out, http.StatusInternalServerError, "server_error", nil, nil, msg("The server had an error while processing your request (injected by the fake)."))
			s.finish(w, r, reqBody, held)
			return
		case Fault400:
			writeError(out, http.StatusBadRequest, "invalid_request_error", nil, nil, msg("Bad request (injected by the fake)."))
			s.finish(w, r, reqBody, held)
			return
		case Fault401:
			writeError(out, http.StatusUnauthorized, "invalid_request_error", nil, ptr("invalid_api_key"), msg("Incorrect API key provided (injected by the fake)."))
			s.finish(w, r, reqBody, held)
			return
		case Fault403:
			writeError(out, http.StatusForbidden, "invalid_request_error", nil, nil, msg("You have insufficient permissions for this operation (injected by the fake)."))
			s.finish(w, r, reqBody, held)
			return
		case FaultDrop:
			noAnswer()
			return
		case FaultLostResponse:
			s.handle(&discardWriter{}, r, op, args)
			noAnswer()
			return
		case FaultHold:
			time.Sleep(rule.Hold)
		}
	}
	sw := &statusWriter{ResponseWriter: out, status: http.StatusOK}
	s.handle(sw, r, op, args)
	s.logf("%s %s op=%s status=%d", r.Method, r.URL.Path, op, sw.status)
	s.finish(w, r, reqBody, held)
}

// finish checks a held answer against the contract and writes it to w; a
// violation is recorded and replaced by a loud error (see validate).
func (s *Server) finish(w http.ResponseWriter, r *http.Request, reqBody []byte, held *heldResponse) {
	if held == nil {
		return
	}
	status := held.status
	if status == 0 {
		status = http.StatusOK
	}
	body := held.body.Bytes()
	if s.validate(w, exchange{req: r, reqBody: reqBody, status: status, header: held.header, body: body}) {
		return
	}
	for k, v := range held.header {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// heldResponse records an answer so it can be checked before it is sent.
type heldResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (h *heldResponse) Header() http.Header { return h.header }
func (h *heldResponse) WriteHeader(code int) {
	if h.status == 0 {
		h.status = code
	}
}
func (h *heldResponse) Write(b []byte) (int, error) {
	if h.status == 0 {
		h.status = http.StatusOK
	}
	return h.body.Write(b)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// handle authenticates and performs op.
func (s *Server) handle(w http.ResponseWriter, r *http.Request, op Op, args []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
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
	}
}

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

func accountOr404(w http.ResponseWriter, p *project, id string) *account {
	a, ok := p.accounts[id]
	if !ok {
		writeError(w, http.StatusNotFound, "invalid_request_error", nil, nil, fmt.Sprintf("No such service account: '%s'.", id))
		return nil
	}
	return a
}

func (s *Server) adminKeyOr404(w http.ResponseWriter, id string) *adminKey {
	k, ok := s.adminKeys[id]
	if !ok {
		writeError(w, http.StatusNotFound, "invalid_request_error", nil, nil, fmt.Sprintf("No such admin API key: '%s'.", id))
		return nil
	}
	return k
}

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

// pageAccounts returns up to limit live accounts after the cursor.
func (p *project) pageAccounts(after string, limit int) (out []*account, hasMore, ok bool) {
	start := 0
	if after != "" {
		seq, found := p.seqOf[after]
		if !found {
			return nil, false, false
		}
		start = sort.Search(len(p.order), func(i int) bool { return p.order[i].seq > seq })
	}
	for _, a := range p.order[start:] {
		if a.deleted {
			continue
		}
		if len(out) == limit {
			return out, true, true
		}
		out = append(out, a)
	}
	return out, false, true
}

func (s *Server) listServiceAccounts(w http.ResponseWriter, r *http.Request, p *project) {
	limit, ok := parseLimit(w, r)
	if !ok {
		return
	}
	after := r.URL.Query().Get("after")
	accts, hasMore, ok := p.pageAccounts(after, limit)
	if !ok {
		badAfter(w, after)
		return
	}
	items := make([]any, 0, len(accts))
	ids := make([]string, 0, len(accts))
	for _, a := range accts {
		items = append(items, a.json())
		ids = append(ids, a.id)
	}
	writeJSON(w, list(items, ids, hasMore))
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

func (s *Server) createServiceAccount(w http.ResponseWriter, r *http.Request, p *project) {
	body, ok := readBody(w, r, "name", "create_service_account_only", "expires_in_seconds")
	if !ok {
		return
	}
	name, ok := nameField(w, body)
	if !ok {
		return
	}
	expiresIn, ok := expiresField(w, body)
	if !ok {
		return
	}
	var accountOnly bool
	if raw, ok := body["create_service_account_only"]; ok && string(raw) != "null" {
		if json.Unmarshal(raw, &accountOnly) != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", ptr("create_service_account_only"), nil, "'create_service_account_only' must be a boolean.")
			return
		}
	}
	// openai-go v3.96.0: "A non-null value cannot be used when
	// create_service_account_only is true." (the exact error text is unconfirmed)
	if accountOnly && expiresIn > 0 {
		writeError(w, http.StatusBadRequest, "invalid_request_error", ptr("expires_in_seconds"), nil,
			"'expires_in_seconds' cannot be used when 'create_service_account_only' is true.")
		return
	}
	now := s.now().Unix()
	s.seq++
	a := &account{projectID: p.id, id: "svc_acct_" + randHex(12), name: name, role: "member", createdAt: now, seq: s.seq}
	if accountOnly {
		a.role = "none"
	} else {
		a.key = &saKey{id: "key_" + randHex(12), name: "Secret Key", value: "sk-svcacct-" + randHex(32), createdAt: now}
		if expiresIn > 0 {
			a.key.expiresAt = now + expiresIn
			a.keyExpiresAt = a.key.expiresAt
		}
	}
	p.accounts[a.id] = a
	p.order = append(p.order, a)
	p.seqOf[a.id] = a.seq
	resp := serviceAccountCreateJSON{serviceAccountJSON: a.json()}
	if a.key != nil {
		resp.APIKey = &serviceAccountKeyJSON{
			Object: "organization.project.service_account.api_key", Value: a.key.value, Name: a.key.name,
			CreatedAt: a.key.createdAt, ID: a.key.id, ExpiresAt: optTime(a.key.expiresAt),
		}
	}
	writeJSON(w, resp)
}

func (s *Server) listAdminKeys(w http.ResponseWriter, r *http.Request) {
	limit, ok := parseLimit(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	order := q.Get("order")
	if order != "" && order != "asc" && order != "desc" {
		writeError(w, http.StatusBadRequest, "invalid_request_error", ptr("order"), nil, "order must be 'asc' or 'desc'.")
		return
	}
	keys := s.adminOrder
	if order == "desc" {
		keys = make([]*adminKey, len(s.adminOrder))
		for i, k := range s.adminOrder {
			keys[len(keys)-1-i] = k
		}
	}
	if after := q.Get("after"); after != "" {
		k, ok := s.adminKeys[after]
		if !ok {
			badAfter(w, after)
			return
		}
		for i, o := range keys {
			if o == k {
				keys = keys[i+1:]
				break
			}
		}
	}
	hasMore := len(keys) > limit
	if hasMore {
		keys = keys[:limit]
	}
	items := make([]any, 0, len(keys))
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		items = append(items, k.json(false))
		ids = append(ids, k.id)
	}
	writeJSON(w, list(items, ids, hasMore))
}

func (s *Server) createAdminKey(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r, "name", "expires_in_seconds")
	if !ok {
		return
	}
	name, ok := nameField(w, body)
	if !ok {
		return
	}
	expiresIn, ok := expiresField(w, body)
	if !ok {
		return
	}
	var expiresAt int64
	if expiresIn > 0 {
		expiresAt = s.now().Unix() + expiresIn
	}
	k := s.addAdminKeyLocked(name, "sk-admin-"+randHex(24), expiresAt)
	writeJSON(w, k.json(true))
}

// Wire shapes. Field order follows OpenAI's examples.

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

type projectJSON struct {
	ID         string `json:"id"`
	Object     string `json:"object"`
	Name       string `json:"name"`
	CreatedAt  int64  `json:"created_at"`
	ArchivedAt *int64 `json:"archived_at"`
	Status     string `json:"status"`
}

type serviceAccountJSON struct {
	Object    string `json:"object"`
	ID        string `json:"id"`
	Name      string `json:"name"`
	Role      string `json:"role"`
	CreatedAt int64  `json:"created_at"`
}

type serviceAccountCreateJSON struct {
	serviceAccountJSON
	APIKey *serviceAccountKeyJSON `json:"api_key"`
}

type serviceAccountKeyJSON struct {
	Object    string `json:"object"`
	Value     string `json:"value"`
	Name      string `json:"name"`
	CreatedAt int64  `json:"created_at"`
	ID        string `json:"id"`
	// Not in the published spec; the SDK (newer) reads it.
	ExpiresAt *int64 `json:"expires_at"`
}

type adminKeyJSON struct {
	Object        string        `json:"object"`
	ID            string        `json:"id"`
	Name          string        `json:"name"`
	RedactedValue string        `json:"redacted_value"`
	CreatedAt     int64         `json:"created_at"`
	ExpiresAt     *int64        `json:"expires_at"`
	LastUsedAt    *int64        `json:"last_used_at"`
	Owner         adminKeyOwner `json:"owner"`
	Value         string        `json:"value,omitempty"`
}

type adminKeyOwner struct {
	Type      string `json:"type"`
	Object    string `json:"object"`
	ID        string `json:"id"`
	Name      string `json:"name"`
	CreatedAt int64  `json:"created_at"`
	Role      string `json:"role"`
}

type deletedJSON struct {
	Object  string `json:"object"`
	ID      string `json:"id"`
	Deleted bool   `json:"deleted"`
}

func (p *project) json() projectJSON {
	return projectJSON{ID: p.id, Object: "organization.project", Name: p.name, CreatedAt: p.createdAt, ArchivedAt: optTime(p.archivedAt), Status: p.status}
}

func (a *account) json() serviceAccountJSON {
	return serviceAccountJSON{Object: "organization.project.service_account", ID: a.id, Name: a.name, Role: a.role, CreatedAt: a.createdAt}
}

// The fake's admin keys all belong to one organization owner.
var fakeOwner = adminKeyOwner{Type: "user", Object: "organization.user", ID: "user_fake_owner", Name: "Fake Owner", CreatedAt: 1700000000, Role: "owner"}

func (k *adminKey) json(withValue bool) adminKeyJSON {
	out := adminKeyJSON{
		Object: "organization.admin_api_key", ID: k.id, Name: k.name, RedactedValue: redact(k.value),
		CreatedAt: k.createdAt, ExpiresAt: optTime(k.expiresAt), LastUsedAt: optTime(k.lastUsedAt), Owner: fakeOwner,
	}
	if withValue {
		out.Value = k.value
	}
	return out
}

func list(items []any, ids []string, hasMore bool) listJSON {
	out := listJSON{Object: "list", Data: items, HasMore: hasMore}
	if out.Data == nil {
		out.Data = []any{}
	}
	if len(ids) > 0 {
		out.FirstID, out.LastID = &ids[0], &ids[len(ids)-1]
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
