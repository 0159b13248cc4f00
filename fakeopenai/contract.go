package fakeopenai

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"unicode"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// The contract is what the fake holds every exchange to, in both directions:
// each request a client sends must satisfy the request schemas of OpenAI's
// published OpenAPI description (openapi/openai-admin.yaml, an extract of
// openai/openai-openapi f85dbe2), and each answer of the fake must satisfy the
// response schemas (errors: the ErrorResponse envelope with a status OpenAI
// documents). Neither side may carry a field that is in neither the spec nor
// sdkOnlyFields: the spec allows additional properties everywhere, so without
// that rule a misspelt field (say "expires_in" for "expires_in_seconds")
// would pass, and a key that never expires would look like a short-lived one.

//go:embed openapi/openai-admin.yaml
var specYAML []byte

// handwrittenYAML holds operations the extract cannot carry (see its
// comments); mergeHandwritten adds them, and the SDK-only key update, to
// the loaded extract.
//
//go:embed openapi/handwritten.yaml
var handwrittenYAML []byte

// errorStatuses are the error statuses a fake answer may carry. OpenAI's
// "Error codes" guide documents 401, 403, 429, 500 and 503; 400 (bad
// request, archived project) and 404 (unknown object or URL) appear in
// ADMIN-API.md and the SDK's error handling. 405 for a known path with an
// unserved method is the fake's choice: OpenAI's answer there is unconfirmed.
// Anything else (a 418, a 302) is a bug in the fake.
var errorStatuses = map[int]bool{400: true, 401: true, 403: true, 404: true, 405: true, 429: true, 500: true, 503: true}

type contract struct {
	doc       *openapi3.T
	router    routers.Router
	errSchema *openapi3.Schema
}

