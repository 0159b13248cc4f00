package backend

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

const fuzzAdminKey = "sk-admin-fuzz0123456789abcdef0123456789abcdef"

// newFuzzEnv is a configured backend against a fake with a known admin key,
// built once per fuzz target (not per input) and quiet.
func newFuzzEnv(f *testing.F) *testEnv {
	// As Vault Community Edition answers (see rotation_schedule_test.go).
	e := newTestEnv(f, quiet(), withFake(fakeopenai.Options{AdminKey: fuzzAdminKey}),
		withSystemView(&ceSystemView{StaticSystemView: logical.StaticSystemView{DefaultLeaseTTLVal: testDefaultLeaseTTL, MaxLeaseTTLVal: testMaxLeaseTTL}}))
	resp, err := e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.UpdateOperation, Path: "config", Storage: e.storage,
		Data: map[string]interface{}{"admin_api_key": fuzzAdminKey, "base_url": e.url},
	})
	if err != nil || (resp != nil && resp.IsError()) {
		f.Fatalf("configure: %v %v", resp, err)
	}
	return e
}

// fuzzValue turns a fuzzed string into the kinds of JSON value a Vault
// client can send for a field, chosen by kind.
func fuzzValue(s string, kind byte) interface{} {
	switch kind % 8 {
	case 0:
		return s
	case 1:
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return json.Number(strconv.FormatInt(n, 10))
		}
		return json.Number(s) // possibly not a number at all
	case 2:
		f, _ := strconv.ParseFloat(s, 64)
		return f
	case 3:
		return len(s)%2 == 0
	case 4:
		return []interface{}{s, 1}
	case 5:
		return map[string]interface{}{"v": s}
	case 6:
		return nil
	default:
		return -int64(len(s)) * 1 << 40
	}
}

// statusOf is the HTTP status Vault would answer with.
func statusOf(req *logical.Request, resp *logical.Response, err error) int {
	code, _ := logical.RespondErrorCommon(req, resp, err)
	if code == 0 {
		code = http.StatusOK
	}
	return code
}

func snapshot(t *testing.T, s logical.Storage, prefix string) map[string]string {
	t.Helper()
	out := map[string]string{}
	keys, err := s.List(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		e, err := s.Get(context.Background(), prefix+k)
		if err != nil {
			t.Fatal(err)
		}
		if e != nil {
			out[k] = string(e.Value)
		}
	}
	return out
}

// FuzzRoleFields: a role write with any field values answers 2xx or 4xx,
// never 5xx or a panic, and a refused write changes nothing.
func FuzzRoleFields(f *testing.F) {
	e := newFuzzEnv(f)
	f.Add("app", fakeopenai.ProjectActive, defaultNameTemplate, "1h", "24h", byte(0), byte(0))
	f.Add("app", fakeopenai.ProjectArchived, "", "-1", "99999999999999999999", byte(1), byte(1))
	f.Add("a.b-c", "proj_missing", "{{ range 9 }}{{ end }}", "10m", "5m", byte(0), byte(0))
	f.Add("{{x}}", "../x", "{{", "1e400", "NaN", byte(2), byte(2))
	f.Add("UPPER", fakeopenai.ProjectActive, "{{ random 8 }}", "9223372036854775807", "-9223372036854775808", byte(1), byte(7))
	f.Add("x", "proj_é", "✓", "", "", byte(4), byte(5))
	f.Fuzz(func(t *testing.T, name, project, tmpl, ttl, maxTTL string, k1, k2 byte) {
		before := snapshot(t, e.storage, roleStoragePrefix)
		req := &logical.Request{
			Operation: logical.UpdateOperation, Path: "roles/" + name, Storage: e.storage,
			Data: map[string]interface{}{
				"project_id":    fuzzValue(project, k1>>3),
				"name_template": fuzzValue(tmpl, k2>>3),
				"ttl":           fuzzValue(ttl, k1),
				"max_ttl":       fuzzValue(maxTTL, k2),
			},
		}
		resp, err := e.b.HandleRequest(context.Background(), req)
		code := statusOf(req, resp, err)
		if code >= 500 {
			t.Fatalf("role write answered %d: %v %v", code, resp, err)
		}
		if code >= 400 && !reflect.DeepEqual(before, snapshot(t, e.storage, roleStoragePrefix)) {
			t.Fatalf("a refused role write (%d) changed storage", code)
		}
		if code < 300 {
			role, err := getRole(context.Background(), e.storage, resp2name(name))
			if err != nil || role == nil {
				t.Fatalf("accepted role not stored: %v", err)
			}
			if role.TTL < 0 || role.MaxTTL < 0 || role.MaxTTL > maxKeyLifetime || (role.MaxTTL > 0 && role.TTL > role.MaxTTL) {
				t.Fatalf("accepted role with bad TTLs: %+v", role)
			}
			if _, err := parseNameTemplate(role.NameTemplate); err != nil {
				t.Fatalf("accepted role with bad template: %v", err)
			}
		}
	})
}

