package backend

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestConfig_WriteReadNeverShowsKey(t *testing.T) {
	e := newTestEnv(t)
	e.mustOK(logical.CreateOperation, "config", map[string]interface{}{
		"admin_api_key":   "  " + e.fake.AdminKey() + "\n",
		"base_url":        e.url + "/",
		"organization_id": "org-fake", // the fake's organization
		"request_timeout": "10s",
		"max_retries":     3,
	})
	resp := e.mustOK(logical.ReadOperation, "config", nil)
	want := map[string]interface{}{
		"admin_api_key_id": e.fake.AdminKeyID(),
		"organization_id":  "org-fake",
		"base_url":         e.url,
		"request_timeout":  int64(10),
		"max_retries":      3,
	}
	for k, v := range want {
		if resp.Data[k] != v {
			t.Errorf("config %s = %#v, want %#v", k, resp.Data[k], v)
		}
	}
	if _, ok := resp.Data["admin_api_key"]; ok {
		t.Fatal("config read returned admin_api_key")
	}
	e.assertNoSecret("config read", fmt.Sprint(resp.Data))

	// The stored entry holds the key (trimmed): it is what authenticates.
	cfg, err := getConfig(t.Context(), e.storage)
	if err != nil || cfg.AdminAPIKey != e.fake.AdminKey() {
		t.Fatalf("stored config key mismatch (err %v)", err)
	}
}

func TestConfig_Defaults(t *testing.T) {
	e := newTestEnv(t)
	e.mustOK(logical.CreateOperation, "config", map[string]interface{}{"admin_api_key": e.fake.AdminKey(), "base_url": e.url})
	resp := e.mustOK(logical.ReadOperation, "config", nil)
	if resp.Data["request_timeout"] != int64(30) || resp.Data["max_retries"] != maxRetriesUnset {
		t.Fatalf("defaults: %v", resp.Data)
	}
}

func TestConfig_UpdateKeepsUnsetFields(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{"max_retries": 7})
	resp := e.mustOK(logical.ReadOperation, "config", nil)
	if resp.Data["max_retries"] != 7 || resp.Data["base_url"] != e.url || resp.Data["admin_api_key_id"] != e.fake.AdminKeyID() {
		t.Fatalf("update lost fields: %v", resp.Data)
	}
}

func TestConfig_NewKeyReplacesOld(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	second := "sk-admin-second-" + strings.Repeat("q", 20) + "zz9"
	secondID := e.fake.AddAdminKey(second)
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{"admin_api_key": second})
	resp := e.mustOK(logical.ReadOperation, "config", nil)
	if resp.Data["admin_api_key_id"] != secondID {
		t.Fatalf("admin_api_key_id = %v, want %s", resp.Data["admin_api_key_id"], secondID)
	}
	// The cached client must now use the new key: issuing still works.
	e.writeRole("r", map[string]interface{}{})
	e.mustOK(logical.ReadOperation, "creds/r", nil)
}

func TestConfig_ExplicitKeyIDIsChecked(t *testing.T) {
	e := newTestEnv(t)
	other := e.fake.AddAdminKey("sk-admin-other-" + strings.Repeat("x", 20) + "abc")
	e.mustBadRequest(logical.CreateOperation, "config", map[string]interface{}{
		"admin_api_key": e.fake.AdminKey(), "base_url": e.url, "admin_api_key_id": other,
	}, "belongs to a different key")
	e.mustBadRequest(logical.CreateOperation, "config", map[string]interface{}{
		"admin_api_key": e.fake.AdminKey(), "base_url": e.url, "admin_api_key_id": "key_nope",
	}, "admin_api_key_id")
	e.mustOK(logical.CreateOperation, "config", map[string]interface{}{
		"admin_api_key": e.fake.AdminKey(), "base_url": e.url, "admin_api_key_id": e.fake.AdminKeyID(),
	})
}

func TestConfig_AmbiguousRedactedValueAsksForID(t *testing.T) {
	e := newTestEnv(t)
	key := e.fake.AdminKey()
	// Same first 8 and last 3 characters: indistinguishable by redacted value.
	e.fake.AddAdminKey(key[:8] + "different-middle" + key[len(key)-3:])
	e.mustBadRequest(logical.CreateOperation, "config", map[string]interface{}{"admin_api_key": key, "base_url": e.url}, "set admin_api_key_id")
}