var loadContract = sync.OnceValues(func() (*contract, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(specYAML)
	if err != nil {
		return nil, fmt.Errorf("load the embedded spec: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("the embedded spec is not a valid OpenAPI document: %w", err)
	}
	if err := mergeHandwritten(doc); err != nil {
		return nil, err
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	ref := doc.Components.Schemas["ErrorResponse"]
	if ref == nil || ref.Value == nil {
		return nil, errors.New("the embedded spec has no ErrorResponse schema")
	}
	return &contract{doc: doc, router: router, errSchema: ref.Value}, nil
})

// exchange is one request and the fake's answer; status 0 means the fake
// gave no answer (an injected outage or dropped connection), so only the
// request is checked.
type exchange struct {
	req     *http.Request
	reqBody []byte
	status  int
	header  http.Header
	body    []byte
}

// check validates one exchange. op is the spec's operationId ("" if the path
// is not in the spec, which is only acceptable for error answers).
func (c *contract) check(x exchange) (op string, reqErrs, respErrs []error) {
	ctx := context.Background()
	// The router matches the spec's server URL, so present the request as
	// if sent to api.openai.com.
	vr := x.req.Clone(ctx)
	u := *x.req.URL
	u.Scheme, u.Host = "https", "api.openai.com"
	vr.URL, vr.Host = &u, u.Host
	vr.Body = io.NopCloser(bytes.NewReader(x.reqBody))
	where := x.req.Method + " " + x.req.URL.Path

	route, params, err := c.router.FindRoute(vr)
	if err != nil {
		if x.status/100 == 2 {
			respErrs = append(respErrs, fmt.Errorf("%s: not in the spec but answered %d", where, x.status))
		} else if x.status != 0 {
			respErrs = append(respErrs, c.checkError(x, "")...)
		}
		return "", nil, respErrs
	}
	op = route.Operation.OperationID
	in := &openapi3filter.RequestValidationInput{
		Request: vr, PathParams: params, Route: route,
		Options: &openapi3filter.Options{MultiError: true, AuthenticationFunc: bearerPresent},
	}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
		reqErrs = append(reqErrs, fmt.Errorf("request %s violates the spec: %w", where, err))
	}
	reqErrs = append(reqErrs, c.checkRequestExtras(route, op, x)...)
	switch {
	case x.status == 0:
		return op, reqErrs, nil
	case x.status/100 != 2:
		return op, reqErrs, c.checkError(x, op)
	case x.status != http.StatusOK:
		respErrs = append(respErrs, fmt.Errorf("%s: success status %d, OpenAI always answers 200", op, x.status))
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: x.status, Header: x.header,
		Options: &openapi3filter.Options{MultiError: true, IncludeResponseStatus: true},
	}
	out.SetBodyBytes(x.body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		respErrs = append(respErrs, fmt.Errorf("%s: response violates the spec: %w", op, err))
	}
	resp := route.Operation.Responses.Status(x.status)
	if resp != nil && resp.Value != nil {
		if mt := resp.Value.Content.Get("application/json"); mt != nil && mt.Schema != nil {
			if v, err := decodeJSON(x.body); err == nil {
				respErrs = append(respErrs, undocumented(mt.Schema.Value, v, fmt.Sprintf("%s %d $", op, x.status))...)
			}
		}
	}
	return op, reqErrs, respErrs
}

// checkRequestExtras holds the request to what ValidateRequest lets through:
// query parameters and body fields the operation does not declare (the
// spec's schemas allow additional properties), and the cross-field rule the
// SDK documents for service-account creation.
func (c *contract) checkRequestExtras(route *routers.Route, op string, x exchange) (errs []error) {
	declared := map[string]bool{}
	for _, ps := range []openapi3.Parameters{route.PathItem.Parameters, route.Operation.Parameters} {
		for _, p := range ps {
			if p != nil && p.Value != nil && p.Value.In == openapi3.ParameterInQuery {
				declared[p.Value.Name] = true
			}
		}
	}
	var unknownQuery []string
	for k := range x.req.URL.Query() {
		if !declared[k] {
			unknownQuery = append(unknownQuery, k)
		}
	}
	sort.Strings(unknownQuery)
	for _, k := range unknownQuery {
		errs = append(errs, fmt.Errorf("%s: query parameter %q is not in the spec", op, k))
	}
	rb := route.Operation.RequestBody
	if len(bytes.TrimSpace(x.reqBody)) == 0 {
		return errs
	}
	if rb == nil || rb.Value == nil {
		return append(errs, fmt.Errorf("%s: the spec declares no request body, but one was sent", op))
	}
	mt := rb.Value.Content.Get("application/json")
	if mt == nil || mt.Schema == nil {
		return errs
	}
	v, err := decodeJSON(x.reqBody)
	if err != nil {
		return errs // ValidateRequest has reported it
	}
	errs = append(errs, undocumented(mt.Schema.Value, v, op+" request $")...)
	if m, ok := v.(map[string]any); ok && op == "create-project-service-account" {
		// openai-go v3.96.0 AdminOrganizationProjectServiceAccountNewParams:
		// "A non-null value cannot be used when create_service_account_only is true."
		if m["create_service_account_only"] == true && m["expires_in_seconds"] != nil {
			errs = append(errs, fmt.Errorf("%s: expires_in_seconds together with create_service_account_only:true (the SDK says the API refuses it)", op))
		}
	}
	if m, ok := v.(map[string]any); ok && (op == "CreateanAPIkeyforaserviceaccount" || op == updateKeyOpID) {
		errs = append(errs, malformedScopes(op, m["scopes"])...)
	}
	return errs
}

// malformedScopes reports scopes no correct client sends: empty, with
// whitespace or control characters, or repeated. (A well-formed scope the
// project rejects is not a client bug: OpenAI publishes no list.)
func malformedScopes(op string, v any) (errs []error) {
	list, ok := v.([]any)
	if !ok {
		return nil // absent, or not an array: the schema check reports it
	}
	seen := map[string]bool{}
	for _, x := range list {
		sc, ok := x.(string)
		if !ok {
			continue
		}
		if sc == "" || strings.IndexFunc(sc, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
			errs = append(errs, fmt.Errorf("%s: malformed scope %q in scopes", op, sc))
		} else if seen[sc] {
			errs = append(errs, fmt.Errorf("%s: scope %q repeated in scopes", op, sc))
		}
		seen[sc] = true
	}
	return errs
}

// checkError validates a non-2xx answer: a status OpenAI documents, JSON, and
// the ErrorResponse envelope with all four keys.
func (c *contract) checkError(x exchange, op string) (errs []error) {
	where := fmt.Sprintf("%s %s -> %d", x.req.Method, x.req.URL.Path, x.status)
	if !errorStatuses[x.status] {
		errs = append(errs, fmt.Errorf("%s: status %d is not one OpenAI answers", where, x.status))
	}
	if mt, _, err := mime.ParseMediaType(x.header.Get("Content-Type")); err != nil || mt != "application/json" {
		errs = append(errs, fmt.Errorf("%s: Content-Type %q, want application/json", where, x.header.Get("Content-Type")))
	}
	v, err := decodeJSON(x.body)
	if err != nil {
		return append(errs, fmt.Errorf("%s: error body is not JSON: %v", where, err))
	}
	// VisitJSON wants float64 numbers, not json.Number.
	var plain any
	_ = json.Unmarshal(x.body, &plain)
	if err := c.errSchema.VisitJSON(plain, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors()); err != nil {
		errs = append(errs, fmt.Errorf("%s: error body violates ErrorResponse: %w", where, err))
	}
	errs = append(errs, undocumented(c.errSchema, v, fmt.Sprintf("%s %d $", op, x.status))...)
	// The SDK and OpenAI's own docs rely on all four keys being present, even when null.
	if m, ok := v.(map[string]any)["error"].(map[string]any); ok {
		for _, k := range []string{"message", "type", "param", "code"} {
			if _, ok := m[k]; !ok {
				errs = append(errs, fmt.Errorf("%s: error lacks %q", where, k))
			}
		}
	}
	return errs
}

// decodeJSON keeps numbers as json.Number so integer checks are exact.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	h := in.RequestValidationInput.Request.Header.Get("Authorization")
	if !strings.HasPrefix(h, "Bearer ") || len(h) == len("Bearer ") {
		return errors.New("no bearer token")
	}
	return nil
}

var keyRE = regexp.MustCompile(`sk-[A-Za-z0-9_-]{4,}`)

// scrub masks key values: a violation report may quote a request or answer,
// and nothing secret (even fake) may reach logs or test output.
func scrub(v any) string {
	return keyRE.ReplaceAllString(fmt.Sprintf("%+v", v), "sk-<redacted>")
}
