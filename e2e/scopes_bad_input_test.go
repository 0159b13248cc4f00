//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// Issue 14's bad input on the real Vault: every refusal is a 400 naming the
// field, nothing is stored, and nothing is left at OpenAI. A scope the
// project refuses is learnt from the probe key made at role write, which is
// deleted (with its bare account) although the write fails.
func TestScopesBadInputIs400AndLeavesNothing(t *testing.T) {
	t.Parallel()
	v, f := setupEngine(t, map[string]any{})
	if !f.SetRejectedScopes(fakeopenai.ProjectActive, "api.bogus") {
		t.Fatal("the fake does not know the project")
	}
	many := make([]string, 33)
	for i := range many {
		many[i] = "api.s" + strings.Repeat("x", i)
	}

	cases := []struct {
		name, path string
		data       map[string]any
		want       []string // substrings of the 400's message
	}{
		{"scope the project refuses", "openai/roles/s", map[string]any{"project_id": fakeopenai.ProjectActive, "scopes": "api.model.read,api.bogus"},
			[]string{"scopes", "OpenAI refused", "api.bogus"}},
		{"scope with whitespace", "openai/roles/s", map[string]any{"project_id": fakeopenai.ProjectActive, "scopes": []string{"api.model.read", "api model"}},
			[]string{"scopes", "entry 2"}},
		{"33 scopes", "openai/roles/s", map[string]any{"project_id": fakeopenai.ProjectActive, "scopes": many},
			[]string{"scopes", "at most 32"}},
		{"narrowing on a role without scopes", "openai/creds/r", map[string]any{"scopes": "api.model.read"},
			[]string{"scopes", "has no scopes"}},
		{"expiry_grace below its minimum", "openai/config", map[string]any{"expiry_grace": "10s"},
			[]string{"expiry_grace"}},
		{"negative max_live_keys", "openai/roles/s", map[string]any{"project_id": fakeopenai.ProjectActive, "max_live_keys": -1},
			[]string{"max_live_keys"}},
	}
	for _, c := range cases {
		before := f.Calls()
		_, err := v.Client.Logical().Write(c.path, c.data)
		status, msg := responseError(err)
		if status != 400 {
			t.Errorf("%s: status %d (%v), want 400", c.name, status, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: error %q does not contain %q", c.name, msg, w)
			}
		}
		after := f.Calls()
		created := after[fakeopenai.OpCreateServiceAccount] - before[fakeopenai.OpCreateServiceAccount]
		deleted := after[fakeopenai.OpDeleteServiceAccount] - before[fakeopenai.OpDeleteServiceAccount]
		if created != deleted {
			t.Errorf("%s: %d account(s) created and %d deleted at OpenAI", c.name, created, deleted)
		}
		if c.name == "scope the project refuses" && created != 1 {
			t.Errorf("%s: want exactly one probe account, %d created", c.name, created)
		}
		if n := len(f.LiveAccounts()); n != 0 {
			t.Errorf("%s: %d account(s) live at OpenAI after a refused request", c.name, n)
		}
	}
	if s, err := v.Client.Logical().Read("openai/roles/s"); err != nil || s != nil {
		t.Errorf("a refused role write stored role s: %v, %v", s, err)
	}
	cfg, err := v.Client.Logical().Read("openai/config")
	if err != nil || cfg == nil {
		t.Fatalf("read config: %v", err)
	}
	if g := fmt.Sprint(cfg.Data["expiry_grace"]); g != "300" {
		t.Errorf("expiry_grace %q after a refused write, want the default 300", g)
	}
}
