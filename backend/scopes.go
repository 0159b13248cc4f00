package backend

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/vault/sdk/logical"
)

// Key scopes: the shape a role's scopes (and a request's narrowing) must
// have. OpenAI publishes no list of scope names, so none is hard-coded here:
// whether OpenAI accepts a name is learnt by the probe at role write
// (scope_probe.go). The shape bounds are the engine's own, far above any
// scope seen in OpenAI's material (api.all.read, api.model.read,
// api.responses.write: a few dotted words), so that a role cannot make
// every issue send a huge body.
const (
	maxScopes      = 32
	maxScopeLength = 64
)

// normalizeScopes checks the shape of a scope list and returns it
// de-duplicated and sorted, or a 400 naming field. An empty list is valid
// (no scopes).
func normalizeScopes(field string, in []string) ([]string, *logical.Response) {
	out := make([]string, 0, len(in))
	for i, s := range in {
		if p := scopeShapeProblem(s); p != "" {
			return nil, logical.ErrorResponse("%s: entry %d %s", field, i+1, p)
		}
		out = append(out, s)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > maxScopes {
		return nil, logical.ErrorResponse("%s: at most %d scopes (got %d)", field, maxScopes, len(out))
	}
	return out, nil
}

// scopeShapeProblem says what is wrong with one scope, or "". Only visible
// ASCII: scope names are identifiers, and anything else (whitespace, control
// characters) is a paste error that OpenAI would refuse at every issue.
func scopeShapeProblem(s string) string {
	if s == "" {
		return "is empty"
	}
	if len(s) > maxScopeLength {
		return fmt.Sprintf("is longer than %d characters", maxScopeLength)
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c > '~' {
			return fmt.Sprintf("%q contains whitespace or a character other than visible ASCII", s)
		}
	}
	return ""
}

// narrowScopes checks a request's scopes against its role's and returns the
// key's scopes: the role's when the request names none, else the request's,
// which must be a non-empty subset of the role's. A role without scopes
// refuses narrowing: its keys carry all of their account's permissions, and
// scopes OpenAI may not know would only be found out at issue time, after
// the account was created (a role's scopes are probed when it is written).
func narrowScopes(roleName string, roleScopes []string, requested []string, given bool) ([]string, *logical.Response) {
	if !given {
		return roleScopes, nil
	}
	req, resp := normalizeScopes("scopes", requested)
	if resp != nil {
		return nil, resp
	}
	if len(roleScopes) == 0 {
		return nil, logical.ErrorResponse("scopes: role %q has no scopes, so a request cannot narrow them; "+
			"give the role scopes (roles/%s scopes=...) to allow narrowing", roleName, roleName)
	}
	if len(req) == 0 {
		return nil, logical.ErrorResponse("scopes: must name at least one of role %q's scopes (%s); "+
			"an empty list would mean all permissions", roleName, strings.Join(roleScopes, ","))
	}
	var extra []string
	for _, s := range req {
		if _, found := slices.BinarySearch(roleScopes, s); !found {
			extra = append(extra, s)
		}
	}
	if len(extra) > 0 {
		return nil, logical.ErrorResponse("scopes: outside role %q's scopes (%s): %s",
			roleName, strings.Join(roleScopes, ","), strings.Join(extra, ","))
	}
	return req, nil
}
