// The contract's field rule: no request or answer may carry a field that is
// in neither the spec nor sdkOnlyFields, which are type-checked by hand.

package fakeopenai

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/getkin/kin-openapi/openapi3"
)

// sdkField is a field the published spec omits but the official Go SDK
// documents. Per ADMIN-API.md the SDK is newer and wins; its value is still
// type-checked, here by hand since the spec has no schema for it.
type sdkField struct {
	doc   string // the SDK version and declaration that documents the field
	check func(v any) error
}

// sdkOnlyFields are keyed "<operationId> <request|status> $.<json path>".
// Every entry names the openai-go version that documents it; add one only
// with such a reference.
var sdkOnlyFields = map[string]sdkField{
	// Key expiry on service-account creation. The SDK added it in v3.57
	// (ADMIN-API.md); the bounds are the ones the spec gives the same field of
	// admin-api-keys-create, and ADMIN-API.md states them for this one.
	"create-project-service-account request $.expires_in_seconds": {
		doc:   "openai-go v3.96.0 AdminOrganizationProjectServiceAccountNewParams.ExpiresInSeconds (param.Opt[int64], nullable)",
		check: intField(1, maxExpiresIn, true),
	},
	"create-project-service-account 200 $.api_key.expires_at": {
		doc:   "openai-go v3.96.0 AdminOrganizationProjectServiceAccountNewResponseAPIKey.ExpiresAt (nullable unixtime)",
		check: intField(1, 1<<62, true),
	},
	// Key expiry on a key added to a service account: the spec's
	// CreateProjectServiceAccountApiKeyBody has name and scopes only.
	"CreateanAPIkeyforaserviceaccount request $.expires_in_seconds": {
		doc:   "openai-go v3.96.0 AdminOrganizationProjectServiceAccountAPIKeyNewParams.ExpiresInSeconds (param.Opt[int64])",
		check: intField(1, maxExpiresIn, true),
	},
	"CreateanAPIkeyforaserviceaccount 200 $.expires_at": {
		doc:   "openai-go v3.96.0 AdminOrganizationProjectServiceAccountAPIKeyNewResponse.ExpiresAt (nullable unixtime)",
		check: intField(1, 1<<62, true),
	},
	// The project key object's expiry: the spec's ProjectApiKey lacks it.
	"retrieve-project-api-key 200 $.expires_at": {
		doc:   "openai-go v3.96.0 ProjectAPIKey.ExpiresAt (nullable unixtime)",
		check: intField(1, 1<<62, true),
	},
	"list-project-api-keys 200 $.data[].expires_at": {
		doc:   "openai-go v3.96.0 ProjectAPIKey.ExpiresAt (nullable unixtime)",
		check: intField(1, 1<<62, true),
	},
	updateKeyOpID + " 200 $.expires_at": {
		doc:   "openai-go v3.96.0 ProjectAPIKey.ExpiresAt (nullable unixtime), the Update answer",
		check: intField(1, 1<<62, true),
	},
}

// intField accepts a JSON integer in [lo, hi], or null when nullable.
func intField(lo, hi int64, nullable bool) func(v any) error {
	return func(v any) error {
		if v == nil {
			if nullable {
				return nil
			}
			return errors.New("is null")
		}
		n, ok := v.(json.Number)
		if !ok {
			return fmt.Errorf("is %T, want an integer", v)
		}
		i, err := n.Int64()
		if err != nil {
			return fmt.Errorf("%s is not an integer", n)
		}
		if i < lo || i > hi {
			return fmt.Errorf("%d outside %d..%d", i, lo, hi)
		}
		return nil
	}
}

// freeForm marks a schema of the hand-written contract whose content the
// fake does not describe (openapi/handwritten.yaml): its fields are not
// checked. The extract has no such mark.
const freeForm = "x-fakeopenai-free-form"

// undocumented reports object keys in v that schema s does not declare and
// sdkOnlyFields does not list, and type-checks the SDK-only ones it meets.
func undocumented(s *openapi3.Schema, v any, path string) (errs []error) {
	if s == nil || s.Extensions[freeForm] == true {
		return nil
	}
	switch v := v.(type) {
	case map[string]any:
		props := map[string]*openapi3.Schema{}
		collectProps(s, props)
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := path + "." + k
			if f, ok := sdkOnlyFields[p]; ok {
				if err := f.check(v[k]); err != nil {
					errs = append(errs, fmt.Errorf("SDK-only field %s (%s): %v", p, f.doc, err))
				}
				continue
			}
			ps, ok := props[k]
			if !ok {
				errs = append(errs, fmt.Errorf("field %s is in neither the spec nor the SDK", p))
				continue
			}
			errs = append(errs, undocumented(ps, v[k], p)...)
		}
	case []any:
		items := collectItems(s)
		for _, val := range v {
			errs = append(errs, undocumented(items, val, path+"[]")...)
		}
	}
	return errs
}

func collectProps(s *openapi3.Schema, into map[string]*openapi3.Schema) {
	for k, p := range s.Properties {
		if p != nil && p.Value != nil {
			into[k] = p.Value
		}
	}
	for _, group := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
		for _, sub := range group {
			if sub != nil && sub.Value != nil {
				collectProps(sub.Value, into)
			}
		}
	}
}

func collectItems(s *openapi3.Schema) *openapi3.Schema {
	if s.Items != nil && s.Items.Value != nil {
		return s.Items.Value
	}
	for _, group := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
		for _, sub := range group {
			if sub != nil && sub.Value != nil {
				if it := collectItems(sub.Value); it != nil {
					return it
				}
			}
		}
	}
	return nil
}
