package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// Every operation, the failing ones included, logs without a secret.
func TestSecurity_NoSecretsInLogs(t *testing.T) {
	logs := &syncBuffer{}
	e := newTestEnv(t, withLogs(logs))
	var issued []string
	ctx := context.Background()

	e.do(logical.UpdateOperation, "config", map[string]interface{}{"admin_api_key": "sk-admin-wrong-" + strings.Repeat("z", 30), "base_url": e.url})
	e.configure()
	e.setDeleteRetryFloor(1)
	e.writeRole("app", map[string]interface{}{"max_ttl": "1h"})
	for i := 0; i < 3; i++ {
		r := e.issue("app", nil)
		issued = append(issued, r.Data["api_key"].(string))
		if i == 0 {
			if _, err := e.renew(r.Secret, time.Now(), time.Minute); err != nil {
				t.Fatal(err)
			}
			if err := e.revoke(r.Secret); err != nil {
				t.Fatal(err)
			}
		} else {
			e.ageRecord(saID(r), staleBy)
		}
	}
	// Failures: 5xx and throttling on issue and revoke, a lost response, rollback.
	e.setFault(fakeopenai.OpCreateServiceAccount, fakeopenai.Fault500, 0, 1, 0)
	e.do(logical.UpdateOperation, "creds/app", nil)
	e.setFault(fakeopenai.OpCreateServiceAccount, fakeopenai.FaultLostResponse, 1, 0, 0)
	e.do(logical.UpdateOperation, "creds/app", nil)
	e.fake.SetFaults(fakeopenai.Faults{})
	e.rollbackNow()
	e.setFault(fakeopenai.OpDeleteServiceAccount, fakeopenai.Fault500, 1, 0, 0)
	e.tidy(nil)
	e.tidy(nil)
	if err := e.b.periodicFunc(ctx, &logical.Request{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	e.do(logical.ReadOperation, "config", nil)
	e.do(logical.DeleteOperation, "config", nil)

	out := logs.String()
	if !strings.Contains(out, "tidy") || !strings.Contains(out, "rolled back") {
		t.Fatalf("the exercise did not log what it should have; log:\n%s", out)
	}
	e.assertNoSecret("backend log", out, issued...)
	if m := regexp.MustCompile(`sk-[A-Za-z0-9_-]{6,}`).FindString(out); m != "" {
		t.Fatalf("backend log holds something key-shaped")
	}
}

// No response of any path, and no help text, carries the admin key; the
// issued key appears only in the creds response that issues it.
func TestSecurity_NoSecretsInResponsesOrHelp(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	creds := e.issue("app", nil)
	key := creds.Data["api_key"].(string)

	dump := func(r *logical.Response, err error) string {
		b, _ := json.Marshal(r)
		return fmt.Sprintf("%s %v", b, err)
	}
	var all strings.Builder
	for _, c := range []struct {
		op   logical.Operation
		path string
	}{
		{logical.ReadOperation, "config"},
		{logical.ReadOperation, "roles/app"},
		{logical.ListOperation, "roles/"},
		{logical.UpdateOperation, "tidy"},
	} {
		all.WriteString(dump(e.do(c.op, c.path, nil)))
	}
	for _, p := range []string{"config", "config/rotate-root", "roles/app", "roles/", "creds/app", "tidy"} {
		all.WriteString(dump(e.do(logical.HelpOperation, p, nil)))
	}
	e.assertNoSecret("responses and help", all.String(), key)
	renewed, err := e.renew(creds.Secret, time.Now(), time.Minute)
	e.assertNoSecret("renew response", dump(renewed, err), key)
}

// A server in base_url's place that echoes the Authorization header in its
// error messages does not get the key into Vault's responses or errors.
func TestSecurity_EchoedKeyIsRedactedFromUpstreamErrors(t *testing.T) {
	echo := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/service_accounts") {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, `{"error":{"message":"bad request with Authorization: %s","type":"invalid_request_error","param":null,"code":null}}`,
					r.Header.Get("Authorization"))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	logs := &syncBuffer{}
	e := newTestEnv(t, withLogs(logs), withHandler(echo))
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	resp, err := e.do(logical.UpdateOperation, "creds/app", nil)
	if err != nil || resp == nil || !resp.IsError() {
		t.Fatalf("want a 400 carrying OpenAI's message, got %v %v", resp, err)
	}
	msg := resp.Error().Error()
	e.assertNoSecret("error", msg)
	if !strings.Contains(msg, "Authorization: [redacted]") {
		t.Fatalf("message %q lacks the redaction marker", msg)
	}
	e.assertNoSecret("log", logs.String())
}

func TestSecurity_FormattingNeverShowsKeys(t *testing.T) {
	const admin, issued = "sk-admin-SECRETSECRET", "sk-svcacct-SECRETSECRET"
	cfg := openaiConfig{AdminAPIKey: admin, AdminAPIKeyID: "key_1", BaseURL: defaultBaseURL}
	settings := cfg.clientSettings()
	sa := serviceAccountKey{serviceAccount: serviceAccount{ID: "svc_acct_1"}, KeyValue: issued}
	var out strings.Builder
	for _, v := range []any{cfg, &cfg, settings, &settings, sa, &sa} {
		fmt.Fprintf(&out, "%v %+v %#v %s\n", v, v, v, v)
	}
	// A panic with one of these as its value prints through String.
	func() {
		defer func() { fmt.Fprint(&out, recover()) }()
		panic(cfg)
	}()
	if s := out.String(); strings.Contains(s, "SECRET") {
		t.Fatalf("formatted values show a key:\n%s", s)
	}
	if !strings.Contains(out.String(), "key_1") {
		t.Fatal("formatting lost the non-secret fields")
	}
}

// The SDK never follows a redirect to another origin with the admin key.
func TestSecurity_RedirectDoesNotCarryKeyElsewhere(t *testing.T) {
	var leaked atomic.Bool
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			leaked.Store(true)
		}
		http.Error(w, `{"error":{"message":"nope","type":"x","param":null,"code":null}}`, http.StatusUnauthorized)
	}))
	defer other.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()

	c := newSDKClient(clientSettings{BaseURL: redirector.URL + "/v1", AdminAPIKey: "sk-admin-" + strings.Repeat("r", 30), RequestTimeout: 5 * time.Second})
	if _, err := c.GetProject(context.Background(), "proj_1"); err == nil {
		t.Fatal("a cross-origin redirect was followed to success")
	}
	if leaked.Load() {
		t.Fatal("the admin key was sent to the redirect target")
	}
}

