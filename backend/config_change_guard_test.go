package backend

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// Defect 2: moving config to another base_url (or organization) while keys
// are live is refused with the count and the projects, unless force=true.
func TestConfigGuard_BaseURLChangeWithLiveKeysIsRefused(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	e.issue("app", nil)
	_, otherURL := e.otherOrg()

	resp, err := e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.UpdateOperation, Path: "config", Storage: e.storage, MountPoint: "team-openai/",
		Data: map[string]interface{}{"base_url": otherURL},
	})
	if err != nil || resp == nil || !resp.IsError() {
		t.Fatalf("base_url change with a live key: %v %v", resp, err)
	}
	msg := resp.Error().Error()
	for _, want := range []string{"base_url", "1 key(s)", fakeopenai.ProjectActive, "force=true", "team-openai/creds/"} {
		if !strings.Contains(msg, want) {
			t.Errorf("refusal %q does not mention %q", msg, want)
		}
	}
	if e.storedConfig().BaseURL != e.url {
		t.Fatal("refused write changed base_url")
	}
	e.mustBadRequest(logical.UpdateOperation, "config", map[string]interface{}{"organization_id": "org-other"}, "organization_id")

	// Unrelated settings still change without a check.
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{"request_timeout": 20})
	// force=true moves it anyway.
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{"base_url": otherURL, "force": true})
	if e.storedConfig().BaseURL != otherURL {
		t.Fatal("forced write did not apply")
	}
}

// notSeeingClient answers 404 for every project, like an admin key of
// another organization.
type notSeeingClient struct{ adminClient }

func (notSeeingClient) GetProject(context.Context, string) (*project, error) {
	return nil, &upstreamErr{op: "get project", status: 404, message: "No such project"}
}

// Defect 2: a new admin key that cannot see the projects of live keys is
// refused too, naming the project.
func TestConfigGuard_NewKeyThatCannotSeeLiveProjectsIsRefused(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	e.issue("app", nil)

	second := "sk-admin-second-" + strings.Repeat("q", 20) + "zz9"
	e.fake.AddAdminKey(second)
	e.b.newClient = func(s clientSettings) adminClient {
		if s.AdminAPIKey == second {
			return notSeeingClient{newSDKClient(s)}
		}
		return newSDKClient(s)
	}
	e.mustBadRequest(logical.UpdateOperation, "config", map[string]interface{}{"admin_api_key": second}, fakeopenai.ProjectActive)
	if e.storedConfig().AdminAPIKey != e.fake.AdminKey() {
		t.Fatal("refused key was stored")
	}
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{"admin_api_key": second, "force": true})
}

// A new key of the same organization passes the check.
func TestConfigGuard_NewKeySeeingLiveProjectsIsAccepted(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	e.issue("app", nil)
	second := "sk-admin-second-" + strings.Repeat("q", 20) + "zz9"
	e.fake.AddAdminKey(second)
	e.fake.ResetCalls()
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{"admin_api_key": second})
	if n := e.fake.Calls()[fakeopenai.OpGetProject]; n != 1 {
		t.Fatalf("%d project lookups, want one per project of live keys", n)
	}
}

// Defect 6: config delete is refused while WAL entries still need the admin
// key, and the message says which.
func TestConfigGuard_DeleteRefusedWhileWALPending(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	// The create happens at OpenAI but its answer is lost: the WAL entry
	// stays for rollback, which needs the admin key.
	e.fake.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{{
		Ops: []fakeopenai.Op{fakeopenai.OpCreateServiceAccount}, Kind: fakeopenai.FaultLostResponse, Rate: 1,
	}}})
	if _, err := e.do(logical.UpdateOperation, "creds/app", nil); err == nil {
		t.Fatal("issue with every answer lost succeeded")
	}
	e.fake.SetFaults(fakeopenai.Faults{})
	if e.walCount() == 0 {
		t.Fatal("no WAL entry left by the lost create")
	}
	e.mustBadRequest(logical.DeleteOperation, "config", nil, "WAL rollback")
	e.mustBadRequest(logical.DeleteOperation, "config", nil, "issue of service account")
	if cfg, _ := getConfig(context.Background(), e.storage); cfg == nil {
		t.Fatal("config deleted while rollback needs it")
	}
	// Rollback settles the entry; then delete goes through.
	e.rollbackNow()
	if e.walCount() != 0 {
		t.Fatalf("%d WAL entries after rollback", e.walCount())
	}
	e.mustOK(logical.DeleteOperation, "config", nil)
}

