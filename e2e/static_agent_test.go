//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vault-plugin-openai/vault-plugin-openai/e2e/harness"
	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// staticAgentTemplate is the README's Vault Agent template for static-creds.
const staticAgentTemplate = `{{ with secret "openai/static-creds/app" }}OPENAI_API_KEY={{ .Data.api_key }}
# key {{ .Data.api_key_id }}, rotated {{ .Data.last_vault_rotation }}
{{ end }}`

// TestStaticCredsVaultAgentRerenders runs Vault Agent with the README's
// template on static-creds and shows it re-rendering after a scheduled
// rotation. static_secret_render_interval is set to 10m, so a re-render
// within a few minutes comes from the ttl field static-creds returns (Agent
// re-reads an unleased secret when its ttl runs out), not the interval.
// About 2 to 3 minutes (a 1m rotation_period on Vault's one-minute tick).
func TestStaticCredsVaultAgentRerenders(t *testing.T) {
	t.Parallel()
	v, f := setupEngine(t, nil)
	if _, err := v.Client.Logical().Write("openai/static-roles/app", map[string]any{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "1m", "overlap": "30s",
	}); err != nil {
		t.Fatalf("static role: %v", err)
	}
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	out := filepath.Join(dir, "openai.env")
	if err := os.WriteFile(tokenFile, []byte(v.Client.Token()), 0o600); err != nil {
		t.Fatal(err)
	}
	tmpl := filepath.Join(dir, "openai.env.ctmpl")
	if err := os.WriteFile(tmpl, []byte(staticAgentTemplate), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`
vault { address = %q }
auto_auth {
  method {
    type = "token_file"
    config = { token_file_path = %q }
  }
}
template_config { static_secret_render_interval = "10m" }
template {
  source      = %q
  destination = %q
}
`, v.Client.Address(), tokenFile, tmpl, out)
	cfgFile := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var agentLog strings.Builder
	cmd := exec.Command(harness.Suite.VaultBin, "agent", "-config="+cfgFile)
	cmd.Env = harness.CleanEnv()
	cmd.Stdout, cmd.Stderr = &agentLog, &agentLog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("agent log:\n%s", v.Redact(agentLog.String()))
		}
	})

	rendered := func() (key, id string) {
		b, err := os.ReadFile(out)
		if err != nil {
			return "", ""
		}
		for _, line := range strings.Split(string(b), "\n") {
			if k, ok := strings.CutPrefix(line, "OPENAI_API_KEY="); ok {
				key = k
			}
			if rest, ok := strings.CutPrefix(line, "# key "); ok {
				id, _, _ = strings.Cut(rest, ",")
			}
		}
		return key, id
	}
	var firstKey, firstID string
	waitFor(t, time.Minute, "Agent's first render", func() bool {
		firstKey, firstID = rendered()
		return firstKey != ""
	})
	start := time.Now()
	var key, id string
	waitFor(t, 4*time.Minute, "Agent to re-render after a rotation", func() bool {
		key, id = rendered()
		return id != "" && id != firstID
	})
	t.Logf("Agent re-rendered %s -> %s after %s", firstID, id, time.Since(start).Round(time.Second))
	if a := f.ListModels(t, key); a.Status != 200 {
		t.Fatalf("re-rendered key refused at the fake: %d %s", a.Status, a.Body)
	}
	if key == firstKey {
		t.Fatal("new key id but same key value")
	}
}
