// The part of the contract written by hand: operations the fake serves that
// the spec extract does not describe, each with its source.

package fakeopenai

import (
	"fmt"

	"github.com/getkin/kin-openapi/openapi3"
)

// updateKeyOpID names the SDK-only key update, which the spec copy lacks.
const updateKeyOpID = "update-project-api-key"

// mergeHandwritten adds to doc (the loaded extract) the operations of
// openapi/handwritten.yaml and the key update.
func mergeHandwritten(doc *openapi3.T) error {
	loader := openapi3.NewLoader()
	hw, err := loader.LoadFromData(handwrittenYAML)
	if err != nil {
		return fmt.Errorf("load the hand-written contract: %w", err)
	}
	if err := hw.Validate(loader.Context); err != nil {
		return fmt.Errorf("the hand-written contract is not a valid OpenAPI document: %w", err)
	}
	for path, item := range hw.Paths.Map() {
		if doc.Paths.Value(path) != nil {
			return fmt.Errorf("hand-written path %s is already in the extract", path)
		}
		doc.Paths.Set(path, item)
	}

	// POST /organization/projects/{project_id}/api_keys/{api_key_id}: not
	// in the spec copy; written from openai-go v3.96.0
	// AdminOrganizationProjectAPIKeyService.Update and its types.
	//   - params AdminOrganizationProjectAPIKeyUpdateParams:
	//     expires_in_seconds (int64, "Number of seconds from this request
	//     until the API key expires", bounded here like every other
	//     expires_in_seconds: 1..31536000) and scopes ([]string); "Provide at
	//     least one"; "neither field accepts null".
	//   - response *ProjectAPIKey: the same object the GET answers (the
	//     spec's ProjectApiKey, plus expires_at in sdkOnlyFields).
	//   - path parameters and admin-key security as the GET's.
	const keyPath = "/organization/projects/{project_id}/api_keys/{api_key_id}"
	item := doc.Paths.Value(keyPath)
	if item == nil || item.Get == nil {
		return fmt.Errorf("the extract lacks GET %s", keyPath)
	}
	if item.Post != nil {
		return fmt.Errorf("the extract now has POST %s: drop the hand-written one", keyPath)
	}
	expires := openapi3.NewInt64Schema().WithMin(1).WithMax(maxExpiresIn)
	scopes := openapi3.NewArraySchema().WithItems(openapi3.NewStringSchema())
	body := openapi3.NewObjectSchema().WithProperties(map[string]*openapi3.Schema{
		"expires_in_seconds": expires, "scopes": scopes,
	}).WithMinProperties(1)
	item.Post = &openapi3.Operation{
		OperationID: updateKeyOpID,
		Summary:     "Updates the scopes and/or expiration of an API key in the project (openai-go v3.96.0).",
		Security:    item.Get.Security,
		Parameters:  item.Get.Parameters,
		RequestBody: &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().WithRequired(true).WithJSONSchema(body)},
		Responses:   item.Get.Responses,
	}
	return sdkUsageParams(doc)
}

// Operation ids of the usage and cost reports (usage.go).
const (
	usageCompletionsOpID = "usage-completions"
	usageCostsOpID       = "usage-costs"
)

// sdkUsageParams rewrites the query parameters of the two reports to what
// openai-go v3.96.0 sends, which wins over the spec copy:
//   - arrays go as "name[]=a&name[]=b": the params' URLQuery use
//     apiquery.ArrayQueryFormatBrackets (AdminOrganizationUsageCompletionsParams,
//     AdminOrganizationUsageCostsParams), where the spec's form style would
//     be "name=a&name=b". So the array parameters are renamed "name[]", and
//     a bare "api_key_ids=" is a parameter the contract does not declare.
//   - group_by also takes "api_source" (both) and "user_id" (costs), and
//     costs take a "line_items" filter; the spec copy lacks them.
func sdkUsageParams(doc *openapi3.T) error {
	extraGroupBy := map[string][]any{
		usageCompletionsOpID: {"api_source"},
		usageCostsOpID:       {"user_id", "api_source"},
	}
	for _, path := range []string{"/organization/usage/completions", "/organization/costs"} {
		item := doc.Paths.Value(path)
		if item == nil || item.Get == nil {
			return fmt.Errorf("the extract lacks GET %s", path)
		}
		op := item.Get
		var out openapi3.Parameters
		for _, pr := range op.Parameters {
			p := pr.Value
			if p == nil || p.In != openapi3.ParameterInQuery || p.Schema == nil || p.Schema.Value == nil || !p.Schema.Value.Type.Is(openapi3.TypeArray) {
				out = append(out, pr)
				continue
			}
			c := *p
			c.Name = p.Name + "[]"
			if p.Name == "group_by" {
				items := *p.Schema.Value.Items.Value
				items.Enum = append(append([]any(nil), items.Enum...), extraGroupBy[op.OperationID]...)
				sch := *p.Schema.Value
				sch.Items = &openapi3.SchemaRef{Value: &items}
				c.Schema = &openapi3.SchemaRef{Value: &sch}
			}
			out = append(out, &openapi3.ParameterRef{Value: &c})
		}
		if op.OperationID == usageCostsOpID {
			// openai-go v3.96.0 AdminOrganizationUsageCostsParams.LineItems
			// ("Return only costs for these exact line item names").
			out = append(out, &openapi3.ParameterRef{Value: openapi3.NewQueryParameter("line_items[]").
				WithSchema(openapi3.NewArraySchema().WithItems(openapi3.NewStringSchema()))})
		}
		op.Parameters = out
	}
	return nil
}
