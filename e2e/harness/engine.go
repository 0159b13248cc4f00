package harness

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// Fake is an in-process fake Admin API on a loopback port. Tests inspect its state
// directly (LiveAccounts, Calls, SetFaults).
type Fake struct {
	*fakeopenai.Server
	URL  string           // base URL for the engine's config, ".../v1"
	HTTP *httptest.Server // the fake's listener
}

// NewFake starts a fake Admin API for t; it is closed at cleanup.
func NewFake(t testing.TB) *Fake {
	t.Helper()
	return newFake(t, io.Discard)
}

// newFake starts a fake whose per-request log lines go to logTo.
func newFake(t testing.TB, logTo io.Writer) *Fake {
	t.Helper()
	srv := fakeopenai.New(fakeopenai.Options{Logger: log.New(logTo, "", 0)})
	// Every exchange between the engine and the fake is held to OpenAI's
	// contract; a violation fails the test at cleanup.
	srv.FailOnViolations(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fake listener: %v", err)
	}
	hs := httptest.NewUnstartedServer(srv)
	hs.Listener.Close()
	hs.Listener = l
	hs.Start()
	t.Cleanup(func() {
		// Requests held by fault injection must not keep Close waiting.
		srv.SetFaults(fakeopenai.Faults{})
		hs.CloseClientConnections()
		hs.Close()
	})
	return &Fake{Server: srv, URL: hs.URL + "/v1", HTTP: hs}
}

// LiveIDs maps each live service account id at the fake to its account.
func (f *Fake) LiveIDs() map[string]fakeopenai.Account {
	m := map[string]fakeopenai.Account{}
	for _, a := range f.LiveAccounts() {
		m[a.ID] = a
	}
	return m
}

// Has reports whether the fake holds the live service account id.
func (f *Fake) Has(id string) bool {
	_, ok := f.LiveIDs()[id]
	return ok
}

// RegisterPlugin registers the suite's plugin binary in v's catalog by SHA-256 and
// version; env is passed to the plugin process (e.g. OPENAI_PLUGIN_WAL_ROLLBACK_MIN_AGE=5s).
func RegisterPlugin(t testing.TB, v *Vault, env ...string) {
	t.Helper()
	err := v.Client.Sys().RegisterPlugin(&api.RegisterPluginInput{
		Name:    PluginName,
		Type:    api.PluginTypeSecrets,
		Command: PluginName,
		SHA256:  Suite.PluginSHA,
		Version: Suite.Version,
		Env:     env,
	})
	if err != nil {
		t.Fatalf("registering the plugin: %v", err)
	}
}

// MountPlugin enables the registered plugin (at the suite's version) at path.
func MountPlugin(t testing.TB, v *Vault, path string) {
	t.Helper()
	err := v.Client.Sys().Mount(path, &api.MountInput{
		Type:   PluginName,
		Config: api.MountConfigInput{PluginVersion: Suite.Version},
	})
	if err != nil {
		t.Fatalf("mounting the plugin at %s: %v", path, err)
	}
}

// WriteConfig points the mount at the fake, with the fake's seeded admin key.
func WriteConfig(t testing.TB, v *Vault, mount string, f *Fake, extra map[string]any) {
	t.Helper()
	v.AddSecret(f.AdminKey())
	data := map[string]any{"admin_api_key": f.AdminKey(), "base_url": f.URL}
	for k, val := range extra {
		data[k] = val
	}
	if _, err := v.Client.Logical().Write(mount+"/config", data); err != nil {
		t.Fatalf("writing %s/config: %v", mount, err)
	}
}

// WriteRole writes mount/roles/name; project_id defaults to the fake's active project.
func WriteRole(t testing.TB, v *Vault, mount, name string, data map[string]any) {
	t.Helper()
	d := map[string]any{"project_id": fakeopenai.ProjectActive}
	for k, val := range data {
		d[k] = val
	}
	if _, err := v.Client.Logical().Write(mount+"/roles/"+name, d); err != nil {
		t.Fatalf("writing %s/roles/%s: %v", mount, name, err)
	}
}

// SetupEngine is the common path: a dev Vault, a fake, the plugin registered and
// mounted at "openai", config written and role "r" with the given fields.
func SetupEngine(t testing.TB, role map[string]any) (*Vault, *Fake) {
	t.Helper()
	v := StartVault(t, VaultOptions{})
	f := NewFake(t)
	RegisterPlugin(t, v)
	MountPlugin(t, v, "openai")
	WriteConfig(t, v, "openai", f, nil)
	WriteRole(t, v, "openai", "r", role)
	return v, f
}