func TestConfigGuard_DeleteWithForceIgnoresWAL(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	e.fake.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{{
		Ops: []fakeopenai.Op{fakeopenai.OpCreateServiceAccount}, Kind: fakeopenai.FaultLostResponse, Rate: 1,
	}}})
	_, _ = e.do(logical.UpdateOperation, "creds/app", nil)
	e.mustOK(logical.DeleteOperation, "config", map[string]interface{}{"force": true})
}

// Issue 11 item 8: the refusal names the real mount path.
func TestConfigGuard_DeleteRefusalNamesMountPath(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	e.issue("app", nil)
	resp, err := e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.DeleteOperation, Path: "config", Storage: e.storage, MountPoint: "openai-prod/",
	})
	if err != nil || resp == nil || !resp.IsError() {
		t.Fatalf("delete with a live key: %v %v", resp, err)
	}
	if msg := resp.Error().Error(); !strings.Contains(msg, "vault lease revoke -prefix openai-prod/creds/") {
		t.Fatalf("refusal does not name the mount: %q", msg)
	}
}

// Defect 7: operator mistakes in config are 4xx naming the field.
func TestConfigGuard_BaseURLWithoutAdminAPIIsA400(t *testing.T) {
	e := newTestEnv(t)
	wrong := strings.TrimSuffix(e.url, "/v1") + "/v2"
	e.mustBadRequest(logical.CreateOperation, "config", map[string]interface{}{
		"admin_api_key": e.fake.AdminKey(), "base_url": wrong,
	}, "base_url: "+wrong+" answered 404")
	e.mustBadRequest(logical.CreateOperation, "config", map[string]interface{}{
		"admin_api_key": e.fake.AdminKey(), "base_url": wrong, "admin_api_key_id": e.fake.AdminKeyID(),
	}, "no OpenAI Admin API there")
}

type badRequestLookupClient struct{ adminClient }

func (badRequestLookupClient) ListAdminAPIKeys(context.Context, func(adminAPIKey) bool) error {
	return &upstreamErr{op: "list admin API keys", status: 400, message: "Invalid organization"}
}

func TestConfigGuard_BadRequestFromKeyLookupIsA400(t *testing.T) {
	e := newTestEnv(t)
	e.b.newClient = func(s clientSettings) adminClient { return badRequestLookupClient{newSDKClient(s)} }
	e.mustBadRequest(logical.CreateOperation, "config", map[string]interface{}{
		"admin_api_key": e.fake.AdminKey(), "base_url": e.url,
	}, "organization_id")
}

func TestConfigGuard_ThrottledVerifyIsA429(t *testing.T) {
	e := newTestEnv(t)
	e.fake.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{{
		Ops: []fakeopenai.Op{fakeopenai.OpListAdminKeys}, Kind: fakeopenai.Fault429, Rate: 1, RetryAfter: 1,
	}}})
	_, err := e.do(logical.CreateOperation, "config", map[string]interface{}{
		"admin_api_key": e.fake.AdminKey(), "base_url": e.url, "max_retries": 0,
	})
	var coded logical.HTTPCodedError
	if !errors.As(err, &coded) || coded.Code() != 429 || !strings.Contains(err.Error(), "rate limited by OpenAI, retry later") {
		t.Fatalf("throttled verify: want a 429 saying retry later, got %v", err)
	}
}

func TestConfigDelete_RefusedWhileKeysAreLive(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{"max_ttl": "1h"})
	issued := e.issueN("app", 3)
	// A record whose key is already dead does not count.
	e.ageRecord(saID(issued[2]), staleBy)

	e.mustBadRequest(logical.DeleteOperation, "config", nil, "2 key(s) issued by this mount are still live")
	e.mustBadRequest(logical.DeleteOperation, "config", map[string]interface{}{"force": false}, "force=true")
	if resp := e.mustOK(logical.ReadOperation, "config", nil); resp == nil {
		t.Fatal("config gone after a refused delete")
	}
	for _, r := range issued[:2] {
		if err := e.revoke(r.Secret); err != nil {
			t.Fatal(err)
		}
	}
	e.mustOK(logical.DeleteOperation, "config", nil)
	if resp, _ := e.do(logical.ReadOperation, "config", nil); resp != nil {
		t.Fatal("config survived delete")
	}
}

func TestConfigDelete_Force(t *testing.T) {
	e := newTestEnv(t)
	e.configure()
	e.writeRole("app", map[string]interface{}{})
	e.issue("app", nil)
	e.mustOK(logical.DeleteOperation, "config", map[string]interface{}{"force": true})
	if resp, _ := e.do(logical.ReadOperation, "config", nil); resp != nil {
		t.Fatal("config survived a forced delete")
	}
}
