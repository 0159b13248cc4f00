package backend

import (
	"sync"
	"time"
)

// Revocations run one after another in "vault lease revoke -prefix" and
// "secrets disable". During an outage each one would spend its whole
// revokeBudget retrying a dead upstream, so N leases take N budgets. Once a
// revocation with the full budget found OpenAI unreachable (no HTTP answer
// at all), the ones that follow within revokeOutageWindow get only
// revokeBudgetDuringOutage: enough for one attempt when OpenAI is back, and a
// prompt failure when it is not. Vault retries failed revocations itself,
// and a full-budget revocation after the window probes again. Throttling is
// an answer, not an outage: it keeps the full budget.
const (
	revokeBudgetDuringOutage = 2 * time.Second
	revokeOutageWindow       = 30 * time.Second
)

type outageState struct {
	mu    sync.Mutex
	until time.Time
}

var outages sync.Map // *backend -> *outageState

func (b *backend) outage() *outageState {
	v, _ := outages.LoadOrStore(b, &outageState{})
	return v.(*outageState)
}

// revokeCallBudget is the time the next revocation may spend at OpenAI.
func (b *backend) revokeCallBudget(now time.Time) time.Duration {
	o := b.outage()
	o.mu.Lock()
	defer o.mu.Unlock()
	if now.Before(o.until) {
		return revokeBudgetDuringOutage
	}
	return revokeBudget
}

// noteRevokeOutcome records whether a revocation with the given budget found
// OpenAI unreachable; any HTTP answer ends the outage.
func (b *backend) noteRevokeOutcome(budget time.Duration, err error, now time.Time) {
	o := b.outage()
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case err != nil && isUnreachable(err):
		if budget == revokeBudget {
			o.until = now.Add(revokeOutageWindow)
		}
	default:
		o.until = time.Time{}
	}
}