// An upstream that streams an endless body cannot make the plugin read
// more than maxResponseBytes, or hang until the request timeout.
func TestSecurity_ResponseBodiesAreCapped(t *testing.T) {
	for _, status := range []int{http.StatusOK, http.StatusInternalServerError} {
		var written atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			n, _ := io.WriteString(w, `{"error":{"message":"`)
			written.Add(int64(n))
			chunk := strings.Repeat("a", 64<<10)
			for r.Context().Err() == nil {
				n, err := io.WriteString(w, chunk)
				written.Add(int64(n))
				if err != nil {
					return
				}
			}
		}))
		c := newSDKClient(clientSettings{BaseURL: srv.URL + "/v1", AdminAPIKey: "sk-admin-x", RequestTimeout: 20 * time.Second})
		_, err := c.GetProject(context.Background(), "proj_1")
		srv.CloseClientConnections()
		srv.Close()
		if err == nil {
			t.Fatalf("status %d: an endless body decoded", status)
		}
		// The cap, not a clock, is what this checks: without it the reader
		// would drain the endless body until the request timeout, gigabytes.
		// The server can run ahead of the reader by its socket buffers only.
		if w := written.Load(); w > maxResponseBytes+32<<20 {
			t.Fatalf("status %d: %d bytes went out for a cap of %d", status, w, maxResponseBytes)
		}
		if len(err.Error()) > 2000 {
			t.Fatalf("status %d: error of %d bytes", status, len(err.Error()))
		}
	}
}