// role names are TypeLowerCaseString.
func resp2name(name string) string {
	b := []byte(name)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// FuzzConfigFields: a config write with any field values answers 2xx or
// 4xx, never 5xx or a panic, and a refused write changes nothing. A base_url
// that passes validation is pointed at the fake, so nothing leaves the host.
func FuzzConfigFields(f *testing.F) {
	e := newFuzzEnv(f)
	f.Add(fuzzAdminKey, "", "https://api.openai.com/v1", "30", "4", "1h", "", "0", byte(0), byte(0))
	f.Add("", "key_x", "http://example.com", "-1", "11", "-5", "org-1", "1m", byte(1), byte(1))
	f.Add("   ", "sk-admin-oops", "javascript:x", "1e400", "NaN", "soon", "", "-1", byte(2), byte(2))
	f.Add(fuzzAdminKey, "../../x", "https://u:p@h/v1", "9223372036854775807", "-1", "0", "\x00", "1s", byte(1), byte(7))
	f.Add("sk-admin-wrong", "", "", "300", "0", "86400", "", "8760h", byte(0), byte(1))
	f.Fuzz(func(t *testing.T, key, keyID, baseURL, timeout, retries, tidy, org, rotation string, k1, k2 byte) {
		data := map[string]interface{}{
			"admin_api_key":    fuzzValue(key, k1>>3),
			"admin_api_key_id": fuzzValue(keyID, k2>>3),
			"organization_id":  fuzzValue(org, k1>>5),
			"request_timeout":  fuzzValue(timeout, k1),
			"max_retries":      fuzzValue(retries, k2),
			"tidy_interval":    fuzzValue(tidy, k1^k2),
			"rotation_period":  fuzzValue(rotation, k2>>5),
		}
		if u, err := validateBaseURL(baseURL); err == nil && u != "" {
			data["base_url"] = e.url
		} else {
			data["base_url"] = fuzzValue(baseURL, k2>>2)
		}
		before := snapshot(t, e.storage, "")
		req := &logical.Request{Operation: logical.UpdateOperation, Path: "config", Storage: e.storage, Data: data}
		resp, err := e.b.HandleRequest(context.Background(), req)
		code := statusOf(req, resp, err)
		if code >= 500 {
			t.Fatalf("config write answered %d: %v %v", code, resp, err)
		}
		if code >= 400 && !reflect.DeepEqual(before, snapshot(t, e.storage, "")) {
			t.Fatalf("a refused config write (%d) changed storage", code)
		}
		if resp != nil && resp.IsError() {
			if msg := resp.Error().Error(); len(key) > 8 && containsString(msg, key) {
				t.Fatalf("error echoes admin_api_key")
			}
		}
	})
}

func containsString(s, sub string) bool {
	return len(sub) > 0 && len(s) >= len(sub) && (s == sub || indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// FuzzScopes: role scopes and a request's narrowing, with any values, answer
// 2xx or 4xx, never 5xx or a panic. A refused role write changes nothing; an
// accepted one stores a sorted, de-duplicated list of well-formed scopes; the
// probe leaves no account and no WAL entry; a refused issue creates nothing,
// and an accepted one gets a key with a non-empty subset of the role's scopes.
func FuzzScopes(f *testing.F) {
	e := newFuzzEnv(f)
	f.Add("api.model.read,api.all.read", "api.model.read", byte(0), byte(0))
	f.Add("api.model.read,api.model.read", "", byte(0), byte(0))
	f.Add("", "api.model.read", byte(0), byte(0))
	f.Add("a b,\t,", "x", byte(4), byte(4))
	f.Add("api.modèle.read", "api.model.read,api.other", byte(0), byte(1))
	f.Fuzz(func(t *testing.T, roleScopes, reqScopes string, k1, k2 byte) {
		ctx := context.Background()
		before := snapshot(t, e.storage, roleStoragePrefix)
		req := &logical.Request{
			Operation: logical.UpdateOperation, Path: "roles/fuzz", Storage: e.storage,
			Data: map[string]interface{}{"project_id": fakeopenai.ProjectActive, "scopes": fuzzValue(roleScopes, k1)},
		}
		resp, err := e.b.HandleRequest(ctx, req)
		code := statusOf(req, resp, err)
		switch {
		case code >= 500:
			t.Fatalf("role write answered %d: %v %v", code, resp, err)
		case code >= 400 && !reflect.DeepEqual(before, snapshot(t, e.storage, roleStoragePrefix)):
			t.Fatalf("a refused role write (%d) changed storage", code)
		}
		// (e.walCount and e.revoke call the fuzz target's Helper: not here.)
		// The previous input's issue deletes its entry in the background.
		e.b.walDeleter.settle(10 * time.Second)
		if wal, err := framework.ListWAL(ctx, e.storage); err != nil || len(wal) != 0 || len(e.fake.LiveAccounts()) != 0 {
			t.Fatalf("the probe left %d accounts and %d WAL entries (%v)", len(e.fake.LiveAccounts()), len(wal), err)
		}
		role, err := getRole(ctx, e.storage, "fuzz")
		if err != nil || role == nil {
			return // never stored yet
		}
		for i, s := range role.Scopes {
			if scopeShapeProblem(s) != "" || (i > 0 && role.Scopes[i-1] >= s) {
				t.Fatalf("stored scopes %q are not sorted, unique and well-formed", role.Scopes)
			}
		}

		req = &logical.Request{
			Operation: logical.UpdateOperation, Path: "creds/fuzz", Storage: e.storage,
			Data: map[string]interface{}{"scopes": fuzzValue(reqScopes, k2)},
		}
		resp, err = e.b.HandleRequest(ctx, req)
		code = statusOf(req, resp, err)
		switch {
		case code >= 500:
			t.Fatalf("issue answered %d: %v %v", code, resp, err)
		case code >= 400:
			if n := len(e.fake.LiveAccounts()); n != 0 {
				t.Fatalf("a refused issue (%d) left %d accounts", code, n)
			}
			return
		}
		got, _ := resp.Data["scopes"].([]string)
		if len(role.Scopes) > 0 && len(got) == 0 {
			t.Fatalf("a scoped role issued an unscoped key")
		}
		for _, s := range got {
			if !slices.Contains(role.Scopes, s) {
				t.Fatalf("issued scope %q is not among the role's %q", s, role.Scopes)
			}
		}
		if _, err := e.b.HandleRequest(ctx, &logical.Request{Operation: logical.RevokeOperation, Storage: e.storage, Secret: resp.Secret}); err != nil {
			t.Fatal(err)
		}
	})
}