// Creds is one issued key as the engine returns it.
type Creds struct {
	APIKey             string
	APIKeyID           string
	ServiceAccountID   string
	ServiceAccountName string
	ProjectID          string
	LeaseID            string
	LeaseDuration      int
	Renewable          bool
	Warnings           []string
}

// String never shows the key value.
func (c *Creds) String() string {
	return fmt.Sprintf("creds{service_account_id=%s lease=%s ttl=%ds}", c.ServiceAccountID, c.LeaseID, c.LeaseDuration)
}

// issue reads mount/creds/role (or writes it when data is non-nil, e.g. {"ttl": "5s"})
// and registers the key as a secret of v.
func Issue(t testing.TB, v *Vault, mount, role string, data map[string]any) *Creds {
	t.Helper()
	c, err := TryIssue(v, mount, role, data)
	if err != nil {
		t.Fatalf("issuing from %s/creds/%s: %v", mount, role, err)
	}
	return c
}

func TryIssue(v *Vault, mount, role string, data map[string]any) (*Creds, error) {
	var s *api.Secret
	var err error
	if data == nil {
		s, err = v.Client.Logical().Read(mount + "/creds/" + role)
	} else {
		s, err = v.Client.Logical().Write(mount+"/creds/"+role, data)
	}
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, fmt.Errorf("empty response")
	}
	str := func(k string) string { x, _ := s.Data[k].(string); return x }
	c := &Creds{
		APIKey:             str("api_key"),
		APIKeyID:           str("api_key_id"),
		ServiceAccountID:   str("service_account_id"),
		ServiceAccountName: str("service_account_name"),
		ProjectID:          str("project_id"),
		LeaseID:            s.LeaseID,
		LeaseDuration:      s.LeaseDuration,
		Renewable:          s.Renewable,
		Warnings:           s.Warnings,
	}
	v.AddSecret(c.APIKey)
	return c, nil
}

// LeaseTTL looks a lease up; ok is false once Vault no longer knows it.
func LeaseTTL(v *Vault, leaseID string) (ttl time.Duration, expire time.Time, ok bool) {
	s, err := v.Client.Sys().Lookup(leaseID)
	if err != nil || s == nil {
		return 0, time.Time{}, false
	}
	n, _ := s.Data["ttl"].(json.Number).Int64()
	exp, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(s.Data["expire_time"]))
	return time.Duration(n) * time.Second, exp, true
}

// LeasesUnder lists lease ids Vault still holds under prefix (e.g. "openai/creds/r/").
func LeasesUnder(t testing.TB, v *Vault, prefix string) []string {
	t.Helper()
	s, err := v.Client.Logical().List("sys/leases/lookup/" + prefix)
	if err != nil {
		t.Fatalf("listing leases under %s: %v", prefix, err)
	}
	if s == nil {
		return nil
	}
	raw, _ := s.Data["keys"].([]any)
	var out []string
	for _, k := range raw {
		out = append(out, fmt.Sprint(k))
	}
	sort.Strings(out)
	return out
}

// EnableFileAudit enables a file audit device writing into the test's temp dir and
// returns the log path.
func EnableFileAudit(t testing.TB, v *Vault) string {
	t.Helper()
	path := v.dir + "/audit.log"
	err := v.Client.Sys().EnableAuditWithOptions("file", &api.EnableAuditOptions{
		Type:    "file",
		Options: map[string]string{"file_path": path},
	})
	if err != nil {
		t.Fatalf("enabling the file audit device: %v", err)
	}
	return path
}

// ResponseError returns the HTTP status and the error strings of a failed API call.
func ResponseError(err error) (int, string) {
	if re, ok := err.(*api.ResponseError); ok {
		return re.StatusCode, strings.Join(re.Errors, "; ")
	}
	if err == nil {
		return http.StatusOK, ""
	}
	return 0, err.Error()
}

// IssueLoop keeps workers goroutines issuing from mount/creds/role, handing
// each result to record (which may sleep to pace a worker), until the returned
// stop is called; stop waits for the workers to finish.
func IssueLoop(v *Vault, mount, role string, workers int, record func(*Creds, error)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				record(TryIssue(v, mount, role, nil))
			}
		}()
	}
	return func() {
		close(done)
		wg.Wait()
	}
}

// DataString reads a string field of a secret; absent, null or not a string
// is "" and false, so a check for an empty key also fails on a missing one.
func DataString(s *api.Secret, k string) (string, bool) {
	if s == nil {
		return "", false
	}
	v, ok := s.Data[k].(string)
	return v, ok
}