func TestSecurity_BaseURLMustBeHTTPSWithoutCredentials(t *testing.T) {
	for _, in := range []string{
		"http://example.com/v1", "http://0.0.0.0/v1", "http://127.1/v1", "ftp://127.0.0.1/v1", "https:///v1",
		"https://api.openai.com:443@evil.example/v1", "http://localhost:80@evil.example/v1", "https://user:pw@api.openai.com/v1",
		"https://api.openai.com/v1?key=sk-admin-x", "//api.openai.com/v1", "file:///etc/passwd",
	} {
		if _, err := validateBaseURL(in); err == nil {
			t.Errorf("validateBaseURL(%q) accepted", in)
		}
	}
	for _, in := range []string{"HTTPS://API.OPENAI.COM/v1", "http://127.0.0.2:8080/v1", "http://[::1]/v1", "https://proxy.internal:8443/openai/v1"} {
		if _, err := validateBaseURL(in); err != nil {
			t.Errorf("validateBaseURL(%q): %v", in, err)
		}
	}
	e := newTestEnv(t)
	e.mustBadRequest(logical.UpdateOperation, "config", map[string]interface{}{"admin_api_key": e.fake.AdminKey(), "base_url": "http://example.com/v1"}, "base_url")
	if resp, _ := e.do(logical.ReadOperation, "config", nil); resp != nil {
		t.Fatal("a refused config was stored")
	}
}

// Ids that reach upstream URLs come from users (admin_api_key_id, project_id)
// or from lease data; each is checked before any call is made.
func TestSecurity_HostileIDsNeverReachOpenAI(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.fake.ResetCalls()
	for _, id := range []string{"../projects/proj_fake_active", "key_1/../../x", "key_1?x=1", "key 1", "%2e%2e", e.fake.AdminKey()} {
		resp, err := e.do(logical.UpdateOperation, "config", map[string]interface{}{"admin_api_key_id": id})
		if err != nil || resp == nil || !resp.IsError() {
			t.Fatalf("admin_api_key_id %q: want 400, got %v %v", id, resp, err)
		}
		e.assertNoSecret("admin_api_key_id error", resp.Error().Error())
	}
	for _, id := range []string{"../admin_api_keys", "proj_1/service_accounts", "proj 1", "proj_%2F"} {
		e.mustBadRequest(logical.UpdateOperation, "roles/x", map[string]interface{}{"project_id": id}, "project_id")
	}
	for _, internal := range []map[string]interface{}{
		{"service_account_id": "svc_1/../../../admin_api_keys/key_1", "project_id": "proj_1"},
		{"service_account_id": "svc_1", "project_id": "proj_1/../../admin_api_keys"},
		{"service_account_id": "svc_1?", "project_id": "proj_1"},
	} {
		internal["secret_type"] = secretAPIKeyType
		if err := e.revoke(&logical.Secret{InternalData: internal}); err == nil {
			t.Errorf("revoke accepted %v", internal)
		}
	}
	if calls := e.fake.Calls(); len(calls) != 0 {
		t.Fatalf("hostile ids reached OpenAI: %v", calls)
	}
}

// Template syntax in a display name is data, never evaluated.
func TestSecurity_TemplateInjectionThroughDataIsInert(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	resp, err := e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.ReadOperation, Path: "creds/app", Storage: e.storage,
		DisplayName: `{{ .MountAccessor }}{{ random 200 }}`, MountAccessor: "openai_SECRETACCESSOR",
	})
	if err != nil || resp.IsError() {
		t.Fatalf("issue: %v %v", resp, err)
	}
	name := resp.Data["service_account_name"].(string)
	if strings.Contains(name, "SECRETACCESSOR") || len(name) > maxNameLength {
		t.Fatalf("display name was evaluated as a template: %q", name)
	}
}