func TestConfig_BadInput(t *testing.T) {
	e := newTestEnv(t)
	good := func(extra map[string]interface{}) map[string]interface{} {
		d := map[string]interface{}{"admin_api_key": e.fake.AdminKey(), "base_url": e.url}
		for k, v := range extra {
			d[k] = v
		}
		return d
	}
	cases := []struct {
		name string
		data map[string]interface{}
		want string
	}{
		{"missing key", map[string]interface{}{"base_url": e.url}, "admin_api_key"},
		{"empty key", good(map[string]interface{}{"admin_api_key": ""}), "admin_api_key"},
		{"whitespace key", good(map[string]interface{}{"admin_api_key": " \t\n"}), "admin_api_key"},
		{"wrong key", good(map[string]interface{}{"admin_api_key": "sk-admin-wrong-" + strings.Repeat("z", 30)}), "admin_api_key was rejected by OpenAI"},
		{"http remote", good(map[string]interface{}{"base_url": "http://api.openai.com/v1"}), "base_url"},
		{"ftp", good(map[string]interface{}{"base_url": "ftp://127.0.0.1/v1"}), "base_url"},
		{"credentials in url", good(map[string]interface{}{"base_url": "https://user:pw@api.openai.com/v1"}), "base_url"},
		{"query in url", good(map[string]interface{}{"base_url": "https://api.openai.com/v1?x=1"}), "base_url"},
		{"relative url", good(map[string]interface{}{"base_url": "/v1"}), "base_url"},
		{"timeout zero", good(map[string]interface{}{"request_timeout": 0}), "request_timeout"},
		{"timeout negative", good(map[string]interface{}{"request_timeout": -5}), "request_timeout"},
		{"timeout huge", good(map[string]interface{}{"request_timeout": "9999h"}), "request_timeout"},
		{"timeout not a duration", good(map[string]interface{}{"request_timeout": "soon"}), "request_timeout"},
		{"retries negative", good(map[string]interface{}{"max_retries": -1}), "max_retries"},
		{"retries huge", good(map[string]interface{}{"max_retries": 1000}), "max_retries"},
		{"retries not a number", good(map[string]interface{}{"max_retries": "many"}), "max_retries"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.t = t
			e.mustBadRequest(logical.CreateOperation, "config", c.data, c.want)
			if cfg, _ := getConfig(t.Context(), e.storage); cfg != nil {
				t.Fatal("a refused config write stored something")
			}
		})
	}
}

func TestConfig_RejectedKeyCarriesOpenAIMessageButNotKey(t *testing.T) {
	e := newTestEnv(t)
	wrong := "sk-admin-wrong-" + strings.Repeat("k", 30)
	resp, err := e.do(logical.CreateOperation, "config", map[string]interface{}{"admin_api_key": wrong, "base_url": e.url})
	if err != nil || resp == nil || !resp.IsError() {
		t.Fatalf("want 400, got %v %v", resp, err)
	}
	msg := resp.Error().Error()
	if !strings.Contains(msg, "401") {
		t.Fatalf("error should carry OpenAI's status: %q", msg)
	}
	if strings.Contains(msg, wrong) {
		t.Fatal("error echoes the rejected key")
	}
}

func TestConfig_DeleteClearsClient(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("r", map[string]interface{}{})
	e.mustOK(logical.DeleteOperation, "config", nil)
	if resp := e.mustOK(logical.ReadOperation, "config", nil); resp != nil {
		t.Fatalf("config still readable: %v", resp.Data)
	}
	e.mustBadRequest(logical.ReadOperation, "creds/r", nil, "not configured")
}

func TestConfig_InvalidateDropsClient(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	if _, err := e.b.getClient(t.Context(), e.storage); err != nil {
		t.Fatal(err)
	}
	e.b.invalidate(t.Context(), "roles/x")
	if e.b.client == nil {
		t.Fatal("unrelated invalidation dropped the client")
	}
	e.b.invalidate(t.Context(), configStoragePath)
	if e.b.client != nil {
		t.Fatal("config invalidation kept the client")
	}
}

func TestValidateBaseURL(t *testing.T) {
	ok := map[string]string{
		"https://api.openai.com/v1":  "https://api.openai.com/v1",
		"https://api.openai.com/v1/": "https://api.openai.com/v1",
		"http://127.0.0.1:8080/v1":   "http://127.0.0.1:8080/v1",
		"http://localhost:1/v1":      "http://localhost:1/v1",
		"http://[::1]:9/v1":          "http://[::1]:9/v1",
	}
	for in, want := range ok {
		got, err := validateBaseURL(in)
		if err != nil || got != want {
			t.Errorf("validateBaseURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "api.openai.com", "http://10.0.0.1/v1", "http://localhost.evil.com/v1", "https://u@api.openai.com", "https://api.openai.com/v1#x", "javascript:alert(1)"} {
		if _, err := validateBaseURL(in); err == nil {
			t.Errorf("validateBaseURL(%q) accepted", in)
		}
	}
}

func TestRedactedMatches(t *testing.T) {
	key := "sk-admin-1234567890abcdef"
	for redacted, want := range map[string]bool{
		"sk-admin...def": true,
		"sk-admin...xyz": false,
		"sk-admi...cdef": true,
		"sk-other...def": false,
		"nodots":         false,
		"...def":         false,
		"sk-admin...":    false,
	} {
		if got := redactedMatches(redacted, key); got != want {
			t.Errorf("redactedMatches(%q) = %v, want %v", redacted, got, want)
		}
	}
}

// Issue 11 item 8: the automated-rotation fields describe this engine's admin
// key, not the SDK's generic "credential rotation of the given username".
func TestConfig_RotationFieldHelpIsOurs(t *testing.T) {
	e := newTestEnv(t)
	fields := pathConfig(e.b).Fields
	for _, name := range []string{"rotation_period", "rotation_schedule", "rotation_window", "disable_automated_rotation", "rotation_policy"} {
		d := fields[name].Description
		if strings.Contains(d, "username") || strings.Contains(d, "RotationManager") || !strings.Contains(d, "rotat") {
			t.Errorf("%s help is not about this engine: %q", name, d)
		}
	}
	if d := fields["rotation_period"].Description; !strings.Contains(d, "admin key") {
		t.Errorf("rotation_period help does not say what rotates: %q", d)
	}
	if d := fields["force"].Description; !strings.Contains(d, "on write") {
		t.Errorf("force help does not cover writes: %q", d)
	}
}
