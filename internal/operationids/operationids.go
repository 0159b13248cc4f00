// Package operationids is the engine's API as a client generator sees it:
// the operation id Vault's OpenAPI document gives each method of each path
// of the mount. The plugin does not use it (the ids come from its paths'
// DisplayAttrs); it is the one expectation that two tests check, in process
// (backend.TestOpenAPIOperationIDs) and against a real Vault
// (e2e/openapi_test.go), so a path added or renamed is written down once.
package operationids

// ByPath maps each OpenAPI path of the mount (without the mount's own
// prefix) to its methods' operation ids; "list" is the GET with list=true.
// Each call returns a fresh map, so a test may change its copy.
func ByPath() map[string]map[string]string {
	return map[string]map[string]string{
		"/config":                     {"post": "openai-configure", "get": "openai-read-configuration", "delete": "openai-delete-configuration"},
		"/config/rotate-root":         {"post": "openai-rotate-root-credentials"},
		"/roles/":                     {"list": "openai-list-roles"},
		"/roles/{name}":               {"post": "openai-write-role", "get": "openai-read-role", "delete": "openai-delete-role"},
		"/creds/{name}":               {"get": "openai-generate-api-key", "post": "openai-generate-api-key-with-parameters"},
		"/tidy":                       {"post": "openai-tidy-service-accounts"},
		"/keys/":                      {"list": "openai-list-api-keys"},
		"/keys/lookup":                {"post": "openai-lookup-api-key", "get": "openai-lookup-api-key-by-query"},
		"/keys/{api_key_id}":          {"get": "openai-read-api-key-ledger-entry"},
		"/metrics":                    {"get": "openai-read-metrics"},
		"/usage":                      {"get": "openai-read-usage"},
		"/usage/{name}":               {"get": "openai-read-role-usage"},
		"/static-roles/":              {"list": "openai-list-static-roles"},
		"/static-roles/{name}":        {"post": "openai-write-static-role", "get": "openai-read-static-role", "delete": "openai-delete-static-role"},
		"/static-roles/{name}/rotate": {"post": "openai-rotate-static-role"},
		"/static-creds/{name}":        {"get": "openai-read-static-credentials"},
	}
}