var safeName = regexp.MustCompile(`^[A-Za-z0-9_.][A-Za-z0-9_.-]*$`)

func TestSecurity_TemplatesThatWouldExhaustThePluginAreRefused(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	for tmpl, want := range map[string]string{
		`{{ range 100000000 }}x{{ end }}{{ random 8 }}`:                                                       "range",
		`{{ random 1000000000000 }}`:                                                                          "out of range",
		`{{ define "a" }}{{ template "a" }}{{ end }}{{ template "a" }}`:                                       "sub-templates",
		`{{ block "a" . }}x{{ end }}{{ random 8 }}`:                                                           "sub-templates",
		`{{ printf "%0999999999d" 1 }}{{ random 8 }}`:                                                         "printf",
		`{{ replace "" "xxxxxxxx" (replace "" "xxxxxxxx" (replace "" "xxxxxxxx" .RoleName)) }}{{ random 8 }}`: "replace",
		`{{ call .X }}`: "call",
		strings.Repeat("x", maxTemplateLength) + "{{ random 8 }}": "characters",
	} {
		start := time.Now()
		e.mustBadRequest(logical.UpdateOperation, "roles/r", map[string]interface{}{"project_id": fakeopenai.ProjectActive, "name_template": tmpl}, want)
		if time.Since(start) > time.Second {
			t.Errorf("refusing %q took %s", tmpl, time.Since(start))
		}
	}
	// Ordinary templates still work, and render to names OpenAI accepts.
	for _, tmpl := range []string{
		defaultNameTemplate,
		`{{ if eq .RoleName "app" }}prod{{ else }}dev{{ end }}-{{ uuid }}`,
		`ci_{{ .DisplayName | lowercase | replace "token-" "" | truncate 10 }}.{{ unix_time_millis }}.{{ random 4 }}`,
		`ünï  {{ .RoleName | uppercase }} ✓ {{ random 20 | sha256 | truncate 12 }}`,
	} {
		e.writeRole("ok", map[string]interface{}{"name_template": tmpl})
		name := e.issue("ok", nil).Data["service_account_name"].(string)
		if !safeName.MatchString(name) || len(name) > maxNameLength || strings.HasSuffix(name, "-") {
			t.Errorf("template %q rendered %q", tmpl, name)
		}
	}
}

func TestSecurity_RoleNamesFollowGenericNameRegex(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	for _, name := range []string{"{{x}}", "a{{.RoleName}}", "x}}", "a b", "a/b", "a\nb", "é", "-x", "x-", ".x", "x%2Fy"} {
		for _, base := range []string{"roles/", "creds/"} {
			resp, err := e.do(logical.UpdateOperation, base+name, map[string]interface{}{"project_id": fakeopenai.ProjectActive})
			if err == nil && (resp == nil || !resp.IsError()) {
				t.Errorf("%s%q routed", base, name)
			}
		}
	}
	keys, _ := e.storage.List(context.Background(), roleStoragePrefix)
	if len(keys) != 0 {
		t.Fatalf("roles stored: %v", keys)
	}
}

// Vault's field validation quotes a value it cannot convert; a key sent with
// the wrong type still does not come back.
func TestSecurity_WrongTypedKeyIsNotEchoed(t *testing.T) {
	e := newTestEnv(t)
	for _, v := range []interface{}{
		[]interface{}{e.fake.AdminKey()},
		map[string]interface{}{"k": e.fake.AdminKey()},
		[]interface{}{"not-key-shaped-secret-value"},
	} {
		resp, err := e.do(logical.UpdateOperation, "config", map[string]interface{}{"admin_api_key": v})
		if err != nil || resp == nil || !resp.IsError() {
			t.Fatalf("want 400, got %v %v", resp, err)
		}
		msg := resp.Error().Error()
		e.assertNoSecret("error", msg)
		if strings.Contains(msg, "not-key-shaped-secret-value") {
			t.Fatal("a wrong-typed admin_api_key came back in the error")
		}
	}
}
