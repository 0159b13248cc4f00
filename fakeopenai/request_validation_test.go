package fakeopenai

import (
	"strings"
	"testing"
)

func TestValidation(t *testing.T) {
	s := New(Options{})
	key := s.AdminKey()
	saPath := "/v1/organization/projects/" + ProjectActive + "/service_accounts"
	cases := []struct {
		name, method, path, body string
		status                   int
		param                    any
	}{
		{"no name", "POST", saPath, `{}`, 400, "name"},
		{"empty name", "POST", saPath, `{"name":"  "}`, 400, "name"},
		{"name not a string", "POST", saPath, `{"name":5}`, 400, "name"},
		{"expiry zero", "POST", saPath, `{"name":"a","expires_in_seconds":0}`, 400, "expires_in_seconds"},
		{"expiry too long", "POST", saPath, `{"name":"a","expires_in_seconds":31536001}`, 400, "expires_in_seconds"},
		{"expiry fractional", "POST", saPath, `{"name":"a","expires_in_seconds":1.5}`, 400, "expires_in_seconds"},
		{"expiry a string", "POST", saPath, `{"name":"a","expires_in_seconds":"60"}`, 400, "expires_in_seconds"},
		{"expiry max", "POST", saPath, `{"name":"a","expires_in_seconds":31536000}`, 200, nil},
		{"expiry null", "POST", saPath, `{"name":"a","expires_in_seconds":null}`, 200, nil},
		// Strict where OpenAI is: an unrecognized argument is refused, so a
		// misspelt expiry cannot yield a key that never expires.
		{"misspelt expiry", "POST", saPath, `{"name":"a","expires_in":60}`, 400, "expires_in"},
		{"unknown field", "POST", saPath, `{"name":"a","role":"owner"}`, 400, "role"},
		{"expiry with account only", "POST", saPath, `{"name":"a","create_service_account_only":true,"expires_in_seconds":60}`, 400, "expires_in_seconds"},
		{"account only, null expiry", "POST", saPath, `{"name":"a","create_service_account_only":true,"expires_in_seconds":null}`, 200, nil},
		{"name at the bound", "POST", saPath, `{"name":"` + strings.Repeat("n", maxNameLen) + `"}`, 200, nil},
		{"name over the bound", "POST", saPath, `{"name":"` + strings.Repeat("n", maxNameLen+1) + `"}`, 400, "name"},
		{"admin key unknown field", "POST", "/v1/organization/admin_api_keys", `{"name":"k","scopes":[]}`, 400, "scopes"},
		{"not JSON", "POST", saPath, `name=a`, 400, nil},
		{"JSON array", "POST", saPath, `[]`, 400, nil},
		{"archived project", "POST", "/v1/organization/projects/" + ProjectArchived + "/service_accounts", `{"name":"a"}`, 400, nil},
		{"unknown project", "POST", "/v1/organization/projects/proj_nope/service_accounts", `{"name":"a"}`, 404, nil},
		{"archived delete", "DELETE", "/v1/organization/projects/" + ProjectArchived + "/service_accounts/svc_acct_x", "", 400, nil},
		{"unknown account", "DELETE", saPath + "/svc_acct_nope", "", 404, nil},
		{"admin key no name", "POST", "/v1/organization/admin_api_keys", `{"expires_in_seconds":5}`, 400, "name"},
		{"admin key expiry", "POST", "/v1/organization/admin_api_keys", `{"name":"k","expires_in_seconds":-1}`, 400, "expires_in_seconds"},
		{"admin key order", "GET", "/v1/organization/admin_api_keys?order=sideways", "", 400, "order"},
		{"limit zero", "GET", saPath + "?limit=0", "", 400, "limit"},
		{"limit junk", "GET", saPath + "?limit=x", "", 400, "limit"},
		{"unknown admin key", "DELETE", "/v1/organization/admin_api_keys/key_nope", "", 404, nil},
		{"unknown route", "GET", "/v1/organization/users", "", 404, nil},
		{"trailing slash", "GET", "/v1/organization/projects/", "", 404, nil},
		{"outside /v1", "GET", "/organization/projects", "", 404, nil},
		{"wrong method", "PATCH", saPath, "", 405, nil},
		{"wrong method on item", "POST", "/v1/organization/admin_api_keys/key_x", "", 405, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, m := rawCall(t, s, tc.method, tc.path, key, tc.body)
			if code != tc.status {
				t.Fatalf("status %d, want %d (%v)", code, tc.status, m)
			}
			if tc.status == 200 {
				return
			}
			if e := errorOf(t, m); e["param"] != tc.param {
				t.Fatalf("param %v, want %v", e["param"], tc.param)
			}
		})
	}
	// Only the four valid creates made accounts.
	if got := len(s.LiveAccounts()); got != 4 {
		t.Fatalf("%d accounts, want 4", got)
	}
}
