//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"
)

// With OpenAI down, the operator's cleanup commands finish
// promptly. Before, each revocation retried its delete about 45 seconds, and
// revocations run one after another: "secrets disable" took 47.7s for one
// lease and "lease revoke -force -prefix" on 3 leases hit the CLI's deadline.
// Now a revocation spends at most revokeBudget (10s), and the ones after a
// revocation that found OpenAI unreachable about 2s each.
func TestOutageCleanupFinishesPromptly(t *testing.T) {
	t.Parallel()
	sf := newSwitchableFake(t)
	v := engine(t, sf.Fake, nil, nil, map[string]any{"ttl": "1h"})
	mountPlugin(t, v, "openai2")
	writeConfig(t, v, "openai2", sf.Fake, nil)
	writeRole(t, v, "openai2", "r", map[string]any{"ttl": "1h"})
	for i := 0; i < 3; i++ {
		issue(t, v, "openai", "r", nil)
		issue(t, v, "openai2", "r", nil)
	}
	sf.down()

	// secrets disable revokes every lease first; the first failure stops it,
	// and it must say so soon rather than hang.
	start := time.Now()
	_, stderr, code := v.CLI("secrets", "disable", "openai2/")
	disableTook := time.Since(start)
	if code == 0 {
		t.Errorf("secrets disable succeeded during the outage: its leases' accounts would be orphaned")
	}
	if disableTook > 20*time.Second {
		t.Errorf("secrets disable took %s to fail during the outage", disableTook.Round(time.Second))
	}

	// The README's outage advice: force-revoke the leases (the keys expire at
	// OpenAI on their own), then disable.
	start = time.Now()
	out, stderr2, code := v.CLI("lease", "revoke", "-force", "-prefix", "openai/creds/")
	forceTook := time.Since(start)
	if code != 0 {
		t.Errorf("lease revoke -force -prefix during the outage: exit %d: %s %s", code, out, v.redact(stderr2))
	}
	if forceTook > 30*time.Second {
		t.Errorf("lease revoke -force -prefix of 3 leases took %s", forceTook.Round(time.Second))
	}
	start = time.Now()
	if _, s, code := v.CLI("lease", "revoke", "-force", "-prefix", "openai2/creds/"); code != 0 {
		t.Errorf("force revoke of openai2: %s", v.redact(s))
	}
	if _, s, code := v.CLI("secrets", "disable", "openai2/"); code != 0 {
		t.Errorf("secrets disable after force revoke: %s", v.redact(s))
	}
	secondTook := time.Since(start)
	figures(t, "outage-cleanup", "disable_fails_after", disableTook, "force_revoke_3", forceTook,
		"force_revoke_and_disable", secondTook, "disable_error", strings.Join(strings.Fields(v.redact(stderr)), " "))
}
